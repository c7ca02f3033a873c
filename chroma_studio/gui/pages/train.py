"""Train: the recommended settings as one button, other presets as cards, the Advanced drawer, and the run.

Starting checks the settings first: a problem is shown in words under the setting it names (the
drawer opens and the cursor jumps there); missing images send the user to the Dataset page.
While a run is on, the page shows it live; afterwards, its outcome. Past runs of the project can
be opened again with their chart and samples.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.config import FIELDS, ConfigError, errors
from chroma_studio.gui.machine_info import PresetOption, describe_settings
from chroma_studio.gui.run_controller import RunController
from chroma_studio.gui.session import ProjectSession
from chroma_studio.gui.widgets.config_form import MANAGED_ELSEWHERE, ConfigFormWidget
from chroma_studio.gui.widgets.preset_cards import PresetCardsWidget
from chroma_studio.gui.widgets.run_view import RunViewWidget

logger = logging.getLogger(__name__)


class TrainPage(QWidget):
    dataset_page_requested = Signal()
    samples_page_requested = Signal()
    machine_page_requested = Signal()

    def __init__(self, session: ProjectSession, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.controller = controller
        self.recommended: PresetOption | None = None
        self.input_errors: dict[str, str] = {}
        self.failure_dialog: QMessageBox | None = None
        self.notice_dialog: QMessageBox | None = None

        self.stack = QStackedWidget()
        self.setup_view = self._build_setup()
        self.run_view = RunViewWidget(controller.model)
        self.stack.addWidget(self.setup_view)
        self.stack.addWidget(self.run_view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

        rv = self.run_view
        rv.pause_requested.connect(controller.pause)
        rv.resume_requested.connect(controller.resume)
        rv.stop_requested.connect(controller.stop)
        rv.sample_requested.connect(controller.request_sample)
        rv.save_requested.connect(controller.request_save)
        rv.new_run_requested.connect(self.show_setup)
        rv.resume_run_requested.connect(self._on_run_view_resume_run_requested)
        rv.samples_requested.connect(self.samples_page_requested)
        controller.model.run_failed.connect(self._on_model_run_failed)
        controller.run_ended.connect(self._on_controller_run_ended)
        session.config_changed.connect(self._on_session_config_changed)
        session.runs_changed.connect(self._on_session_runs_changed)
        self._on_session_config_changed()
        self._refresh_runs()

    # -- layout ----------------------------------------------------------------------------
    def _build_setup(self) -> QWidget:
        view = QWidget()
        title = QLabel("Train your LoRA")
        title.setObjectName("pageTitle")
        self.summary_label = QLabel()
        self.summary_label.setObjectName("trainSummary")
        self.summary_label.setWordWrap(True)
        self.summary_label.linkActivated.connect(self._on_summary_label_link_activated)
        self.recommended_button = QPushButton("Train with the recommended settings")
        self.recommended_button.setObjectName("bigTrainButton")
        self.recommended_button.setMinimumHeight(64)
        self.recommended_button.clicked.connect(self._on_recommended_button_clicked)
        self.reasons_label = QLabel("Detecting your machine…")
        self.reasons_label.setObjectName("hintLabel")
        self.reasons_label.setWordWrap(True)
        self.cards = PresetCardsWidget()
        self.cards.preset_chosen.connect(self._on_cards_preset_chosen)
        self.start_button = QPushButton("Start training with these settings")
        self.start_button.setObjectName("startButton")
        self.start_button.clicked.connect(self._on_start_button_clicked)
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setObjectName("advancedToggle")
        self.advanced_toggle.setText("Advanced settings")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.toggled.connect(self._on_advanced_toggle_toggled)
        self.form = ConfigFormWidget()
        self.form.value_edited.connect(self._on_form_value_edited)
        self.form.outside_field_requested.connect(self._on_form_outside_field_requested)
        self.form.hide()
        self.how_label = QLabel(
            "<b>What happens when you press Train</b><ol>"
            "<li>Your captions and images are encoded once and cached.</li>"
            "<li>The model is downloaded the first time (about 30 GB for Chroma; the demo needs nothing).</li>"
            "<li>Training runs in the background: the loss curve and sample images appear as it learns. "
            "Pause, stop (a checkpoint is kept, so you can resume), or ask for samples at any time.</li>"
            "<li>At the end, the LoRA file is in its run folder, ready for ComfyUI or diffusers.</li></ol>"
            "Every other setting is under <i>Advanced settings</i>; the defaults are the recommended ones."
        )
        self.how_label.setObjectName("howItWorks")
        self.how_label.setWordWrap(True)
        self.how_label.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.runs_list = QListWidget()
        self.runs_list.setObjectName("pastRuns")
        self.runs_list.itemActivated.connect(self._on_runs_list_item_activated)
        self.open_run_button = QPushButton("Open run")
        self.open_run_button.clicked.connect(self._on_open_run_button_clicked)

        presets_title = QLabel("Or start from a preset")
        presets_title.setObjectName("sectionTitle")
        main = QVBoxLayout()
        main.addWidget(title)
        main.addWidget(self.summary_label)
        main.addWidget(self.recommended_button)
        main.addWidget(self.reasons_label)
        main.addSpacing(8)
        main.addWidget(presets_title)
        main.addWidget(self.cards)
        row = QHBoxLayout()
        row.addWidget(self.advanced_toggle)
        row.addStretch(1)
        row.addWidget(self.start_button)
        main.addLayout(row)
        main.addWidget(self.form, 1)
        main.addWidget(self.how_label, 1)
        side = QVBoxLayout()
        runs_title = QLabel("Past runs")
        runs_title.setObjectName("sectionTitle")
        self.no_runs_label = QLabel("Runs of this project appear here; open one to see its curve and samples again.")
        self.no_runs_label.setObjectName("hintLabel")
        self.no_runs_label.setWordWrap(True)
        side.addWidget(runs_title)
        side.addWidget(self.no_runs_label)
        side.addWidget(self.runs_list, 1)
        side.addStretch(0)
        side.addWidget(self.open_run_button)
        layout = QHBoxLayout(view)
        layout.addLayout(main, 3)
        layout.addLayout(side, 1)
        return view

    # -- recommendation and presets --------------------------------------------------------
    def set_recommendation(self, device_label: str, option: PresetOption | None, reasons: list[str]) -> None:
        self.recommended = option
        if option is None:
            text = "Train with the current settings"
        elif option.settings.get("model_flavour") == "demo":
            text = f"Train the demo model on your {device_label}"
        elif option.fits is False:
            text = f"Try the smallest settings on your {device_label} (they may not fit)"
        else:
            text = f"Train with the recommended settings for your {device_label}"
        self.recommended_button.setText(text)
        self.reasons_label.setText(" ".join(reasons) if reasons else "")

    def set_presets(self, options: list[PresetOption]) -> None:
        self.cards.set_options(options)
        self.cards.set_checked(self.session.preset)

    def apply_preset(self, option: PresetOption) -> None:
        """Take a preset's settings; the dataset, trigger word and folders stay as they are."""
        values = {k: v for k, v in option.settings.items() if k in FIELDS and k not in MANAGED_ELSEWHERE}
        try:
            config = self.session.config.replace(**values)
        except ConfigError as exc:
            QMessageBox.warning(self, "Preset", f"The preset {option.title} cannot be applied:\n{exc}")
            return
        self.input_errors.clear()
        self.session.set_config(config, preset=option.key)
        self.cards.set_checked(option.key)

    # -- starting --------------------------------------------------------------------------
    def start(self, preset: PresetOption | None = None, resume_dir: str | None = None) -> bool:
        """Check the settings and start a run; False (with the reason shown) when it cannot start."""
        if self.controller.running:
            self.show_run()
            return False
        if preset is not None:
            self.apply_preset(preset)
        if not self.session.config.data.dataset_dirs:
            notice = QMessageBox(
                QMessageBox.Icon.Information,
                "No images yet",
                "Add a folder of images first: drop it on the Dataset page, or use its Add folder button.",
                QMessageBox.StandardButton.Ok,
                self,
            )
            self.notice_dialog = notice
            notice.open()  # window-modal, does not block the event loop
            self.dataset_page_requested.emit()
            return False
        problems = self.session.problems()
        if self.input_errors or errors(problems):
            self.show_setup()
            self.advanced_toggle.setChecked(True)
            self.form.show_problems(problems, self.input_errors)
            first = next(iter(self.input_errors), None) or errors(problems)[0].key
            self.form.focus_field(first)
            return False
        output_dir = resume_dir or self.session.new_run_dir()
        config = self.session.training_config(output_dir, resume=resume_dir is not None)
        self.controller.start(config, self.session.settings.environment())
        self.session.add_run(output_dir)
        self.show_run()
        return True

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
        self.start(self.recommended)

    def _on_start_button_clicked(self) -> None:
        self.start()

    def _on_cards_preset_chosen(self, option: PresetOption) -> None:
        self.apply_preset(option)

    def _on_advanced_toggle_toggled(self, shown: bool) -> None:
        self.form.setVisible(shown)
        self.how_label.setVisible(not shown)
        self.reasons_label.setVisible(not shown)  # room for the form; the reasons are on Machine & model too
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _on_form_value_edited(self, key: str, value: Any) -> None:
        try:
            self.session.update(**{key: value})
        except ConfigError as exc:
            self.input_errors[key] = "; ".join(p.message for p in exc.problems)
        else:
            self.input_errors.pop(key, None)
            if self.session.preset is not None:
                self.session.preset = None
                self.cards.set_checked(None)
        self.form.show_problems(self.session.problems(), self.input_errors)

    def _on_form_outside_field_requested(self, key: str) -> None:
        if key in ("dataset_dirs", "trigger_word"):
            self.dataset_page_requested.emit()

    def _on_summary_label_link_activated(self, link: str) -> None:
        {"dataset": self.dataset_page_requested, "model": self.machine_page_requested}[link].emit()

    def _on_session_config_changed(self) -> None:
        config = self.session.config
        self.form.set_config(config)
        self.form.show_problems(config.validate(), self.input_errors)
        count = len(config.data.dataset_dirs)
        folders = f"{count} image folder{'s' if count != 1 else ''}" if count else "no images yet"
        trigger = config.data.trigger_word or "none"
        flat = config.to_dict()
        keys = ("model_flavour", "base_model_precision", "lora_rank", "resolution", "train_batch_size")
        settings = describe_settings({k: flat[k] for k in keys}, short=True)
        if config.model.pretrained_model_name_or_path:
            settings = f"{Path(config.model.pretrained_model_name_or_path).name} · {settings}"
        steps = config.optim.max_train_steps
        self.summary_label.setText(
            f"<a href='dataset'>Dataset</a>: {folders} · trigger word: <b>{html.escape(trigger)}</b> · "
            f"<a href='model'>Model</a>: {html.escape(settings)} · {steps if steps else 'default'} steps"
        )

    def _on_session_runs_changed(self) -> None:
        self._refresh_runs()

    def _refresh_runs(self) -> None:
        self.runs_list.clear()
        for run in reversed(self.session.existing_runs()):
            done = (Path(run) / "pytorch_lora_weights.safetensors").is_file()
            item = QListWidgetItem(f"{Path(run).name}{'' if done else ' (not finished)'}")
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
