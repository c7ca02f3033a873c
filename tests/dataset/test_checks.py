from __future__ import annotations

import os
import random

from PIL import Image, ImageFile

from chroma_studio.dataset.caption_checks import DIVERSITY_ADVICE
from chroma_studio.dataset.checks import HUGE_PIXELS, check_dataset
from chroma_studio.dataset.rules import size_findings
from chroma_studio.dataset.scan import ImageRecord

from .files import ORIENTATION, photo, png_header_only, tree_digest, varied_caption


def by_code(report) -> dict[str, list]:
    found: dict[str, list] = {}
    for finding in report.findings:
        found.setdefault(finding.code, []).append(finding)
    return found


def names(findings) -> list[str]:
    return sorted(f.path.name for f in findings)


def good_dataset(make_image, count: int = 6, folder: str = "data", size=(512, 512)) -> None:
    rng = random.Random(0)
    for i in range(count):
        make_image(f"{folder}/img{i}.png", size, seed=100 + i, caption=varied_caption(rng))


def test_a_clean_dataset_has_no_errors_or_warnings(tmp_path, make_image):
    good_dataset(make_image)

    report = check_dataset([tmp_path / "data"], resolution=512, trigger_word="ohwx")

    assert [str(f) for f in report.findings] == []
    assert report.ok and len(report.images) == 6
    assert report.buckets == {(512, 512): 6}
    assert report.captions.captions == 6 and report.captions.words_median == 15


def test_check_modifies_nothing(tmp_path, make_image):
    good_dataset(make_image)
    make_image("data/dup.png", (512, 512), seed=100)
    (tmp_path / "data" / "cut.png").write_bytes((tmp_path / "data" / "img1.png").read_bytes()[:300])
    (tmp_path / "data" / "bomb.png").write_bytes(png_header_only(30000, 30000))
    (tmp_path / "data" / "latin.txt").write_bytes("\u00e9t\u00e9".encode("cp1252"))
    make_image("data/latin.png", (300, 300))
    (tmp_path / "data" / "empty.jpg").write_bytes(b"")
    before = tree_digest(tmp_path)

    report = check_dataset([tmp_path / "data"], resolution=512, trigger_word="sks")

    assert report.errors  # it found plenty
    assert tree_digest(tmp_path) == before


