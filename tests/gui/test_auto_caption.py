"""Caption images on the Dataset page: the first captions previewed, Accept, Change style, Cancel, one undo.

The engine side is the real engine process with the ``demo`` captioner where it is installed
(``REAL_ENGINE``); the flow tests that need exact timing (cancel part-way, an edit made during
the pass) use a scripted engine at the process boundary, which answers a ``CaptionJob`` with the
events the engine process sends and obeys the same control.
"""

from __future__ import annotations

import codecs
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QTextCursor
from qt_fixtures import DATASET_WAIT_MS, load_folder, open_dataset_page

from chroma_studio.gui.dataset.auto_caption_dialog import AutoCaptionDialog
from chroma_studio.gui.dataset.auto_caption_page import TRAINING_REASON
from chroma_studio.gui.dataset.auto_caption_run import PREVIEW_COUNT, Stage
from chroma_studio.gui.dataset.auto_caption_targets import duration_text, rate_text
from chroma_studio.gui.dataset.caption_editor import SAVE_DELAY_MS
from chroma_studio.gui.dataset.model import DatasetRole
from chroma_studio.protocol.events import (
    CaptioningFinished,
    CaptionMade,
    CaptionSkipped,
    Failed,
    Phase,
    PhaseChanged,
    Progress,
    RunStatus,
)
from chroma_studio.protocol.jobs import CaptionJob, CaptionStyle
from chroma_studio.protocol.remote import RemoteControl

WAIT_MS = DATASET_WAIT_MS
UNCAPTIONED = [f"img{i:02d}" for i in range(9)]


class ScriptedEngine:
    """Answers a ``CaptionJob`` as the engine process does: a caption per image, a pause after
    ``pause_after``, ``CaptionSkipped`` for a file that is not an image, a stop at once."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.jobs: list[CaptionJob] = []
        self.gate = threading.Event()  # with a delay: set to let the captions after the preview come
        self.gate.set()

    def caption(self, job: CaptionJob, image: str) -> str:
        words = f"a {job.class_word or 'thing'} in {Path(image).stem}"
        if job.style is CaptionStyle.TAGS:
            words = f"thing, {Path(image).stem}"
        return ", ".join(part for part in (job.prefix, f"{job.trigger} {words}".strip(), job.suffix) if part)

    def __call__(self, job: CaptionJob, sink, control: RemoteControl):
        self.jobs.append(job)
        sink(PhaseChanged(Phase.LOADING, "Loading the captioner"))
        made = skipped = 0
        start = time.monotonic()
        total = len(job.images)
        for index, image in enumerate(job.images):
            if control.stop_requested:
                break
            time.sleep(self.delay_s)
            if Path(image).read_bytes()[:4] == b"junk":
                sink(CaptionSkipped(image, "cannot be decoded; re-export it or remove it from the dataset."))
                skipped += 1
            else:
                sink(CaptionMade(image, self.caption(job, image), index, total))
                made += 1
            sink(Progress("Captioning images", index + 1, total, "images"))
            if job.pause_after and made == job.pause_after and index + 1 < total:
                control.pause()
                sink(PhaseChanged(Phase.PAUSED, f"Paused after {made} captions"))
                control.wait_while_paused()
                self.gate.wait(10)
        finished = CaptioningFinished(made, skipped, control.stop_requested, time.monotonic() - start)
        sink(finished)
        return finished


def make_folder(folder: Path) -> Path:
    """Nine images without captions and two with captions (one CRLF with a BOM, one with trailing blank lines)."""
    folder.mkdir(parents=True)
    for index, stem in enumerate([*UNCAPTIONED, "kept_a", "kept_b"]):
        Image.new("RGB", (320, 320), (20 * index, 100, 200)).save(folder / f"{stem}.png")
    (folder / "kept_a.txt").write_bytes(codecs.BOM_UTF8 + b"an old caption\r\n")
    (folder / "kept_b.txt").write_bytes(b"another old caption  \n\n")  # spacing only bytes can restore
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_folder(tmp_path / "photos")


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def page(qtbot, folder, engine):
    with open_dataset_page(qtbot, resolution=256) as page:
        page.resize(1024, 640)
        page.auto_caption.run.backend = engine
        load_folder(page, qtbot, folder)
        yield page
        close_dialog(page, qtbot)


def open_dialog(page, qtbot) -> AutoCaptionDialog:
    assert page.auto_caption_button.isEnabled(), page.auto_caption_button.toolTip()
    qtbot.mouseClick(page.auto_caption_button, Qt.MouseButton.LeftButton)
    dialog = page.auto_caption.dialog
    assert isinstance(dialog, AutoCaptionDialog) and dialog.isVisible()
    dialog.form.captioner_combo.setCurrentIndex(dialog.form.captioner_combo.findData("demo"))
    return dialog


def start_and_wait_for_preview(page, qtbot, dialog: AutoCaptionDialog) -> None:
    with qtbot.waitSignal(page.auto_caption.run.stage_changed, timeout=WAIT_MS, check_params_cb=_is(Stage.PREVIEW)):
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)


def _is(stage: Stage):
    return lambda value: value is stage


def wait_for_end(page, qtbot):
    run = page.auto_caption.run
    if run.stage is not Stage.IDLE:
        with qtbot.waitSignal(run.ended, timeout=WAIT_MS):
            pass
    return run.outcome


def dialog_closed(page) -> bool:
    dialog = page.auto_caption.dialog
    return dialog is None or not dialog.isVisible()


def grid_caption(page, name: str) -> str:
    return page.model.data(
        page.model.index(page.model.row_for_path(page.folders()[0] + f"/{name}.png")), DatasetRole.CAPTION
    )


# -- the real engine process with the demo captioner ------------------------------------------------------
ENGINE_WAIT_MS = 240_000  # the engine process loads torch and builds the demo captioner once per session


@pytest.fixture
def real_page(qtbot, folder):
    with open_dataset_page(qtbot, resolution=256) as page:
        page.resize(1024, 640)
        load_folder(page, qtbot, folder)
        yield page
        close_dialog(page, qtbot)


def close_dialog(page, qtbot) -> None:
    """Let a dialog left open or closed at the end of a test be deleted while its page still lives: a
    page torn down with its dialog's deletion still pending crashes Qt later, in another test."""
    if page.auto_caption.dialog is not None:
        page.auto_caption.dialog.reject()
        qtbot.waitUntil(lambda: page.auto_caption.dialog is None)


