"""Fixtures that write real image and caption files into each test's tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .files import photo

MakeImage = Callable[..., Path]


@pytest.fixture
def make_image(tmp_path: Path) -> MakeImage:
    """make_image("a/b.png", (w, h), seed=0, caption=None, **save_options) -> the absolute path written."""

    def make(
        relative: str, size: tuple[int, int] = (320, 240), seed: int = 0, caption: str | None = None, **options
    ) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        photo(size, seed).save(path, **options)
        if caption is not None:
            path.with_suffix(".txt").write_text(caption, encoding="utf-8")
        return path

    return make