def test_corrupt_truncated_and_zero_byte_images_are_errors(tmp_path, make_image):
    good_dataset(make_image, count=2)
    png = make_image("data/cut.png", (600, 600), seed=7)
    png.write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    jpg = make_image("data/cut.jpg", (600, 600), seed=8, format="JPEG")
    jpg.write_bytes(jpg.read_bytes()[: jpg.stat().st_size // 2])
    (tmp_path / "data" / "empty.png").write_bytes(b"")

    found = by_code(check_dataset([tmp_path / "data"], resolution=512))

    assert names(found["corrupt"]) == ["cut.jpg", "cut.png"]
    assert names(found["zero-byte"]) == ["empty.png"]
    assert all(f.severity == "error" for f in found["corrupt"] + found["zero-byte"])
    assert "damaged or cut short" in found["corrupt"][0].message


def test_decompression_bomb_is_an_error_and_never_decoded(tmp_path, make_image):
    good_dataset(make_image, count=2)
    (tmp_path / "data" / "bomb.png").write_bytes(png_header_only(30000, 30000))

    report = check_dataset([tmp_path / "data"], resolution=512)

    [bomb] = by_code(report)["decompression-bomb"]
    assert bomb.severity == "error" and bomb.path.name == "bomb.png"
    assert "bomb.png" not in {r.path.name for r in report.images}


def test_small_images_warn_and_tiny_ones_are_errors(tmp_path, make_image):
    good_dataset(make_image, count=2)
    make_image("data/below.png", (400, 400), seed=1, caption="x")
    make_image("data/tiny.png", (100, 100), seed=2, caption="y")
    make_image("data/wide_ok.png", (1400, 800), seed=3, caption="z")

    found = by_code(check_dataset([tmp_path / "data"], resolution=512))

    [below] = found["below-resolution"]
    [tiny] = found["too-small"]
    assert (below.path.name, below.severity) == ("below.png", "warning")
    assert "400x400" in below.message and "512x512" in below.message and "1.28x" in below.message
    assert (tiny.path.name, tiny.severity) == ("tiny.png", "error")
    assert "5.1x" in tiny.message


def test_huge_images_warn_from_their_size(tmp_path):
    huge = ImageRecord(tmp_path / "pano.jpg", 12000, 8000, tmp_path / "pano.txt", tmp_path)
    fine = ImageRecord(tmp_path / "photo.jpg", 6000, 4000, tmp_path / "photo.txt", tmp_path)

    [finding] = size_findings(huge, 1024)

    assert huge.pixels > HUGE_PIXELS and (finding.code, finding.severity) == ("huge", "warning")
    assert "96 megapixels" in finding.message and "2048 px" in finding.message
    assert size_findings(fine, 1024) == []


def test_huge_png_is_verified_but_never_decoded(tmp_path, make_image, monkeypatch):
    good_dataset(make_image, count=2)
    header = png_header_only(12000, 10000)  # 120 megapixels: below the bomb limit, above "huge"
    (tmp_path / "data" / "huge_ok.png").write_bytes(header)
    (tmp_path / "data" / "huge_cut.png").write_bytes(header[:-12])  # the closing chunk is missing
    load = ImageFile.ImageFile.load

    def load_unless_huge(self):
        assert self.size[0] * self.size[1] <= HUGE_PIXELS, f"{self.filename} was decoded"
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load_unless_huge)

    found = by_code(check_dataset([tmp_path / "data"], resolution=512))

    assert names(found["huge"]) == ["huge_cut.png", "huge_ok.png"]
    assert names(found["corrupt"]) == ["huge_cut.png"]
    assert "truncated" in found["corrupt"][0].message


def test_exact_and_near_duplicates(tmp_path, make_image):
    good_dataset(make_image, count=3, size=(640, 480))
    data = tmp_path / "data"
    (data / "copy_of_img0.png").write_bytes((data / "img0.png").read_bytes())
    (data / "copy_of_img0.txt").write_text("ohwx, another caption that is long enough to pass the checks fine")
    photo((640, 480), seed=101).resize((500, 375)).save(data / "img1_smaller.jpg", quality=70)
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored sideways, upright once oriented: still the same picture
    photo((640, 480), seed=102).transpose(Image.Transpose.ROTATE_90).save(data / "img2_sideways.jpg", exif=exif)

    found = by_code(check_dataset([data], resolution=512))

    [exact] = found["exact-duplicate"]
    assert exact.path.name == "copy_of_img0.png" and [p.name for p in exact.related] == ["img0.png"]
    assert exact.severity == "warning" and "img0.png" in exact.message
    near = sorted([f.path.name, *(p.name for p in f.related)] for f in found["near-duplicate"])
    assert near == [["img1.png", "img1_smaller.jpg"], ["img2.png", "img2_sideways.jpg"]]


def test_missing_empty_shared_and_unreadable_captions(tmp_path, make_image):
    good_dataset(make_image, count=3)
    make_image("data/no_caption.png", (512, 512), seed=1)
    make_image("data/blank.png", (512, 512), seed=2, caption="  \n")
    make_image("data/twin.png", (512, 512), seed=3, caption="ohwx, a caption shared by two different images")
    make_image("data/twin.jpg", (512, 512), seed=4)
    make_image("data/latin.png", (512, 512), seed=5)
    (tmp_path / "data" / "latin.txt").write_bytes("ohwx, caf\u00e9".encode("cp1252"))

    report = check_dataset([tmp_path / "data"], resolution=512)
    found = by_code(report)

    assert names(found["caption-missing"]) == ["no_caption.png"]
    assert "no_caption.txt" in found["caption-missing"][0].message
    assert names(found["caption-empty"]) == ["blank.txt"]
    assert names(found["caption-shared"]) == ["twin.txt"]
    assert sorted(p.name for p in found["caption-shared"][0].related) == ["twin.jpg", "twin.png"]
    [latin] = found["caption-unreadable"]
    assert latin.path.name == "latin.txt" and latin.severity == "error" and "UTF-8" in latin.message
    assert (report.captions.missing, report.captions.empty, report.captions.unreadable) == (1, 1, 1)


def test_trigger_word_missing_or_in_another_case(tmp_path, make_image):
    good_dataset(make_image, count=3)
    make_image("data/forgot.png", (512, 512), seed=1, caption="a woman reading a book on a bench in the park")
    make_image("data/shouty.png", (512, 512), seed=2, caption="OHWX, a woman reading a newspaper at a cafe")
    make_image("data/inside.png", (512, 512), seed=3, caption="ohwxy, a woman walking a dog through the snow")

    found = by_code(check_dataset([tmp_path / "data"], resolution=512, trigger_word="ohwx"))

    assert names(found["trigger-missing"]) == ["forgot.txt", "inside.txt"]
    assert names(found["trigger-case"]) == ["shouty.txt"]
    assert "'ohwx'" in found["trigger-missing"][0].message
    assert "trigger-missing" not in by_code(check_dataset([tmp_path / "data"], resolution=512))


def test_short_alike_captions_get_the_diversity_advice(tmp_path, make_image):
    for i in range(8):
        make_image(f"data/{i}.png", (512, 512), seed=i, caption="ohwx woman" if i % 2 else "photo of ohwx woman")

    report = check_dataset([tmp_path / "data"], resolution=512)
    found = by_code(report)

    [short] = found["captions-short"]
    [low] = found["captions-low-diversity"]
    assert short.path is None and short.severity == "warning"
    assert DIVERSITY_ADVICE in short.message and DIVERSITY_ADVICE in low.message
    assert "collapse to one pose" in DIVERSITY_ADVICE
    groups = sorted(sorted([f.path.name, *(p.name for p in f.related)]) for f in found["captions-near-identical"])
    assert groups == [["0.txt", "2.txt", "4.txt", "6.txt"], ["1.txt", "3.txt", "5.txt", "7.txt"]]
    assert report.captions.words_median == 3 and report.captions.distinct_tokens == 4
    assert report.captions.near_identical == 8


def test_long_but_nearly_identical_captions_are_found(tmp_path, make_image):
    good_dataset(make_image, count=5)
    base = "ohwx, a woman in a red coat standing on a bridge at dusk, city lights behind her, wind in her hair"
    make_image("data/twin_a.png", (512, 512), seed=1, caption=base)
    make_image("data/twin_b.png", (512, 512), seed=2, caption=base.replace("dusk", "dawn"))

    found = by_code(check_dataset([tmp_path / "data"], resolution=512))

    [near] = found["captions-near-identical"]
    assert near.path.name == "twin_a.txt" and [p.name for p in near.related] == ["twin_b.txt"]
    assert "captions-short" not in found and "captions-low-diversity" not in found


def test_repeats_are_noted_and_counted(tmp_path, make_image):
    good_dataset(make_image, count=2, folder="data/5_ohwx")
    good_dataset(make_image, count=1, folder="data/plain")

    report = check_dataset([tmp_path / "data"], resolution=512)

    [note] = by_code(report)["repeats"]
    assert note.severity == "info" and note.path.name == "5_ohwx" and "5 times" in note.message
    assert report.weighted_images == 11 and report.ok


def test_folders_without_images_and_missing_folders_are_errors(tmp_path, make_image):
    good_dataset(make_image, count=1)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("nothing here")

    report = check_dataset([tmp_path / "data", tmp_path / "empty", tmp_path / "missing"], resolution=512)
    found = by_code(report)

    assert names(found["no-images"]) == ["empty"]
    assert names(found["folder-missing"]) == ["missing"]
    assert not report.ok


def test_findings_are_ordered_errors_first_and_serialisable(tmp_path, make_image):
    good_dataset(make_image, count=2, folder="data/3_x")
    make_image("data/3_x/tiny.png", (100, 100), caption="ohwx")

    report = check_dataset([tmp_path / "data"], resolution=512)
    severities = [f.severity for f in report.findings]

    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    assert severities[0] == "error" and severities[-1] == "info"
    document = report.to_dict()
    assert document["counts"] == {"error": 1, "warning": len(report.warnings), "info": 1}
    assert document["findings"][0]["path"] == str(tmp_path / "data" / "3_x" / "tiny.png")
    assert document["images_per_epoch"] == 9


def test_progress_and_cancel(tmp_path, make_image):
    good_dataset(make_image, count=4)
    seen: list[tuple[int, int]] = []

    check_dataset([tmp_path / "data"], resolution=512, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]

    calls = iter(range(100))
    report = check_dataset([tmp_path / "data"], resolution=512, should_stop=lambda: next(calls) >= 2)
    assert report.cancelled and not report.ok


def test_symlinked_image_is_an_exact_duplicate(tmp_path, make_image):
    good_dataset(make_image, count=2)
    os.symlink(tmp_path / "data" / "img0.png", tmp_path / "data" / "link.png")

    [dup] = by_code(check_dataset([tmp_path / "data"], resolution=512))["exact-duplicate"]

    assert {dup.path.name, *(p.name for p in dup.related)} == {"img0.png", "link.png"}


def test_a_check_stopped_during_its_scan_reports_no_empty_folders(tmp_path, make_image):
    good_dataset(make_image, count=3)
    progress: list[tuple[int, int]] = []

    report = check_dataset(
        [tmp_path / "data"], resolution=512, progress=lambda *args: progress.append(args), should_stop=lambda: True
    )

    assert report.cancelled and report.images == []
    assert progress == [], "no image was checked"
    assert "no-images" not in {f.code for f in report.findings}, "the folder was not read, not found empty"
