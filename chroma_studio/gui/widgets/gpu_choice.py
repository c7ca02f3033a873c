"""The Train page's "Use all N GPUs" switch for data-parallel training, shown only where it applies."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QWidget

DATA_PARALLEL_KINDS = ("cuda", "rocm")  # one process per GPU needs NCCL (RCCL on ROCm)


def data_parallel_gpus(devices: Iterable[Any]) -> int:
    """How many GPUs one run can train on together: two or more CUDA/ROCm GPUs, not on Windows
    (PyTorch has no NCCL there); 0 otherwise."""
    count = sum(1 for device in devices if device.kind in DATA_PARALLEL_KINDS)
    return count if count > 1 and sys.platform != "win32" else 0


class GpuChoiceWidget(QCheckBox):
    """Checked, the run trains on every GPU (``num_processes`` = their number); hidden on a machine
    with fewer than two. ``processes_chosen`` carries the ``num_processes`` asked for."""

    processes_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("useAllGpusCheck")
        self.gpus = 0
        self.setVisible(False)
        self.toggled.connect(self._on_toggled)

    def set_devices(self, devices: Iterable[Any]) -> None:
        self.gpus = data_parallel_gpus(devices)
        self.setText(f"Use all {self.gpus} GPUs")
        self.setToolTip(
            f"Train on all {self.gpus} GPUs at once (num_processes {self.gpus}): each takes its share of every "
            "batch, so a step trains the batch size times this many images. The settings must fit the "
            "smallest GPU."
        )
        self.setVisible(self.gpus > 1)

    def set_processes(self, processes: int) -> None:
        """Show the config's ``num_processes`` without asking for it again."""
        self.blockSignals(True)
        self.setChecked(self.gpus > 1 and processes == self.gpus)
        self.blockSignals(False)

    def _on_toggled(self, checked: bool) -> None:
        self.processes_chosen.emit(self.gpus if checked else 1)