def start_real_pass(page, qtbot, only_missing: bool) -> tuple[AutoCaptionDialog, dict[str, str]]:
    """Start a pass with the demo captioner and wait for its first captions; returns what was written, by name."""
    written: dict[str, str] = {}
    page.auto_caption.run.caption_written.connect(lambda image, caption: written.__setitem__(image.stem, caption))
    dialog = open_dialog(page, qtbot)
    dialog.form.only_missing_box.setChecked(only_missing)
    dialog.form.trigger_edit.setText("sks")
    with qtbot.waitSignal(
        page.auto_caption.run.stage_changed, timeout=ENGINE_WAIT_MS, check_params_cb=_is(Stage.PREVIEW)
    ):
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    return dialog, written


def test_in_the_engine_the_first_captions_accept_and_one_undo_byte_for_byte(real_page, qtbot, folder):
    page = real_page
    (folder / "img02.png").write_bytes(b"junk: damaged after the scan")
    before = snapshot(folder)
    dialog, written = start_real_pass(page, qtbot, only_missing=False)
    assert list(written) == ["img00", "img01", "img03", "img04"], "the damaged file is skipped"
    assert dialog.preview_captions() == list(written.values())
    assert all(caption.startswith("sks") for caption in written.values()), "the trigger word goes first"
    assert {p.stem for p in folder.glob("*.txt")} == {"img00", "img01", "img03", "img04", "kept_a", "kept_b"}
    assert (folder / "img00.txt").read_text(encoding="utf-8") == written["img00"]
    assert grid_caption(page, "img01") == written["img01"], "the grid shows each caption as it is written"
    with qtbot.waitSignal(page.auto_caption.run.ended, timeout=ENGINE_WAIT_MS):
        qtbot.mouseClick(dialog.accept_button, Qt.MouseButton.LeftButton)
    assert len(written) == 10  # 11 images, one damaged
    for stem, caption in written.items():
        assert normalised(folder / f"{stem}.txt") == caption
        assert grid_caption(page, stem) == caption
    assert (folder / "kept_a.txt").read_bytes().startswith(codecs.BOM_UTF8), "the file's style is kept"
    assert "Skipped img02.png" in page.message_bar.text() and "10 captions written" in page.message_bar.text()
    assert {p.suffix for p in folder.iterdir()} == {".png", ".txt"}, "the folder gets nothing but .txt files"
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)
    assert snapshot(folder) == before, "one undo: every caption as it was, created files removed"
    assert grid_caption(page, "img00") == ""


