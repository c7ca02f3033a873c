"""The bar across the top of the window: pages, the machine and its recommendation, and Train."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QPushButton, QWidget

from chroma_studio.gui.widgets.machine_header import MachineHeaderWidget

TRAIN_TIP = "Start training with the settings on the Train page (the recommended ones at first)."
PAGE_TITLES = {"machine": "Machine && model", "dataset": "1  Dataset", "train": "2  Train", "samples": "3  Samples"}


class AppHeaderWidget(QWidget):
    page_requested = Signal(str)
    train_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("appHeader")
        self.setAutoFillBackground(True)
        self._page, self._running = "", False
        title = QLabel("Chroma Studio")
        title.setObjectName("appTitle")
        self.nav_group = QButtonGroup(self)
        self.nav_group.setExclusive(True)
        self.nav_buttons: dict[str, QPushButton] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.addWidget(title)
        layout.addSpacing(12)
        for key in ("dataset", "train", "samples", "machine"):
            button = QPushButton(PAGE_TITLES[key])
            button.setObjectName("navButton")
            button.setCheckable(True)
            button.clicked.connect(lambda checked=False, k=key: self.page_requested.emit(k))
            self.nav_group.addButton(button)
            self.nav_buttons[key] = button
            layout.addWidget(button)
        layout.addSpacing(12)
        self.machine = MachineHeaderWidget()
        self.machine.details_requested.connect(lambda: self.page_requested.emit("machine"))
        layout.addWidget(self.machine, 1)
        self.train_button = QPushButton("Train ▶")
        self.train_button.setObjectName("headerTrainButton")
        self.train_button.setMinimumHeight(36)
        self.train_button.setToolTip(TRAIN_TIP)
        self.train_button.clicked.connect(self.train_requested)
        layout.addWidget(self.train_button)

    def set_current_page(self, key: str) -> None:
        self.nav_buttons[key].setChecked(True)
        self._page = key
        self._update_train_button()

    def set_run_status(self, status: str) -> None:
        """The Train button says what a click does now."""
        self._running = status in ("starting", "running", "paused", "stopping")
        self._update_train_button()

    def _update_train_button(self) -> None:
        running, on_train_page = self._running, self._page == "train"
        if running:
            self.train_button.setText("Show training")
            self.train_button.setToolTip(
                "The run in progress is on screen." if on_train_page else "Show the run in progress."
            )
        else:
            self.train_button.setText("Train ▶")
            self.train_button.setToolTip(TRAIN_TIP)
        self.train_button.setEnabled(not (running and on_train_page))  # the run is shown already
