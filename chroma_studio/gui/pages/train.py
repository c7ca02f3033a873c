"""Train: the recommended settings as one button, other presets as cards, the Advanced drawer, and the run.

Starting is the Studio's: it checks the settings and the images and starts, or says why not. A
problem in the settings is shown in words under the setting it names (the drawer opens and the
cursor jumps there); no images (no folder, an empty folder, or only damaged files, as far as the
Dataset page knows) sends the user to the Dataset page instead.
The big button always trains the recommended settings: when the settings differ from them, it
says that it puts them back, and "Start training with your settings" becomes the main button. A
preset made for other hardware is applied only after the user confirms it. While a run is on,
the page shows it live; afterwards, its outcome. Past runs of the project can be opened again
with their chart and samples; each says how far it went and when it started.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QListWidgetItem, QMessageBox, QPushButton, QWidget

from chroma_studio.base import run_folder as runs
from chroma_studio.base.run_queue import QueueError
from chroma_studio.config import ConfigError
from chroma_studio.gui.machine_info import MachineSummary, PresetOption, describe_settings
from chroma_studio.gui.pages.train_layout import TrainLayout
from chroma_studio.gui.studio import StartResult, Studio
from chroma_studio.gui.widgets.gpu_choice import GpuChoiceWidget

logger = logging.getLogger(__name__)

START_LABEL = "Start training with these settings"
START_OWN_LABEL = "Start training with your settings"
NO_TRIGGER_NOTE = "Training without a trigger word: the LoRA learns from your captions as they are."
NO_TRIGGER_DETAIL = (
    "That works; a trigger word (typed on the Dataset page and put into the captions with Add trigger "
    "word…) would let you call up what it learned by name."
)


def describe_run(run_dir: str | Path, training: bool = False) -> str:
    """A past run for the narrow Past runs list, in two lines: its folder's name, then what it is,
    as in "stopped at step 19 of 400 · 29 Nov 20:16" (the date: when its config was written)."""
    folder = Path(run_dir)
    config_path = folder / runs.CONFIG
    total = runs.read_json(config_path).get("max_train_steps") or 0
    step = runs.last_metrics_step(folder)
    if training:
        state = "training now"
    elif not step:
        state = "not started"
    elif runs.is_finished(folder, step, total):  # as a reopened run judges it
        state = f"finished, {step} steps"
    else:
        state = f"stopped at step {step} of {total}" if total else f"stopped at step {step}"
    try:
        started = datetime.fromtimestamp((config_path if config_path.is_file() else folder).stat().st_mtime)
    except OSError:
        return f"{folder.name}\n{state}"
    year = "" if started.year == datetime.now().year else f" {started.year}"
    return f"{folder.name}\n{state} · {started.day} {started:%b}{year} {started:%H:%M}"


class TrainPage(TrainLayout):
    dataset_page_requested = Signal()
    samples_page_requested = Signal()
    machine_page_requested = Signal()
    note_posted = Signal(str)  # a gentle note for the status bar (the run goes on)
    queue_requested = Signal()  # show the queue of runs (a run was just added to it)

    def __init__(self, studio: Studio, parent: QWidget | None = None) -> None:
        super().__init__(studio.controller, parent)
        self.studio = studio
        self.controller = controller = studio.controller
        self.failure_dialog: QMessageBox | None = None
        self.notice_dialog: QMessageBox | None = None
        self.fit_dialog: QMessageBox | None = None

        self.summary_label.linkActivated.connect(self._on_summary_label_link_activated)
        self.recommended_button.clicked.connect(self._on_recommended_button_clicked)
        self.cards.preset_chosen.connect(self._on_cards_preset_chosen)
        self.start_button.clicked.connect(self._on_start_button_clicked)
        self.queue_button = QPushButton("Add to queue")
        self.queue_button.setObjectName("addToQueueButton")
        self.queue_button.setToolTip("Line up a run with these settings; the queue trains its runs one after another.")
        _place_before(self.start_button, self.queue_button)
        self.queue_button.clicked.connect(self._on_queue_button_clicked)
        self.gpu_choice = GpuChoiceWidget()  # "Use all N GPUs", on a machine with several
        _place_before(self.queue_button, self.gpu_choice)
        self.gpu_choice.processes_chosen.connect(self._on_gpu_choice_processes_chosen)
        self.advanced_toggle.toggled.connect(self._on_advanced_toggle_toggled)
        self.form.value_edited.connect(self._on_form_value_edited)
        self.form.outside_field_requested.connect(self._on_form_outside_field_requested)
        self.runs_list.setSpacing(3)  # its entries have two lines each
        self.runs_list.itemActivated.connect(self._on_runs_list_item_activated)
        self.open_run_button.clicked.connect(self._on_open_run_button_clicked)
        rv = self.run_view
        rv.pause_requested.connect(controller.pause)
        rv.resume_requested.connect(controller.resume)
        rv.stop_requested.connect(controller.stop)
        rv.sample_requested.connect(controller.request_sample)
        rv.save_requested.connect(controller.request_save)
        rv.new_run_requested.connect(self.show_setup)
        rv.resume_run_requested.connect(self._on_run_view_resume_run_requested)
        rv.samples_requested.connect(self.samples_page_requested)
        rv.dataset_requested.connect(self.dataset_page_requested)
        controller.model.run_failed.connect(self._on_model_run_failed)
        controller.run_started.connect(self._on_controller_run_started)
        controller.run_ended.connect(self._on_controller_run_ended)
        studio.config_changed.connect(self._on_studio_config_changed)
        studio.runs_changed.connect(self._on_studio_runs_changed)
        studio.preset_changed.connect(self.cards.set_checked)
        studio.machine_detected.connect(self._on_studio_machine_detected)
        self._on_studio_config_changed()
        self._refresh_runs()
        if studio.summary is not None:
            self._on_studio_machine_detected(studio.summary)

    # -- recommendation and presets --------------------------------------------------------
    def _on_studio_machine_detected(self, summary: MachineSummary) -> None:
        self.reasons_label.setText(" ".join(summary.reasons))
        self.gpu_choice.set_devices(summary.devices, summary.all_gpus)
        self.gpu_choice.set_processes(self.studio.config.run.num_processes)
        self._update_recommended_button()
        self.set_presets(list(summary.presets))

    def set_presets(self, options: list[PresetOption]) -> None:
        self.cards.set_options(options)
        self.cards.set_checked(self.studio.preset)

    def apply_preset(self, option: PresetOption) -> None:
        """Take a preset's settings (the dataset, trigger word and folders stay); say so if it cannot be."""
        try:
            self.studio.apply_preset(option)
        except ConfigError as exc:
            QMessageBox.warning(self, "Preset", f"The preset {option.title} cannot be applied:\n{exc}")

    def _recommended_text(self) -> str:
        option = self.studio.recommended
        device = self.studio.summary.short_label if self.studio.summary is not None else ""
        if option is None:
            return "Train with the current settings"
        if option.settings.get("model_flavour") == "demo":
            return f"Train the demo model on your {device}"
        if option.fits is False:
            return f"Try the smallest settings on your {device} (they may not fit)"
        return f"Train with the recommended settings for your {device}"

    def _update_recommended_button(self) -> None:
        """Say what the big button does now: train the recommended settings, putting back any that differ."""
        changes = self.studio.recommended_changes()
        self.set_start_emphasis(bool(changes))
        self.start_button.setText(START_OWN_LABEL if changes else START_LABEL)
        self.reset_note.setVisible(bool(changes))
        if not changes:
            self.recommended_button.setText(self._recommended_text())
            self.recommended_button.setToolTip(
                "Start training with the settings recommended for this machine."
                if self.studio.recommended is not None
                else "Start training with the settings below."
            )
            return
        listed = describe_settings(changes).replace("\n", "; ")
        self.recommended_button.setText("Reset to the recommended settings and train")
        self.recommended_button.setToolTip(
            f"{self._recommended_text()}: puts back {listed}, then starts. "
            "Settings the recommendation does not cover stay as they are."
        )
        self.reset_note.setText(
            "Your settings differ from the recommended ones. The button above puts back "
            f"<b>{html.escape(listed)}</b> and then trains; settings the recommendation does not cover stay as "
            f"they are. To train with your settings as they are, press <b>{START_OWN_LABEL}</b>."
        )

    # -- starting --------------------------------------------------------------------------
    def start(self, preset: PresetOption | None = None, resume_dir: str | None = None) -> bool:
        """Ask the Studio to start a run; False (with the reason shown) when it cannot start."""
        result = self.studio.start_run(preset, resume_dir)
        if result.running:
            self.show_run()
        else:
            self._show_refusal(result)
        if not result.started:
            return False
        self.show_run()
        if not self.studio.trigger_word:
            self.controller.model.log_added.emit("info", f"{NO_TRIGGER_NOTE} {NO_TRIGGER_DETAIL}")
            self.note_posted.emit(NO_TRIGGER_NOTE)
        return True

    def _show_refusal(self, result: StartResult) -> None:
        """Why a run cannot start (or be queued): no images (to the Dataset page), or the settings' problems."""
        if result.missing_images:
            ok = QMessageBox.StandardButton.Ok
            notice = QMessageBox(QMessageBox.Icon.Information, "No images yet", result.missing_images, ok, self)
            self.notice_dialog = notice
            notice.open()  # window-modal, does not block the event loop
            self.dataset_page_requested.emit()
        elif result.problems:
            self.show_setup()
            self.advanced_toggle.setChecked(True)
            self._show_problems()
            self.form.focus_field(result.problems[0].key)

    def show_setup(self) -> None:
        self.stack.setCurrentWidget(self.setup_view)

    def show_run(self) -> None:
        self.stack.setCurrentWidget(self.run_view)

    def open_run(self, output_dir: str) -> None:
        """Show a past run's chart, samples and files."""
        try:
            self.controller.open_folder(output_dir)
        except (OSError, RuntimeError) as exc:
            QMessageBox.warning(self, "Open run", str(exc))
            return
        self.show_run()

    # -- slots -----------------------------------------------------------------------------
    def _on_recommended_button_clicked(self) -> None:
        self.start(self.studio.recommended)

    def _on_start_button_clicked(self) -> None:
        self.start()

    def _on_queue_button_clicked(self) -> None:
        self.add_to_queue()

    def add_to_queue(self) -> bool:
        """Add a snapshot of the settings to the queue of runs; False (with the reason shown) when refused."""
        try:
            result = self.studio.add_to_queue()
        except (QueueError, OSError) as exc:
            ok = QMessageBox.StandardButton.Ok
            notice = QMessageBox(QMessageBox.Icon.Warning, "Add to queue", str(exc), ok, self)
            self.notice_dialog = notice
            notice.open()  # window-modal, does not block the event loop
            return False
        if result.missing_images or result.problems:
            self._show_refusal(result)
            return False
        self.note_posted.emit(f"Added to the queue of runs: {Path(result.output_dir).name}")
        self.queue_requested.emit()
        return True

    def _on_cards_preset_chosen(self, option: PresetOption) -> None:
        if option.fits is False:
            self._ask_to_apply(option)
        else:
            self.apply_preset(option)

    def _ask_to_apply(self, option: PresetOption) -> None:
        """A preset for other hardware: say what it needs and what this machine has; apply it only if asked."""
        self.cards.set_checked(self.studio.preset)  # nothing changes until the user says so
        needs = option.needs or "other hardware"
        summary = self.studio.summary
        has = f" This machine has {summary.description}." if summary is not None else ""
        text = f"“{option.title}” needs {needs}.{has}"
        dialog = QMessageBox(QMessageBox.Icon.Warning, "This preset is for other hardware", text, parent=self)
        dialog.setObjectName("presetFitDialog")
        dialog.setInformativeText(
            "With it, training will most likely run out of memory or be far too slow to finish. Use it anyway?"
        )
        use = dialog.addButton("Use it anyway", QMessageBox.ButtonRole.AcceptRole)
        dialog.setDefaultButton(dialog.addButton(QMessageBox.StandardButton.Cancel))
        dialog.finished.connect(partial(self._on_fit_dialog_finished, dialog, use, option))
        self.fit_dialog = dialog
        dialog.open()  # window-modal, does not block the event loop

    def _on_fit_dialog_finished(self, dialog: QMessageBox, use: QPushButton, option: PresetOption, _code: int) -> None:
        if dialog.clickedButton() is use:
            self.apply_preset(option)

    def _on_advanced_toggle_toggled(self, shown: bool) -> None:
        self.form.setVisible(shown)
        self.how_label.setVisible(not shown)
        self.reasons_label.setVisible(not shown)  # room for the form; the reasons are on Machine & model too
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        if shown:  # on a low window the page scrolls: bring the form into view once it is laid out
            QTimer.singleShot(0, self, self._scroll_to_form)

    def _scroll_to_form(self) -> None:
        self.setup_view.ensureWidgetVisible(self.form, 0, 0)

    def _on_form_value_edited(self, key: str, value: Any) -> None:
        self.studio.edit_setting(key, value)
        self._show_problems()

    def _on_gpu_choice_processes_chosen(self, processes: int) -> None:
        changes = self.studio.processes_changes(processes)
        for key, value in changes.items():
            self._on_form_value_edited(key, value)
        if len(changes) > 1 and self.studio.summary is not None and self.studio.summary.all_gpus is not None:
            self.note_posted.emit(self.studio.summary.all_gpus.description)  # why the settings changed

    def _show_problems(self) -> None:
        self.form.show_problems(self.studio.problems(), self.studio.input_errors)

    def _on_form_outside_field_requested(self, key: str) -> None:
        if key in ("dataset_dirs", "trigger_word"):
            self.dataset_page_requested.emit()

    def _on_summary_label_link_activated(self, link: str) -> None:
        {"dataset": self.dataset_page_requested, "model": self.machine_page_requested}[link].emit()

    def _on_studio_config_changed(self) -> None:
        config = self.studio.config
        self.form.set_config(config)
        self.gpu_choice.set_processes(config.run.num_processes)
        self._show_problems()
        count = len(config.data.dataset_dirs)
        folders = f"{count} image folder{'s' if count != 1 else ''}" if count else "no images yet"
        trigger = f"<b>{html.escape(config.data.trigger_word)}</b>" if config.data.trigger_word else "none (optional)"
        flat = config.to_dict()
        keys = ("model_flavour", "base_model_precision", "lora_rank", "resolution", "train_batch_size")
        settings = describe_settings({k: flat[k] for k in keys}, short=True)
        if config.model.pretrained_model_name_or_path:
            settings = f"{Path(config.model.pretrained_model_name_or_path).name} · {settings}"
        steps = config.optim.max_train_steps
        self.summary_label.setText(
            f"<a href='dataset'>Dataset</a>: {folders} · trigger word: {trigger} · "
            f"<a href='model'>Model</a>: {html.escape(settings)} · {steps if steps else 'default'} steps"
        )
        self._update_recommended_button()

    def _on_studio_runs_changed(self) -> None:
        self._refresh_runs()

    def _refresh_runs(self) -> None:
        self.runs_list.clear()
        live = Path(self.controller.model.output_dir) if self.controller.running else None
        for run in reversed(self.studio.session.existing_runs()):
            item = QListWidgetItem(describe_run(run, training=Path(run) == live))
            item.setToolTip(run)
            item.setData(Qt.ItemDataRole.UserRole, run)
            self.runs_list.addItem(item)
        self.open_run_button.setEnabled(self.runs_list.count() > 0)
        self.no_runs_label.setVisible(self.runs_list.count() == 0)
        self.runs_list.setVisible(self.runs_list.count() > 0)
        self.open_run_button.setVisible(self.runs_list.count() > 0)

    def _on_runs_list_item_activated(self, item: QListWidgetItem) -> None:
        self.open_run(item.data(Qt.ItemDataRole.UserRole))

    def _on_open_run_button_clicked(self) -> None:
        item = self.runs_list.currentItem() or self.runs_list.item(0)
        if item is not None:
            self.open_run(item.data(Qt.ItemDataRole.UserRole))

    def _on_run_view_resume_run_requested(self, output_dir: str) -> None:
        self.start(resume_dir=output_dir)

    def _on_controller_run_started(self, output_dir: str) -> None:
        self._refresh_runs()  # a resumed run is training now

    def _on_controller_run_ended(self, result: Any) -> None:
        self._refresh_runs()

    def _on_model_run_failed(self, failure: Any) -> None:
        dialog = QMessageBox(QMessageBox.Icon.Critical, "Training failed", failure.message, parent=self)
        dialog.setObjectName("failureDialog")
        dialog.setInformativeText(failure.hint or "")
        if failure.traceback:
            dialog.setDetailedText(failure.traceback)
        dialog.setStandardButtons(QMessageBox.StandardButton.Ok)
        self.failure_dialog = dialog
        dialog.open()  # window-modal, does not block the event loop


def _place_before(anchor: QWidget, widget: QWidget) -> None:
    """Put ``widget`` just before ``anchor`` in the row of buttons that holds it."""
    for row in anchor.parentWidget().findChildren(QHBoxLayout):
        index = row.indexOf(anchor)
        if index >= 0:
            row.insertWidget(index, widget)
            return