def test_in_the_engine_change_style_puts_the_first_captions_back(real_page, qtbot, folder):
    page = real_page
    before = snapshot(folder)
    dialog, written = start_real_pass(page, qtbot, only_missing=False)
    assert len(written) == PREVIEW_COUNT and snapshot(folder) != before
    with qtbot.waitSignal(page.auto_caption.run.ended, timeout=ENGINE_WAIT_MS):
        qtbot.mouseClick(dialog.change_button, Qt.MouseButton.LeftButton)
    assert snapshot(folder) == before, "byte for byte, and no caption file left that was not there"
    assert dialog.stack.currentIndex() == 0 and not page.caption_actions.history.can_undo
    assert grid_caption(page, "img00") == ""
    dialog.reject()


def normalised(path: Path) -> str:
    from chroma_studio.dataset import read_caption

    return read_caption(path)


# -- the flow, with a scripted engine at the process boundary -----------------------------------------------
def test_first_captions_are_written_shown_and_accept_captions_the_rest(page, qtbot, folder, engine):
    before = snapshot(folder)
    dialog = open_dialog(page, qtbot)
    assert dialog.form.only_missing_box.isChecked()
    assert "9 images will be captioned" in dialog.form.scope_label.text()
    start_and_wait_for_preview(page, qtbot, dialog)
    assert len(engine.jobs) == 1 and engine.jobs[0].pause_after == PREVIEW_COUNT
    assert [Path(p).stem for p in engine.jobs[0].images] == UNCAPTIONED, "only images without a caption"
    written = sorted(p.stem for p in folder.glob("img*.txt"))
    assert written == UNCAPTIONED[:PREVIEW_COUNT]
    assert dialog.preview_captions() == [f"a thing in {stem}" for stem in UNCAPTIONED[:PREVIEW_COUNT]]
    assert grid_caption(page, "img00") == "a thing in img00", "the grid shows each caption as it is written"
    assert not page.undo_button.isEnabled(), "no undo while the pass runs"
    with qtbot.waitSignal(page.auto_caption.run.ended, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.accept_button, Qt.MouseButton.LeftButton)
    assert sorted(p.stem for p in folder.glob("img*.txt")) == UNCAPTIONED
    assert (folder / "img08.txt").read_text(encoding="utf-8") == "a thing in img08"
    assert (folder / "kept_a.txt").read_bytes() == before["kept_a.txt"], "captions that exist are kept"
    assert grid_caption(page, "img08") == "a thing in img08"
    assert "9 captions written" in page.message_bar.text()
    assert page.undo_button.isEnabled() and page.caption_actions.history.undo_description == "Caption 9 images"


def test_one_undo_restores_every_file_byte_for_byte(page, qtbot, folder):
    before = snapshot(folder)
    dialog = open_dialog(page, qtbot)
    dialog.form.only_missing_box.setChecked(False)  # replace the existing captions too
    assert "11 images will be captioned" in dialog.form.scope_label.text()
    start_and_wait_for_preview(page, qtbot, dialog)
    with qtbot.waitSignal(page.auto_caption.run.ended, timeout=WAIT_MS):
        dialog.accept_button.click()
    assert (folder / "kept_a.txt").read_bytes() == codecs.BOM_UTF8 + b"a thing in kept_a\r\n"
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)
    assert snapshot(folder) == before, "every caption as it was, and no .txt file left that was not there"
    assert grid_caption(page, "img03") == ""
    assert not page.caption_actions.history.can_undo


def test_change_style_puts_the_first_captions_back_byte_for_byte(page, qtbot, folder, engine):
    before = snapshot(folder)
    dialog = open_dialog(page, qtbot)
    dialog.form.only_missing_box.setChecked(False)
    start_and_wait_for_preview(page, qtbot, dialog)
    assert snapshot(folder) != before
    with qtbot.waitSignal(page.auto_caption.run.ended, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.change_button, Qt.MouseButton.LeftButton)
    assert snapshot(folder) == before
    assert dialog.isVisible() and dialog.stack.currentIndex() == 0, "back to the choices"
    assert not page.caption_actions.history.can_undo, "nothing was kept: nothing to undo"
    assert grid_caption(page, "img00") == ""
    dialog.form.set_style(CaptionStyle.TAGS)
    start_and_wait_for_preview(page, qtbot, dialog)
    assert engine.jobs[-1].style is CaptionStyle.TAGS
    assert dialog.preview_captions()[0] == "thing, img00"
    with qtbot.waitSignal(page.auto_caption.run.ended, timeout=WAIT_MS):
        dialog.accept_button.click()
    assert dialog_closed(page)


