"""Byte counts in words, as the window and the CLI show them."""

from __future__ import annotations

from chroma_studio.base.units import GiB, format_amount, format_bytes


def test_memory_sizes_count_2_to_the_30_bytes_a_gb():
    assert format_bytes(12 * GiB) == "12 GB"  # whole GB from 10 GB up
    assert format_bytes(7.5 * GiB) == "7.5 GB"
    assert format_bytes(24 * GiB, decimals=1) == "24.0 GB"
    assert format_bytes(None) == "?" and format_bytes(None, unknown="unknown") == "unknown"
    assert format_bytes(0, decimals=1) == "0.0 GB"  # nothing free is a size, not an unknown


def test_amounts_that_move_use_si_units():
    assert format_bytes(3 * 10**9, si=True) == "3.00 GB"
    assert format_bytes(52_400_000, si=True) == "52.4 MB"  # under 0.1 GB
    assert format_amount(12 * 10**9, "B") == "12.00 GB"
    assert format_amount(17, "files") == "17"
