"""The Dataset page with real widgets and real files: drops, thumbnails, badges, filters, stats, cancel."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget
from qt_fixtures import DATASET_WAIT_MS, load_folder, open_dataset_page

from chroma_studio.dataset import scan as scan_module
from chroma_studio.gui.dataset.model import DatasetRole
from chroma_studio.gui.dataset.thumbnail_cache import thumbnail_folder
from chroma_studio.gui.pages.dataset import DatasetPage

WAIT_MS = DATASET_WAIT_MS


def make_image(path: Path, size: tuple[int, int] = (640, 480), colour: tuple[int, int, int] = (200, 80, 40)) -> Path:
    """A picture of its own (seeded by the file name), so the check finds no look-alikes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pattern = Image.frombytes("L", (16, 12), random.Random(path.name).randbytes(16 * 12))
    tint = Image.new("RGB", size, colour)
    Image.blend(pattern.resize(size).convert("RGB"), tint, 0.5).save(path)
    return path


def make_dataset(folder: Path) -> Path:
    """Three good images (two captioned), one file that is not an image, one JPEG cut short."""
    make_image(folder / "red.png", colour=(220, 30, 30))
    (folder / "red.txt").write_text("sks, a red square", encoding="utf-8")
    make_image(folder / "green.png", colour=(30, 200, 30))
    (folder / "green.txt").write_text("a green square", encoding="utf-8")
    make_image(folder / "blue.png", colour=(30, 30, 220))  # no caption
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    noise = Image.effect_noise((256, 256), 64).convert("RGB")
    noise.save(folder / "cut.jpg", quality=95)
    data = (folder / "cut.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    (folder / "cut.txt").write_text("sks, noise", encoding="utf-8")
    return folder


def drop_urls(target: QWidget, paths: list[Path]) -> bool:
    """Drag ``paths`` from a file manager onto ``target`` and drop them; whether the drop was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    action, buttons, modifiers = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(20, 20), action, mime, buttons, modifiers)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "the drag was refused"
    drop = QDropEvent(QPointF(20, 20), action, mime, buttons, modifiers)
    QApplication.sendEvent(target, drop)
    return drop.isAccepted()


@pytest.fixture
def page(qtbot):
    with open_dataset_page(qtbot, resolution=512) as page:
        yield page


load = load_folder


def row_of(page: DatasetPage, name: str) -> int:
    return next(row for row in range(page.model.rowCount()) if page.model.item(row).path.name == name)


def test_drop_a_folder_on_the_empty_page_shows_its_thumbnails(page, qtbot, tmp_path):
    folder = make_dataset(tmp_path / "photos")
    assert page.stack.currentWidget() is page.drop_zone
    changed_signal = page.studio.dataset_folders_changed
    with qtbot.waitSignal(changed_signal) as changed, qtbot.waitSignal(page.images_checked, timeout=WAIT_MS):
        assert drop_urls(page.drop_zone, [folder])
    assert changed.args == [[str(folder)], []]
    assert page.folders() == [str(folder)]
    assert page.stack.currentIndex() == 1
    assert page.image_count() == 5
    good = [str(folder / name) for name in ("red.png", "green.png", "blue.png")]
    qtbot.waitUntil(lambda: all(page.loader.has_thumbnail(p) for p in good), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: bool(page.loader.failure(str(folder / "broken.png"))), timeout=WAIT_MS)
    assert list(thumbnail_folder().rglob("*.*")), "thumbnails are kept on disk"


def test_dropping_an_image_on_the_grid_adds_its_folder(page, qtbot, tmp_path):
    first = make_dataset(tmp_path / "first")
    load(page, qtbot, first)
    other = make_image(tmp_path / "second" / "extra.png", colour=(10, 10, 10))
    (tmp_path / "second" / "notes.md").write_text("not an image")
    with qtbot.waitSignal(page.images_checked, timeout=WAIT_MS):
        assert drop_urls(page.grid.viewport(), [other, tmp_path / "second" / "notes.md"])
    assert page.folders() == [str(first), str(other.parent)]
    assert page.image_count() == 6
    qtbot.waitUntil(lambda: page.loader.has_thumbnail(str(other)), timeout=WAIT_MS)


def test_badges_for_missing_caption_and_damaged_images(page, qtbot, tmp_path):
    folder = make_dataset(tmp_path / "photos")
    load(page, qtbot, folder)
    problems = {page.model.item(r).path.name: page.model.problems(r) for r in range(page.model.rowCount())}
    assert problems["blue.png"] == ("caption-missing",)
    assert problems["broken.png"] == ("corrupt",)  # unreadable header: found by the scan
    assert "corrupt" in problems["cut.jpg"]  # cut short: found by the image check
    assert problems["red.png"] == ()
    page.set_trigger_word("sks")
    assert page.model.problems(row_of(page, "green.png")) == ("trigger-missing",)
    qtbot.waitUntil(lambda: "Missing from 2 captions" in page.trigger_hint.text())  # green and blue
    tooltip = page.model.index(row_of(page, "blue.png")).data(Qt.ItemDataRole.ToolTipRole)
    assert "has no caption (blue.txt)" in tooltip  # the words of the check and of training
    page.grab()  # the delegate paints badges, placeholders and failures without error
    broken = page.filter_model.mapFromSource(page.model.index(row_of(page, "broken.png")))
    page.grid.setCurrentIndex(broken)
    assert "broken.png" in page.editor.title.text()
    assert page.editor.info.text() == "left out of training"
    assert page.editor.problem.text().startswith("Left out of training: broken.png is damaged")
    assert not page.editor.edit.isEnabled()


def test_filter_by_problem_and_by_caption_text(page, qtbot, tmp_path):
    folder = make_dataset(tmp_path / "photos")
    load(page, qtbot, folder)
    combo = page.problem_combo
    combo.setCurrentIndex(combo.findData("caption-missing"))
    assert combo.currentText().endswith("(1)")
    shown = [page.filter_model.index(r, 0).data(DatasetRole.PATH) for r in range(page.filter_model.rowCount())]
    assert shown == [str(folder / "blue.png")]
    combo.setCurrentIndex(combo.findData("corrupt"))
    assert page.filter_model.rowCount() == 2
    combo.setCurrentIndex(combo.findData(""))
    qtbot.keyClicks(page.search_edit, "square")
    assert page.filter_model.rowCount() == 2
    assert "2 of 5 images shown" in page.selection_label.text()


def test_stats_panel_and_resolution(page, qtbot, tmp_path):
    folder = make_dataset(tmp_path / "photos")
    make_image(folder / "wide.png", size=(1600, 600))
    load(page, qtbot, folder)
    page.set_trigger_word("sks")
    qtbot.waitUntil(lambda: page.stats_widget.stats().trigger_word == "sks")
    stats = page.stats_widget.stats()
    # broken.png (the scan) and cut.jpg (the check) cannot be decoded: training leaves them out
    assert (stats.images, stats.unusable) == (6, 2)
    assert stats.captioned == 2 and stats.with_trigger == 1
    assert stats.smallest == (640, 480)
    assert page.stats_widget.captions.text() == "2 of 4 have one"
    assert page.stats_widget.images.text() == "4 to train; left out: 2 damaged files"
    assert sum(n for _, n in page.stats_widget.buckets.rows()) == 4
    assert stats.resolution == 512 and stats.buckets == {(576, 448): 3, (832, 320): 1}
    page.set_resolution(1024)
    qtbot.waitUntil(lambda: page.stats_widget.stats().resolution == 1024)
    assert "Training shapes at 1024 px" in page.stats_widget.buckets_label.text()
    assert page.model.problems(row_of(page, "red.png")) == ("below-resolution",)  # 640x480 for 1152x896
    make_image(folder / "tiny.png", size=(256, 256))
    with qtbot.waitSignal(page.images_checked, timeout=WAIT_MS):
        page.rescan()
    page.set_resolution(2048)
    assert "too-small" in page.model.problems(row_of(page, "tiny.png"))  # 256 px enlarged 8x
    assert page.model.problems(row_of(page, "cut.jpg")) == ("corrupt",)  # left out: no size problems


def test_trigger_word_field(page, qtbot):
    assert page.trigger_edit.placeholderText().startswith("a rare word for your subject")
    with qtbot.waitSignal(page.studio.trigger_word_changed) as changed:
        page.set_trigger_word("ohwx")
    assert changed.args == ["ohwx"]
    assert page.trigger_word() == "ohwx" and page.trigger_edit.text() == "ohwx"
    with qtbot.assertNotEmitted(page.studio.trigger_word_changed):
        page.set_trigger_word("ohwx")


def test_a_long_scan_shows_a_count_and_cancel_stops_it_part_way(page, qtbot, tmp_path, monkeypatch):
    folder = tmp_path / "many"
    folder.mkdir()
    count = 200
    small = Image.new("RGB", (32, 32), (90, 20, 20))
    for i in range(count):
        small.save(folder / f"img_{i:03d}.png")
        (folder / f"img_{i:03d}.txt").write_text(f"sks, picture {i}", encoding="utf-8")
    real_probe = scan_module.probe_image

    def slow_probe(path):  # 10 ms a file: the whole scan would take 2 s
        time.sleep(0.01)
        return real_probe(path)

    monkeypatch.setattr(scan_module, "probe_image", slow_probe)
    page.set_folders([str(folder)])
    assert page.progress.isVisible()
    assert "Looking for images" in page.progress.label.text()

    def counting() -> bool:
        job = page.progress.job()
        return job is not None and job.done >= 10 and "image files so far, in many" in page.progress.label.text()

    qtbot.waitUntil(counting, timeout=WAIT_MS)
    assert page.progress.cancel_button.isVisible()
    with qtbot.waitSignal(page.images_loaded, timeout=WAIT_MS) as loaded:
        qtbot.mouseClick(page.progress.cancel_button, Qt.MouseButton.LeftButton)
        assert page.progress.isHidden()
    shown = loaded.args[0]
    assert 10 <= shown < count // 2, "the scan stopped part-way, not at its end"
    assert page.image_count() == shown
    assert not page.runner.running(), "no image check follows a cancelled scan"
    assert f"the {shown:,} images found until then are shown" in page.message_bar.text()
    assert "cancelled" in page.grid.empty_text
    first = page.model.item(0)
    assert (first.path.name, first.width, first.caption) == ("img_000.png", 32, "sks, picture 0")
    monkeypatch.setattr(scan_module, "probe_image", real_probe)
    with qtbot.waitSignal(page.images_checked, timeout=WAIT_MS):
        page.rescan()
    assert page.image_count() == count


def test_the_image_check_can_be_cancelled(page, qtbot, tmp_path):
    folder = tmp_path / "many"
    for i in range(60):
        make_image(folder / f"img_{i:03d}.png", size=(96, 96), colour=(0, i * 4, 0))
    with qtbot.waitSignal(page.images_loaded, timeout=WAIT_MS):
        page.set_folders([str(folder)])
    assert page.image_count() == 60  # the grid is filled before the check ends
    assert "Checking images" in page.progress.label.text()
    with qtbot.waitSignal(page.images_checked, timeout=WAIT_MS):
        qtbot.mouseClick(page.progress.cancel_button, Qt.MouseButton.LeftButton)
        assert page.progress.isHidden()
    assert "image check was cancelled" in page.message_bar.text()
    assert page.image_count() == 60


def test_changing_folders_forgets_the_old_thumbnails(page, qtbot, tmp_path):
    first = make_dataset(tmp_path / "first")
    load(page, qtbot, first)
    qtbot.waitUntil(lambda: page.loader.has_thumbnail(str(first / "red.png")), timeout=WAIT_MS)
    second = make_image(tmp_path / "second" / "only.png")
    with qtbot.waitSignal(page.images_checked, timeout=WAIT_MS):
        page.set_folders([str(second.parent)])
    assert page.folders() == [str(second.parent)]
    qtbot.waitUntil(lambda: page.loader.has_thumbnail(str(second)), timeout=WAIT_MS)
    assert not any(page.loader.has_thumbnail(str(p)) for p in first.iterdir())