def test_cancel_keeps_what_was_written_as_one_undo_step(page, qtbot, folder, engine):
    before = snapshot(folder)
    engine.delay_s = 0.05
    dialog = open_dialog(page, qtbot)
    start_and_wait_for_preview(page, qtbot, dialog)
    dialog.accept_button.click()
    assert dialog_closed(page), "after Accept the page's progress line follows the pass"
    qtbot.waitUntil(lambda: len(page.auto_caption.run.outcome.written) >= 6, timeout=WAIT_MS)
    assert page.progress.isVisible() and "images/s" in page.progress.label.text()
    with qtbot.waitSignal(page.auto_caption.run.ended, timeout=WAIT_MS):
        qtbot.mouseClick(page.progress.cancel_button, Qt.MouseButton.LeftButton)
    outcome = page.auto_caption.run.outcome
    assert outcome.cancelled and 6 <= len(outcome.written) < len(UNCAPTIONED)
    captions = sorted(folder.glob("img*.txt"))
    assert [p.stem for p in captions] == UNCAPTIONED[: len(outcome.written)]
    assert all(p.read_text(encoding="utf-8") == f"a thing in {p.stem}" for p in captions), "no partial file"
    assert {p.suffix for p in folder.iterdir()} == {".png", ".txt"}, "no temporary file is left"
    assert "stopped" in page.message_bar.text() and "are kept" in page.message_bar.text()
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        page.undo()
    assert snapshot(folder) == before


def test_a_caption_typed_during_the_pass_is_not_overwritten(page, qtbot, folder, engine):
    dialog = open_dialog(page, qtbot)
    start_and_wait_for_preview(page, qtbot, dialog)
    engine.gate.clear()  # the rest waits until the user has typed
    dialog.accept_button.click()
    row = page.model.row_for_path(folder / "img06.png")
    page.grid.selectionModel().setCurrentIndex(
        page.filter_model.mapFromSource(page.model.index(row)), QItemSelectionModel.SelectionFlag.ClearAndSelect
    )
    assert not page.editor.is_read_only(), "the editor stays open during the pass"
    page.editor.edit.moveCursor(QTextCursor.MoveOperation.End)
    qtbot.keyClicks(page.editor.edit, "my own words")
    qtbot.waitUntil(lambda: (folder / "img06.txt").exists(), timeout=5 * SAVE_DELAY_MS)
    engine.gate.set()
    outcome = wait_for_end(page, qtbot)
    assert (folder / "img06.txt").read_text(encoding="utf-8") == "my own words"
    assert outcome.edited == [folder / "img06.txt"]
    assert (folder / "img07.txt").read_text(encoding="utf-8") == "a thing in img07"
    assert "you edited meanwhile" in page.message_bar.text()
    history = page.caption_actions.history
    assert history.undo_description == "Edit the caption of img06", "the typed save is its own, newer step"


def test_a_file_the_captioner_cannot_read_is_skipped_with_a_message(page, qtbot, folder):
    (folder / "img02.png").write_bytes(b"junk, not an image")  # as a file damaged after the scan
    dialog = open_dialog(page, qtbot)
    start_and_wait_for_preview(page, qtbot, dialog)
    with qtbot.waitSignal(page.auto_caption.run.ended, timeout=WAIT_MS):
        dialog.accept_button.click()
    assert not (folder / "img02.txt").exists()
    assert "Skipped img02.png" in page.message_bar.text()


def test_caption_is_disabled_with_the_reason_while_a_training_runs(page, qtbot):
    page.studio.controller.model.set_status(RunStatus.RUNNING)
    assert not page.auto_caption_button.isEnabled()
    assert page.auto_caption_button.toolTip() == TRAINING_REASON
    assert page.auto_caption.open_dialog() is None
    page.studio.controller.model.set_status(RunStatus.FINISHED)
    assert page.auto_caption_button.isEnabled()


