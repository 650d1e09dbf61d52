"""Timing shared by the benchmarks: the median of repeated runs (this machine is noisy) and the
CPU the figures were measured on."""

from __future__ import annotations

import platform
import statistics
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def median_time(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Median wall-clock seconds of ``repeats`` calls of ``fn``, and the last call's result."""
    times, out = [], None
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and flags (/proc/cpuinfo; the platform's processor string and no
    flags where it cannot be read)."""
    name, flags = None, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and name is None:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith(("flags", "Features")) and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return name or platform.processor() or "unknown CPU", flags


def cpu_model() -> str:
    """The CPU's model name, printed with every speed figure."""
    return cpu_info()[0]
