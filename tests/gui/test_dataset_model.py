"""DatasetModel and DatasetFilterModel without widgets: roles, live problems, filters, figures."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSize, Qt

from chroma_studio.dataset import BELOW_RESOLUTION, TOO_SMALL, Finding, size_problem
from chroma_studio.gui.dataset.filter_model import ANY_PROBLEM, DatasetFilterModel
from chroma_studio.gui.dataset.items import DatasetItem, findings_by_path
from chroma_studio.gui.dataset.model import DatasetModel, DatasetRole

ROWS = 5000


def make_items(count: int = ROWS) -> list[DatasetItem]:
    """Synthetic rows (no files): every 10th has no caption, every 7th lacks the trigger word,
    every 100th is 200x200 (too small at 1024 px), the rest are 1536x1152 or 1152x1536."""
    items = []
    for i in range(count):
        image = Path(f"/data/set/img_{i:05d}.jpg")
        size = (200, 200) if i % 100 == 0 else ((1536, 1152) if i % 2 else (1152, 1536))
        item = DatasetItem(image, image.with_suffix(".txt"), *size)
        if i % 10 != 0:
            item.caption = f"sks, picture number {i}" if i % 7 else f"picture number {i}"
        items.append(item)
    return items


@pytest.fixture
def model() -> DatasetModel:
    model = DatasetModel(1024)
    model.set_items(make_items())
    return model


def test_roles_of_5000_rows(model: DatasetModel) -> None:
    assert model.rowCount() == ROWS
    for row in (1, 10, 100, 4999):
        index = model.index(row)
        item = model.item(row)
        assert index.data() == item.path.name
        assert index.data(DatasetRole.PATH) == str(item.path)
        assert index.data(DatasetRole.CAPTION_PATH) == str(item.caption_path)
        assert index.data(DatasetRole.CAPTION) == (item.caption or "")
        assert index.data(DatasetRole.HAS_CAPTION) is bool(item.caption)
        assert index.data(DatasetRole.SIZE) == QSize(item.width, item.height)
        assert index.data(DatasetRole.ITEM) is item
        assert index.data(DatasetRole.CAPTION_ERROR) == ""
    assert model.index(1).data(DatasetRole.BUCKET) == QSize(1152, 896)  # 4:3 at 1024 px
    assert model.index(10).data(DatasetRole.PROBLEMS) == ("caption-missing",)
    assert model.index(100).data(DatasetRole.PROBLEMS) == ("too-small", "caption-missing")
    assert model.index(1).data(DatasetRole.PROBLEMS) == ()
    assert "img_00100.jpg" in model.index(100).data(Qt.ItemDataRole.ToolTipRole)
    assert model.roleNames()[int(DatasetRole.CAPTION)] == b"caption"
    assert model.row_for_path("/data/set/img_04999.jpg") == 4999
    assert model.row_for_path("/elsewhere.jpg") == -1


def test_trigger_word_marks_captions_without_it(model: DatasetModel) -> None:
    changes = []
    model.dataChanged.connect(lambda first, last: changes.append((first.row(), last.row())))
    model.set_trigger_word("sks")
    assert changes == [(0, ROWS - 1)]
    assert model.index(7).data(DatasetRole.PROBLEMS) == ("trigger-missing",)
    assert model.index(10).data(DatasetRole.PROBLEMS) == ("caption-missing",)  # no caption at all
    without = model.rows_with_problem("trigger-missing")
    assert len(without) == sum(1 for i in range(ROWS) if i % 7 == 0 and i % 10 != 0)


def test_caption_change_updates_only_its_row(model: DatasetModel) -> None:
    changes = []
    model.dataChanged.connect(lambda first, last: changes.append((first.row(), last.row())))
    model.set_caption(Path("/data/set/img_00010.txt"), "sks, a new caption")
    assert changes == [(10, 10)]
    index = model.index(10)
    assert index.data(DatasetRole.CAPTION) == "sks, a new caption"
    assert index.data(DatasetRole.HAS_CAPTION) is True
    assert index.data(DatasetRole.PROBLEMS) == ()
    model.set_caption(Path("/data/set/img_00010.txt"), None, "is not UTF-8 text")
    assert index.data(DatasetRole.PROBLEMS) == ("caption-unreadable",)
    assert index.data(DatasetRole.HAS_CAPTION) is False


def test_resolution_changes_buckets_and_size_problems(model: DatasetModel) -> None:
    model.set_resolution(512)
    assert model.index(1).data(DatasetRole.BUCKET) == QSize(576, 448)
    assert model.index(100).data(DatasetRole.PROBLEMS) == ("caption-missing", "below-resolution")
    model.set_resolution(2048)
    assert "below-resolution" in model.index(1).data(DatasetRole.PROBLEMS)


@pytest.mark.parametrize("resolution", [512, 1024])
def test_size_badges_follow_the_dataset_size_rule(resolution: int) -> None:
    sizes = [(1024, 1024), (1000, 1000), (256, 256), (255, 255), (100, 100), (4000, 300), (64, 1024), (900, 1400)]
    model = DatasetModel(1024)
    items = [DatasetItem(Path(f"/d/{w}x{h}.png"), Path(f"/d/{w}x{h}.txt"), w, h, caption="x") for w, h in sizes]
    model.set_items(items)
    model.set_resolution(resolution)
    for row, (width, height) in enumerate(sizes):
        badges = set(model.problems(row)) & {TOO_SMALL, BELOW_RESOLUTION}
        expected = size_problem(width, height, resolution)
        assert badges == ({expected} if expected else set()), (width, height)


def test_image_findings_mark_every_copy(model: DatasetModel) -> None:
    first, second = Path("/data/set/img_00001.jpg"), Path("/data/set/img_00003.jpg")
    findings = [
        Finding(first, "exact-duplicate", "has the same content as img_00003.jpg", "warning", (second,)),
        Finding(Path("/data/set/img_00005.jpg"), "corrupt", "cannot be decoded", "error"),
        Finding(Path("/data/set/img_00009.txt"), "caption-empty", "is empty", "warning"),  # live rule instead
        Finding(None, "captions-short", "Captions are short", "warning"),
    ]
    model.add_image_findings(findings_by_path(findings))
    assert model.problems(1) == ("duplicate",)
    assert model.problems(3) == ("duplicate",)
    assert model.problems(5) == ("corrupt",)
    assert model.problems(9) == ()


def test_filter_by_problem_and_text(model: DatasetModel) -> None:
    proxy = DatasetFilterModel()
    proxy.setSourceModel(model)
    assert proxy.rowCount() == ROWS
    proxy.set_problem_filter("caption-missing")
    assert proxy.rowCount() == ROWS // 10
    assert proxy.source_rows([0, 1]) == [0, 10]
    proxy.set_problem_filter(ANY_PROBLEM)
    assert proxy.rowCount() == ROWS // 10  # the small ones lack captions too
    proxy.set_problem_filter("")
    proxy.set_text_filter("NUMBER 123")
    assert proxy.source_rows(list(range(proxy.rowCount()))) == [123, *range(1231, 1240)]  # 1230 has no caption
    proxy.set_text_filter("img_0499")
    assert proxy.rowCount() == 10  # file names match too


def test_filter_keeps_rows_until_refreshed(model: DatasetModel) -> None:
    proxy = DatasetFilterModel()
    proxy.setSourceModel(model)
    proxy.set_problem_filter("caption-missing")
    model.set_caption(Path("/data/set/img_00010.txt"), "written now")
    assert proxy.rowCount() == ROWS // 10  # still listed while it is being edited
    proxy.refresh()
    assert proxy.rowCount() == ROWS // 10 - 1


def test_stats(model: DatasetModel) -> None:
    model.set_trigger_word("sks")
    stats = model.stats()
    captioned = sum(1 for i in range(ROWS) if i % 10)
    too_small = ROWS // 100  # left out of training, as the check and the engine leave them out
    assert stats.images == ROWS and stats.unusable == 0 and stats.per_epoch == ROWS - too_small
    assert stats.too_small == too_small and stats.trainable == ROWS - too_small
    assert stats.captioned == captioned
    assert stats.with_trigger == sum(1 for i in range(ROWS) if i % 10 and i % 7)
    assert stats.smallest == (200, 200)
    assert stats.median in ((1536, 1152), (1152, 1536))
    assert sum(stats.buckets.values()) == ROWS - too_small
    assert stats.problems["too-small"] == too_small
    assert model.caption_paths([3, 1, 1]) == [Path("/data/set/img_00001.txt"), Path("/data/set/img_00003.txt")]


def test_the_page_judges_images_with_the_words_of_the_check(tmp_path) -> None:
    from PIL import Image

    from chroma_studio.dataset import check_dataset, read_caption_if_present
    from chroma_studio.gui.dataset.items import problem_kinds, problem_messages

    folder = tmp_path / "set"
    folder.mkdir()
    for name, size, caption in [
        ("dot", (1, 1), "one pixel"),
        ("small", (64, 64), "a small square"),
        ("soft", (400, 400), "a square below the resolution"),
        ("empty_caption", (512, 512), ""),
        ("uncaptioned", (512, 512), None),
    ]:
        Image.new("RGB", size, (len(name) * 20, 90, 160)).save(folder / f"{name}.png")
        if caption is not None:
            (folder / f"{name}.txt").write_text(caption, encoding="utf-8")
    rule_codes = {"too-small", "below-resolution", "caption-missing", "caption-empty"}
    report = check_dataset([folder], resolution=512)
    said_by_check = {(f.path, f.message) for f in report.findings if f.code in rule_codes}

    said_by_page = set()
    for record in report.images:
        item = DatasetItem.from_record(record)
        item.caption = read_caption_if_present(record.caption_path)
        messages = problem_messages(item, problem_kinds(item, 512), 512)
        path = record.caption_path if item.caption == "" else record.path  # an empty caption is the file's problem
        said_by_page |= {(path, message) for message in messages}
        assert item.trains_at(512) == (record.path.stem not in ("dot", "small"))
    assert said_by_page == said_by_check
    assert len(said_by_check) == 5