def test_florence_offers_no_tags_and_says_why(page, qtbot):
    dialog = open_dialog(page, qtbot)
    form = dialog.form
    form.set_style(CaptionStyle.TAGS)
    form.captioner_combo.setCurrentIndex(form.captioner_combo.findData("florence-2-large"))
    assert form.style_combo.currentData() == CaptionStyle.NATURAL
    item = form.style_combo.model().item(form.style_combo.findData(CaptionStyle.TAGS))
    assert not item.isEnabled() and "Florence-2" in item.toolTip()
    assert form.style_note.isVisibleTo(dialog) and "tags" in form.style_note.text()
    details = form.captioner_details.text()
    from chroma_studio.dataset.captioners import GB, captioner

    size = f"{captioner('florence-2-large').size_bytes / GB:.1f} GB"
    assert size in details and "MIT" in details, "size and license before a download"
    assert "recommended" in form.captioner_combo.itemText(form.captioner_combo.findData("florence-2-large"))
    dialog.reject()


def test_the_dialog_and_the_progress_fit_a_1024x640_window(page, qtbot, tmp_path):
    window = page.window()
    assert window.width() <= 1024 and window.height() <= 640
    dialog = open_dialog(page, qtbot)
    hint = dialog.minimumSizeHint()
    assert hint.width() <= 1000 and hint.height() <= 600, hint
    assert dialog.width() <= 1000 and dialog.height() <= 600
    dialog.grab().save(str(tmp_path / "choices.png"))
    start_and_wait_for_preview(page, qtbot, dialog)
    assert dialog.minimumSizeHint().height() <= 600
    dialog.grab().save(str(tmp_path / "preview.png"))
    assert page.minimumSizeHint().width() <= 1024 and page.minimumSizeHint().height() <= 640
    with qtbot.waitSignal(page.auto_caption.run.ended, timeout=WAIT_MS):
        dialog.cancel_button.click()


def test_an_engine_failure_is_shown_in_the_dialog_and_writes_nothing(page, qtbot, folder):
    before = snapshot(folder)

    def failing_engine(job, sink, control):
        sink(PhaseChanged(Phase.LOADING, "Loading the captioner"))
        sink(Failed("Florence-2 large is not downloaded and the computer is offline.", "Connect and try again."))
        return None

    page.auto_caption.run.backend = failing_engine
    dialog = open_dialog(page, qtbot)
    with qtbot.waitSignal(page.auto_caption.run.ended, timeout=WAIT_MS):
        dialog.start_button.click()
    assert dialog.isVisible() and dialog.stack.currentIndex() == 0, "back to the choices, to pick another"
    assert dialog.error_label.isVisibleTo(dialog) and "offline" in dialog.error_label.text()
    assert dialog.start_button.isEnabled()
    assert snapshot(folder) == before and not page.caption_actions.history.can_undo
    dialog.reject()


def test_progress_reads_as_images_per_second_and_time_left():
    assert rate_text(10, 5.0, 30) == "2.0 images/s · about 15 s left"
    assert rate_text(3, 60.0, 120) == "20 s per image · about 40 min left"
    assert rate_text(5, 2.0, 0) == "2.5 images/s"
    assert rate_text(0, 1.0, 5) == "" and duration_text(4000) == "1 h 7 min"


def test_a_pass_over_the_selection_shorter_than_the_preview_is_kept_in_one_click(page, qtbot, folder, engine):
    selection = page.grid.selectionModel()
    selection.clearSelection()
    for stem in ("img05", "img06", "kept_a"):
        index = page.filter_model.mapFromSource(page.model.index(page.model.row_for_path(folder / f"{stem}.png")))
        selection.select(index, QItemSelectionModel.SelectionFlag.Select)
    dialog = open_dialog(page, qtbot)
    assert dialog.form.selection_button.isChecked(), "several images selected: the selection is the scope"
    assert "2 images will be captioned" in dialog.form.scope_label.text()  # kept_a has a caption
    start_and_wait_for_preview(page, qtbot, dialog)
    assert [Path(p).stem for p in engine.jobs[0].images] == ["img05", "img06"]
    assert dialog.accept_button.text() == "Keep these captions"
    with qtbot.waitSignal(page.auto_caption.run.ended, timeout=WAIT_MS):
        dialog.accept_button.click()
    assert sorted(p.stem for p in folder.glob("img*.txt")) == ["img05", "img06"]
    assert page.caption_actions.history.undo_description == "Caption 2 images"
