"""What every benchmark script shares: a best-of timer and the machine line printed above the figures.

Scripts run as `python benchmarks/bench_x.py`, so this folder is on `sys.path` and `from _common import …` works.
"""
from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path


def best_of(fn, runs: int, warmup: bool = False) -> tuple[float, object]:
    "Best wall time of `runs` calls of `fn` (after one untimed call with `warmup`), and the last result."
    result = fn() if warmup else None
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def cpu_model() -> str:
    "The CPU's model name (Linux /proc/cpuinfo), else what `platform` knows."
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    except OSError:
        found = None
    return found.group(1).strip() if found else platform.processor() or platform.machine()


def machine_line(**versions: str) -> str:
    "One line naming the machine, the interpreter and the given package versions, for the figures' record."
    parts = [platform.platform(), cpu_model(), f"cpu_count={os.cpu_count()}", f"python {platform.python_version()}"]
    return "machine: " + ", ".join(parts + [f"{name} {v}" for name, v in versions.items()])
