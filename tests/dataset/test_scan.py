from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from chroma_studio.dataset.scan import ImageRecord, repeats_from_name, scan_folders

from .files import ORIENTATION, photo, png_chunk, png_header_only


def codes(result) -> dict[str, str]:
    return {p.path.name: p.code for p in result.problems}


def test_reads_size_format_and_caption_of_each_format(tmp_path, make_image):
    make_image("a.jpg", (320, 240), caption="a cat")
    make_image("b.png", (200, 300))
    make_image("c.webp", (128, 128))
    make_image("d.bmp", (64, 96))
    make_image("e.tiff", (90, 60))
    (tmp_path / "notes.md").write_text("not an image")

    result = scan_folders([tmp_path])

    assert result.problems == []
    assert [(r.path.name, r.width, r.height, r.format) for r in result.images] == [
        ("a.jpg", 320, 240, "JPEG"),
        ("b.png", 200, 300, "PNG"),
        ("c.webp", 128, 128, "WEBP"),
        ("d.bmp", 64, 96, "BMP"),
        ("e.tiff", 90, 60, "TIFF"),
    ]
    first = result.images[0]
    assert first == ImageRecord(tmp_path / "a.jpg", 320, 240, tmp_path / "a.txt", tmp_path, 1, "JPEG")
    assert first.path.is_absolute()


def test_exif_rotation_swaps_width_and_height(tmp_path):
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored landscape, shown portrait
    photo((400, 300)).save(tmp_path / "rotated.jpg", exif=exif)
    exif[ORIENTATION] = 3  # upside down: same sides
    photo((400, 300)).save(tmp_path / "flipped.jpg", exif=exif)

    sizes = {r.path.name: (r.width, r.height) for r in scan_folders([tmp_path]).images}

    assert sizes == {"flipped.jpg": (400, 300), "rotated.jpg": (300, 400)}


def test_png_orientation_after_the_image_data_is_found_without_decoding(tmp_path):
    exif = Image.Exif()
    exif[ORIENTATION] = 8
    photo((120, 80)).save(tmp_path / "plain.png")
    data = (tmp_path / "plain.png").read_bytes()
    iend = data.rindex(b"IEND") - 4  # the eXIf chunk goes after IDAT, just before IEND
    (tmp_path / "late_exif.png").write_bytes(data[:iend] + png_chunk(b"eXIf", exif.tobytes()[6:]) + data[iend:])

    sizes = {r.path.name: (r.width, r.height) for r in scan_folders([tmp_path]).images}

    assert sizes == {"late_exif.png": (80, 120), "plain.png": (120, 80)}
    with Image.open(tmp_path / "late_exif.png") as im:  # Pillow agrees once it has decoded the file
        assert im.getexif().get(ORIENTATION) == 8


def test_repeats_come_from_the_nearest_numbered_folder(tmp_path, make_image):
    make_image("10_mychar/a.png")
    make_image("10_mychar/extra/b.png")
    make_image("10_mychar/3_close/c.png")
    make_image("plain/d.png")

    result = scan_folders([tmp_path])

    assert {r.path.name: r.repeats for r in result.images} == {"a.png": 10, "b.png": 10, "c.png": 3, "d.png": 1}
    assert all(r.folder == tmp_path for r in result.images)
    inner = scan_folders([tmp_path / "10_mychar"]).images
    assert {r.path.name: r.repeats for r in inner} == {"a.png": 10, "b.png": 10, "c.png": 3}


@pytest.mark.parametrize(("name", "expected"), [("10_mychar", 10), ("1_x", 1), ("mychar", None), ("10_", None)])
def test_repeats_from_name(name, expected):
    assert repeats_from_name(name) == expected


def test_implausible_and_zero_repeats_are_warned(tmp_path, make_image):
    make_image("2024_holiday/a.png")
    make_image("0_none/b.png")

    result = scan_folders([tmp_path])

    assert {r.path.name: r.repeats for r in result.images} == {"a.png": 2024, "b.png": 1}
    warned = {p.path.name: p for p in result.problems}
    assert warned["2024_holiday"].severity == "warning" and "2024" in warned["2024_holiday"].message
    assert warned["0_none"].code == "repeats"


