"""Byte counts in words: the one place the app and the CLI format them.

Memory sizes (device memory, RAM, free disk) count a GB as 2^30 bytes, as GPU makers and
nvidia-smi do: a "24 GB" card reports about 24 GB. Amounts that move (downloads, cached files, the
memory a run holds now) use SI units, 10^9 bytes a GB and MB below 0.1 GB, as the Hugging Face Hub
and file managers show them.
"""

from __future__ import annotations

GiB = 2**30
GB = 10**9
MB = 10**6


def format_bytes(value: float | None, *, decimals: int | None = None, si: bool = False, unknown: str = "?") -> str:
    """``value`` bytes: "12 GB", "7.5 GB", "24.0 GB" (a memory size); "3.00 GB", "512.0 MB" (``si``).

    A memory size shows whole GB from 10 GB up and one decimal below, unless ``decimals`` says how
    many; ``si`` shows GB with two decimals, or MB with one. None is ``unknown``.
    """
    if value is None:
        return unknown
    if si:
        return f"{value / GB:.2f} GB" if value >= GB / 10 else f"{value / MB:.1f} MB"
    if decimals is None:
        decimals = 0 if value >= 10 * GiB else 1
    return f"{value / GiB:.{decimals}f} GB"


def format_amount(value: float, unit: str) -> str:
    """A progress amount in its unit: bytes in SI units (``format_bytes``), anything else as a count."""
    return format_bytes(value, si=True) if unit == "B" else f"{int(value)}"
