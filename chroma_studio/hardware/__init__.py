"""The user's machine: what it has (detect), what a run needs (memory), what fits (recommend).

Nothing here imports Qt, and torch only inside functions that need it (calibration, and the few
device queries where torch is already loaded).
"""

from chroma_studio.hardware.detect import DeviceInfo, MachineInfo, detect_machine
from chroma_studio.hardware.memory import Assumptions, estimate_memory
from chroma_studio.hardware.phases import MemoryEstimate, PhaseEstimate
from chroma_studio.hardware.recommend import Recommendation, recommend

__all__ = [
    "Assumptions",
    "DeviceInfo",
    "MachineInfo",
    "MemoryEstimate",
    "PhaseEstimate",
    "Recommendation",
    "detect_machine",
    "estimate_memory",
    "recommend",
]
