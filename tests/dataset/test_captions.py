from __future__ import annotations

import pytest

from chroma_studio.dataset.captions import (
    CaptionError,
    caption_paths,
    read_caption,
    read_caption_if_present,
    write_caption,
)
from chroma_studio.dataset.scan import ImageRecord


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"a cat on a mat", "a cat on a mat"),
        (b"\xef\xbb\xbfa cat, with BOM\r\n", "a cat, with BOM"),
        (b"  line one\r\nline two\r\n\r\n", "line one\nline two"),
        ("caf\u00e9 \u00fcber \u732b".encode(), "caf\u00e9 \u00fcber \u732b"),
        (b"", ""),
    ],
)
def test_read_caption_tolerates_bom_crlf_and_whitespace(tmp_path, raw, text):
    path = tmp_path / "a.txt"
    path.write_bytes(raw)

    assert read_caption(path) == text


def test_missing_caption_reads_as_empty_but_is_distinguishable(tmp_path):
    assert read_caption(tmp_path / "none.txt") == ""
    assert read_caption_if_present(tmp_path / "none.txt") is None
    (tmp_path / "empty.txt").write_bytes(b" \n")
    assert read_caption_if_present(tmp_path / "empty.txt") == ""


def test_cp1252_caption_is_an_error_naming_the_file_and_the_fix(tmp_path):
    path = tmp_path / "photo.txt"
    path.write_bytes("caf\u00e9 au lait".encode("cp1252"))

    with pytest.raises(CaptionError) as info:
        read_caption(path)

    message = str(info.value)
    assert str(path) in message
    assert "not UTF-8" in message and "save it as UTF-8" in message
    assert "Windows-1252" in message and "caf\u00e9" in message
    assert info.value.path == path


def test_non_utf8_caption_is_never_overwritten(tmp_path):
    path = tmp_path / "photo.txt"
    original = "na\u00efve".encode("cp1252")
    path.write_bytes(original)

    with pytest.raises(CaptionError):
        write_caption(path, "replaced")

    assert path.read_bytes() == original


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (b"old", b"new one\ntwo"),
        (b"old\r\nlines\r\n", b"new one\r\ntwo\r\n"),
        (b"\xef\xbb\xbfold\n", b"\xef\xbb\xbfnew one\ntwo\n"),
        (b"\xef\xbb\xbfold\r\nx", b"\xef\xbb\xbfnew one\r\ntwo"),
    ],
)
def test_write_keeps_bom_line_endings_and_final_newline(tmp_path, existing, expected):
    path = tmp_path / "a.txt"
    path.write_bytes(existing)

    write_caption(path, "new one\ntwo")

    assert path.read_bytes() == expected
    assert read_caption(path) == "new one\ntwo"


def test_write_creates_a_plain_utf8_file_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "sub" / "new.txt"

    write_caption(path, "  \u00e9t\u00e9 \r\n")

    assert path.read_bytes() == "\u00e9t\u00e9".encode()
    assert sorted(p.name for p in path.parent.iterdir()) == ["new.txt"]


def test_write_into_a_missing_or_blocked_place_raises_caption_error(tmp_path):
    (tmp_path / "a.txt").mkdir()

    with pytest.raises(CaptionError, match=r"a\.txt"):
        write_caption(tmp_path / "a.txt", "text")


def test_caption_paths_keeps_order_and_drops_repeats(tmp_path):
    def record(name: str, caption: str) -> ImageRecord:
        return ImageRecord(tmp_path / name, 1, 1, tmp_path / caption, tmp_path)

    records = [record("b.png", "b.txt"), record("a.png", "a.txt"), record("a.jpg", "a.txt")]

    assert caption_paths(records) == [tmp_path / "b.txt", tmp_path / "a.txt"]
