from __future__ import annotations

import json
import random

import pytest

from chroma_studio.cli import main

from .files import tree_digest, varied_caption


@pytest.fixture
def clean(tmp_path, make_image):
    rng = random.Random(1)
    for i in range(4):
        make_image(f"clean/{i}.png", (512, 512), seed=i, caption=varied_caption(rng))
    return tmp_path / "clean"


@pytest.fixture
def messy(tmp_path, make_image):
    rng = random.Random(2)
    for i in range(3):
        make_image(f"messy/2_ohwx/{i}.png", (512, 512), seed=10 + i, caption=varied_caption(rng))
    make_image("messy/2_ohwx/tiny.png", (64, 64), seed=20, caption=varied_caption(rng))
    make_image("messy/2_ohwx/uncaptioned.png", (512, 512), seed=21)
    (tmp_path / "messy" / "2_ohwx" / "empty.png").write_bytes(b"")
    return tmp_path / "messy"


def test_clean_dataset_exits_zero(clean, capsys):
    assert main(["dataset", "check", str(clean), "--resolution", "512", "--trigger", "ohwx"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("Checked 4 images in 1 folder at 512 px, trigger word 'ohwx': 0 errors, 0 warnings")
    assert "Buckets at 512 px: 512x512: 4" in out
    assert "No errors: the dataset is ready to train." in out


def test_human_output_groups_findings_by_severity(messy, capsys, monkeypatch):
    monkeypatch.chdir(messy)

    assert main(["dataset", "check", ".", "--resolution", "512"]) == 1

    out = capsys.readouterr().out
    errors, warnings, notes = out.index("Errors (2)"), out.index("Warnings (1)"), out.index("Notes (1)")
    assert errors < warnings < notes
    error_block = out[errors:warnings]
    assert "[too-small] 2_ohwx/tiny.png: is 64x64" in error_block
    assert "[zero-byte] 2_ohwx/empty.png: is empty (0 bytes)" in error_block
    assert "[caption-missing] 2_ohwx/uncaptioned.png: has no caption (uncaptioned.txt)" in out[warnings:notes]
    assert "each count 2 times per epoch" in out[notes:]
    assert "Images per epoch, with folder repeats: 10" in out
    assert out.rstrip().endswith("Fix the 2 errors above before training.")


def test_json_output_is_one_document(messy, clean, capsys):
    code = main(["dataset", "check", str(messy), str(clean), "--json", "--resolution", "512", "--trigger", "ohwx"])

    document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert document["folders"] == [str(messy), str(clean)]
    assert document["images"] == 9 and document["resolution"] == 512 and document["trigger_word"] == "ohwx"
    assert document["counts"]["error"] == 2
    codes = {f["code"] for f in document["findings"]}
    assert {"too-small", "zero-byte", "caption-missing", "repeats"} <= codes
    assert all(set(f) == {"path", "code", "severity", "message", "related"} for f in document["findings"])
    assert document["buckets"] == [{"width": 512, "height": 512, "images": 9}]
    assert document["captions"]["captions"] == 8


def test_long_lists_are_shortened_unless_all_is_given(tmp_path, make_image, capsys):
    for i in range(14):
        make_image(f"data/{i:02d}.png", (512, 512), seed=i)

    main(["dataset", "check", str(tmp_path / "data"), "--resolution", "512"])
    short = capsys.readouterr().out
    main(["dataset", "check", str(tmp_path / "data"), "--resolution", "512", "--all"])
    full = capsys.readouterr().out

    assert short.count("[caption-missing]") == 11  # ten listed and one "... and 4 more" line
    assert "... and 4 more like these (--all lists every one)" in short
    assert full.count("[caption-missing]") == 14


def test_check_changes_no_file(messy, capsys):
    before = tree_digest(messy)

    main(["dataset", "check", str(messy), "--resolution", "512", "--trigger", "sks"])
    main(["dataset", "check", str(messy), "--json"])

    assert tree_digest(messy) == before


def test_missing_folder_is_an_error_exit(tmp_path, capsys):
    assert main(["dataset", "check", str(tmp_path / "nowhere")]) == 1
    assert "does not exist; check the folder path." in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["dataset"],
        ["dataset", "check", "DIR", "--resolution", "32"],
        ["dataset", "check", "DIR", "--resolution", "9000"],
    ],
)
def test_bad_usage_exits_two(argv, tmp_path, capsys):
    argv = [str(tmp_path) if a == "DIR" else a for a in argv]

    assert main(argv) == 2
    assert "dataset" in capsys.readouterr().err


def test_argument_errors_exit_two(capsys):
    with pytest.raises(SystemExit) as info:
        main(["dataset", "check"])  # no folder

    assert info.value.code == 2
    assert "DIR" in capsys.readouterr().err


def test_links_out_of_the_folder_are_followed_only_with_follow_links(clean, tmp_path, make_image, capsys):
    import os

    rng = random.Random(3)
    for i in range(3):
        make_image(f"foreign/{i}.png", (512, 512), seed=30 + i, caption=varied_caption(rng))
    os.symlink(tmp_path / "foreign", clean / "more")

    assert main(["dataset", "check", str(clean), "--resolution", "512", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 4
    assert [f["code"] for f in report["findings"]] == ["link-outside"]

    assert main(["dataset", "check", str(clean), "--resolution", "512", "--json", "--follow-links"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 7
