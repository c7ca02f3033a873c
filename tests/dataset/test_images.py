from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from chroma_studio.dataset.images import cover_crop, load_check_thumbnail, load_training_image
from chroma_studio.dataset.scan import scan_folders

from .files import ORIENTATION, photo

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def halves(size: tuple[int, int]) -> Image.Image:
    """Left half red, right half blue."""
    im = Image.new("RGB", size, RED)
    im.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return im


def pixel(im: Image.Image, fx: float, fy: float) -> tuple[int, ...]:
    return im.getpixel((int(fx * (im.width - 1)), int(fy * (im.height - 1))))


def close(a, b, tolerance: int = 40) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("size", [(512, 512), (640, 384), (384, 640), (64, 256)])
def test_output_is_exactly_the_bucket_in_rgb(tmp_path, size):
    path = tmp_path / "a.png"
    photo((500, 300)).save(path)

    im = load_training_image(path, size)

    assert im.size == size and im.mode == "RGB"


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # the viewer turns it 90 degrees clockwise: stored left becomes top
    halves((400, 200)).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    [record] = scan_folders([tmp_path]).images

    im = load_training_image(tmp_path / "rotated.jpg", (record.width, record.height))

    assert im.size == (200, 400)
    assert close(pixel(im, 0.5, 0.1), RED) and close(pixel(im, 0.5, 0.9), BLUE)


def test_cover_then_centre_crop(tmp_path):
    # Wide image, square target: scaled to the target height, the sides are cut equally.
    wide = Image.new("RGB", (300, 100), RED)
    wide.paste(BLUE, (100, 0, 200, 100))  # only the middle third is blue
    wide.save(tmp_path / "wide.png")

    im = load_training_image(tmp_path / "wide.png", (64, 64))

    assert im.size == (64, 64)
    assert close(pixel(im, 0.1, 0.5), BLUE) and close(pixel(im, 0.9, 0.5), BLUE)


def test_small_images_are_enlarged_to_cover(tmp_path):
    photo((100, 50)).save(tmp_path / "small.png")

    assert load_training_image(tmp_path / "small.png", (256, 256)).size == (256, 256)


def test_large_jpeg_is_reduced_while_decoding_and_keeps_its_content(tmp_path):
    halves((2400, 1600)).save(tmp_path / "big.jpg", quality=95)

    im = load_training_image(tmp_path / "big.jpg", (192, 128))

    assert im.size == (192, 128)
    assert close(pixel(im, 0.2, 0.5), RED) and close(pixel(im, 0.8, 0.5), BLUE)


def test_transparency_is_flattened_onto_white(tmp_path):
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 32, 64))
    rgba.save(tmp_path / "alpha.png")
    palette = rgba.convert("P")
    palette.info["transparency"] = palette.getpixel((63, 0))
    palette.save(tmp_path / "palette.png", transparency=palette.getpixel((63, 0)))

    for name in ("alpha.png", "palette.png"):
        im = load_training_image(tmp_path / name, (64, 64))
        assert close(pixel(im, 0.1, 0.5), RED, 2), name
        assert close(pixel(im, 0.9, 0.5), WHITE, 2), name


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (64, 1))
    Image.fromarray(ramp).save(tmp_path / "deep.png")

    im = np.asarray(load_training_image(tmp_path / "deep.png", (64, 64)))

    assert im[:, 0].max() < 10 and im[:, -1].min() > 245
    assert 100 < im[32, 32, 0] < 155  # mid-grey stays mid-grey


def test_grayscale_and_cmyk_become_rgb(tmp_path):
    photo((80, 80)).convert("L").save(tmp_path / "gray.png")
    photo((80, 80)).convert("CMYK").save(tmp_path / "cmyk.jpg")

    for name in ("gray.png", "cmyk.jpg"):
        assert load_training_image(tmp_path / name, (64, 64)).mode == "RGB"


def test_bad_target_size_is_refused(tmp_path):
    photo((10, 10)).save(tmp_path / "a.png")

    with pytest.raises(ValueError):
        load_training_image(tmp_path / "a.png", (0, 64))


def test_check_thumbnail_is_small_gray_and_raises_on_truncation(tmp_path):
    photo((1600, 1200)).save(tmp_path / "big.jpg")
    thumb = load_check_thumbnail(tmp_path / "big.jpg")
    assert thumb.mode == "L" and 64 <= min(thumb.size) <= 200

    data = (tmp_path / "big.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="truncated"):
        load_check_thumbnail(tmp_path / "cut.jpg")


def test_cover_crop_of_exact_size_keeps_pixels():
    im = photo((64, 32))

    assert np.array_equal(np.asarray(cover_crop(im, (64, 32))), np.asarray(im))