def test_skips_hidden_files_cache_folders_and_non_recursive(tmp_path, make_image):
    make_image("keep.png")
    make_image(".hidden.png")
    make_image(".thumbs/a.png")
    make_image("__pycache__/b.png")
    make_image("cache/c.png")
    (tmp_path / "cache" / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    make_image("sub/d.png")

    assert [r.path.name for r in scan_folders([tmp_path]).images] == ["keep.png", "d.png"]
    assert [r.path.name for r in scan_folders([tmp_path], recursive=False).images] == ["keep.png"]


def test_app_cache_folder_is_not_scanned(tmp_path, make_image, monkeypatch):
    make_image("data/cache/latent.png")
    make_image("data/a.png")
    monkeypatch.setenv("CHROMA_STUDIO_CACHE_DIR", str(tmp_path / "data" / "cache"))

    assert [r.path.name for r in scan_folders([tmp_path / "data"]).images] == ["a.png"]


def test_caption_is_matched_case_insensitively_but_prefers_exact_name(tmp_path, make_image):
    make_image("one.jpg")
    (tmp_path / "ONE.TXT").write_text("upper")
    make_image("two.PNG")
    (tmp_path / "two.txt").write_text("exact")

    captions = {r.path.name: r.caption_path.name for r in scan_folders([tmp_path]).images}

    assert captions == {"one.jpg": "ONE.TXT", "two.PNG": "two.txt"}


def test_order_is_sorted_and_folders_keep_their_given_order(tmp_path, make_image):
    for name in ["b/2.png", "b/1.png", "a/z.png", "a/sub/y.png", "a/x.png"]:
        make_image(name)

    result = scan_folders([tmp_path / "b", tmp_path / "a"])

    assert [str(r.path.relative_to(tmp_path)) for r in result.images] == [
        "b/1.png", "b/2.png", "a/sub/y.png", "a/x.png", "a/z.png",
    ]  # fmt: skip
    assert result.images == scan_folders([tmp_path / "b", tmp_path / "a"]).images


def test_overlapping_folders_list_each_image_once(tmp_path, make_image):
    make_image("a/sub/x.png")

    result = scan_folders([tmp_path / "a", tmp_path / "a" / "sub", tmp_path / "a"])

    assert [r.path.name for r in result.images] == ["x.png"]


def test_zero_byte_unreadable_and_non_image_files_are_problems(tmp_path, make_image):
    make_image("good.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("this is not a png")
    (tmp_path / "missing_folder.png").mkdir()  # a folder named like an image is walked, not read

    result = scan_folders([tmp_path, tmp_path / "nope", tmp_path / "good.png"])

    assert [r.path.name for r in result.images] == ["good.png"]
    assert codes(result) == {
        "empty.jpg": "zero-byte",
        "text.png": "not-an-image",
        "nope": "folder-missing",
        "good.png": "not-a-folder",
    }
    assert all(p.severity == "error" for p in result.problems)
    assert "0 bytes" in next(p.message for p in result.problems if p.code == "zero-byte")


def test_decompression_bomb_is_reported_from_the_header(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_header_only(30000, 30000))
    (tmp_path / "big_but_allowed.png").write_bytes(png_header_only(12000, 10000))

    result = scan_folders([tmp_path])

    [problem] = result.problems
    assert (problem.path.name, problem.code, problem.severity) == ("bomb.png", "decompression-bomb", "error")
    assert "900,000,000 pixels" in problem.message and "not decoded" in problem.message
    assert [(r.path.name, r.width, r.height) for r in result.images] == [("big_but_allowed.png", 12000, 10000)]


def test_bomb_is_caught_even_with_pillows_limit_switched_off(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    (tmp_path / "bomb.png").write_bytes(png_header_only(20000, 20000))

    assert codes(scan_folders([tmp_path])) == {"bomb.png": "decompression-bomb"}


def test_truncated_png_still_scans_from_its_header(tmp_path, make_image):
    path = make_image("cut.png", (300, 200))
    path.write_bytes(path.read_bytes()[:200])  # header intact, image data cut short

    result = scan_folders([tmp_path])

    assert [(r.width, r.height) for r in result.images] == [(300, 200)]  # the check's decode catches it


def test_damaged_header_is_a_problem(tmp_path):
    ihdr = struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)  # zero width
    bad = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )
    (tmp_path / "bad.png").write_bytes(bad)
    (tmp_path / "short.jpg").write_bytes(b"\xff\xd8\xff")

    result = scan_folders([tmp_path])

    assert result.images == []
    assert set(codes(result)) == {"bad.png", "short.jpg"}


def test_symlink_loops_and_broken_links_are_reported_not_fatal(tmp_path, make_image):
    make_image("data/a.png")
    make_image("data/sub/b.png")
    os.symlink(tmp_path / "data", tmp_path / "data" / "sub" / "back")  # a folder that contains itself
    os.symlink("self.png", tmp_path / "data" / "self.png")  # a link to itself
    os.symlink(tmp_path / "gone.png", tmp_path / "data" / "dangling.png")

    result = scan_folders([tmp_path / "data"])

    assert [r.path.name for r in result.images] == ["a.png", "b.png"]
    assert codes(result) == {"back": "symlink-loop", "self.png": "symlink-loop", "dangling.png": "broken-link"}


def test_links_out_of_the_dataset_are_reported_and_followed_only_when_asked(tmp_path, make_image):
    make_image("elsewhere/x.png")
    make_image("data/own.png")
    make_image("data/inside/y.png")
    os.symlink(tmp_path / "elsewhere", tmp_path / "data" / "linked")
    os.symlink(tmp_path / "elsewhere" / "x.png", tmp_path / "data" / "x-link.png")
    os.symlink("..", tmp_path / "data" / "parent")  # would pull in every image beside the dataset
    os.symlink("inside", tmp_path / "data" / "also-inside")  # stays within the folder: followed

    result = scan_folders([tmp_path / "data"])

    data = tmp_path / "data"
    assert [r.path for r in result.images] == [data / "also-inside" / "y.png", data / "own.png"]
    assert codes(result) == {"linked": "link-outside", "x-link.png": "link-outside", "parent": "link-outside"}
    assert all(p.severity == "warning" and str(tmp_path) in p.message for p in result.problems)

    followed = scan_folders([data], follow_links=True)
    names = sorted(str(r.path.relative_to(data)) for r in followed.images)
    assert names == ["also-inside/y.png", "linked/x.png", "own.png", "x-link.png"]  # elsewhere/ once
    assert codes(followed) == {"data": "symlink-loop"}  # the loop through the parent is still caught


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions; root ignores them")
def test_permission_errors_are_reported(tmp_path, make_image):
    make_image("ok.png")
    locked_file = make_image("locked.png")
    locked_dir = tmp_path / "locked_dir"
    make_image("locked_dir/inner.png")
    locked_file.chmod(0)
    locked_dir.chmod(0)
    try:
        result = scan_folders([tmp_path])
    finally:
        locked_dir.chmod(0o755)
        locked_file.chmod(0o644)

    assert [r.path.name for r in result.images] == ["ok.png"]
    assert codes(result) == {"locked.png": "permission-denied", "locked_dir": "permission-denied"}


def test_scan_reads_headers_only(tmp_path, monkeypatch, make_image):
    make_image("a.png")
    make_image("b.jpg")

    def refuse(self):
        raise AssertionError(f"{self.filename} was decoded during a scan")

    monkeypatch.setattr(Image.Image, "load", refuse)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", refuse)

    assert len(scan_folders([tmp_path]).images) == 2


def test_accepts_strings_and_user_paths(tmp_path, make_image, monkeypatch):
    make_image("a.png")
    monkeypatch.setenv("HOME", str(tmp_path))

    assert [r.path for r in scan_folders(["~"]).images] == [Path(tmp_path) / "a.png"]
