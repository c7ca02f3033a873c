"""The Train page's "Use all N GPUs" switch for data-parallel training, shown only where it applies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QWidget

from chroma_studio.gui.machine_info import PresetOption, data_parallel_gpus


class GpuChoiceWidget(QCheckBox):
    """Checked, the run trains on every GPU (``num_processes`` = their number); hidden on a machine
    with fewer than two, and off (saying why) where no setting fits them without streaming blocks.
    ``processes_chosen`` carries the ``num_processes`` asked for."""

    processes_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("useAllGpusCheck")
        self.gpus = 0
        self.refusal = ""  # why a run on all GPUs cannot be: nothing fits them without streaming
        self.setVisible(False)
        self.toggled.connect(self._on_toggled)

    def set_devices(self, devices: Iterable[Any], all_gpus: PresetOption | None = None) -> None:
        """The machine's devices and the recommendation for a run on all its GPUs (None: not known)."""
        self.gpus = data_parallel_gpus(devices)
        self.refusal = all_gpus.description if all_gpus is not None and all_gpus.fits is False else ""
        self.setText(f"Use all {self.gpus} GPUs")
        self.setVisible(self.gpus > 1)
        self._show_state()

    def set_processes(self, processes: int) -> None:
        """Show the config's ``num_processes`` without asking for it again."""
        self.blockSignals(True)
        self.setChecked(self.gpus > 1 and processes == self.gpus)
        self.blockSignals(False)
        self._show_state()

    def _show_state(self) -> None:
        refused = bool(self.refusal) and not self.isChecked()  # a run set on all GPUs can still be undone
        self.setEnabled(not refused)
        self.setToolTip(
            self.refusal
            if refused
            else f"Train on all {self.gpus} GPUs at once (num_processes {self.gpus}): each takes its share of "
            "every batch, so a step trains the batch size times this many images. The settings must fit the "
            "smallest GPU without streaming blocks: where they stream, checking this takes the best that do."
        )

    def _on_toggled(self, checked: bool) -> None:
        self.processes_chosen.emit(self.gpus if checked else 1)
