import os
import stat

import pytest

from chroma_studio.base.atomic import write_bytes_atomic, write_text_atomic


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "lora.safetensors", b"x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "lora.safetensors") == 0o644


def test_a_replaced_file_keeps_its_permissions_and_nothing_is_left_behind(tmp_path):
    caption = tmp_path / "photo.txt"
    caption.write_text("old")
    caption.chmod(0o664)
    write_text_atomic(caption, "new\r\n", newline="")
    assert caption.read_bytes() == b"new\r\n"
    assert mode(caption) == 0o664
    assert [p.name for p in tmp_path.iterdir()] == ["photo.txt"]


def test_a_failed_write_keeps_the_old_content(tmp_path):
    target = tmp_path / "config.json"
    target.write_text("good")

    class Boom(Exception):
        pass

    def explode(tmp):
        with open(tmp, "w") as handle:
            handle.write("half")
        raise Boom

    from chroma_studio.base.atomic import write_atomic

    with pytest.raises(Boom):
        write_atomic(target, explode)
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_usual_mode_follows_the_umask():
    from chroma_studio.base.atomic import usual_mode

    old = os.umask(0o027)
    try:
        assert usual_mode() == 0o640 and usual_mode(folder=True) == 0o750
    finally:
        os.umask(old)
