"""What the benchmarks share: a workload's timed variants, per-round ratios and their spread,
verdicts, checked generated modules, and cProfile reports.

Each benchmark (parse_bench, interp_bench, ad_bench) imports this module from the directory it
lives in.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from sil import Module, parse, verify_module

ROOT = Path(__file__).resolve().parent.parent


class Bench:
    """One workload: named variants (ours and its baselines), each a call timed ``repeat`` times per
    sample; ``samples[variant]`` holds seconds per call, one per round."""

    def __init__(self, name: str, unit: int, unit_name: str) -> None:
        self.name = name
        self.unit = unit  # per-call time / unit = the time per instruction, trip, ...
        self.unit_name = unit_name
        self.flops = 0  # floating-point operations per call, where counted
        self.variants: dict[str, tuple[Callable[[], object], int]] = {}
        self.warmup: dict[str, int] = {}
        self.samples: dict[str, list[float]] = {}

    def add(self, variant: str, fn: Callable[[], object], repeat: int, warmup: int = 10) -> None:
        """A variant timed ``repeat`` calls a round, after ``warmup`` untimed calls: CPython 3.11
        specializes a function's bytecode only after 8 calls or loop iterations, and no side
        should be timed before that."""
        self.variants[variant] = (fn, repeat)
        self.warmup[variant] = warmup
        self.samples[variant] = []

    def median(self, variant: str) -> float:
        return statistics.median(self.samples[variant])


Side = tuple[Bench, str]  # a variant of a workload


def ratios(ours: Side, baseline: Side) -> list[float]:
    """Our time / the baseline's time, round by round."""
    return [a / b for a, b in zip(ours[0].samples[ours[1]], baseline[0].samples[baseline[1]])]


def spread(values: list[float]) -> tuple[float, float]:
    """The quartiles of per-round ratios (their range, with fewer than 4 rounds)."""
    if len(values) < 4:
        return min(values), max(values)
    quartiles = statistics.quantiles(values, n=4)
    return quartiles[0], quartiles[2]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def per_unit(seconds: float, b: Bench) -> str:
    """A time per call, and per unit of work when the call holds many."""
    text = f"{seconds * 1e3:,.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:,.1f} µs"
    if b.unit > 1:
        text += f" ({seconds / b.unit * 1e9:,.1f} ns/{b.unit_name})"
    return text


def fail(what: str) -> NoReturn:
    sys.exit(f"check failed: {what}")


def checked_module(text: str, name: str) -> Module:
    module = parse(text, name)
    diagnostics = verify_module(module)
    if diagnostics:
        sys.exit(f"{name}: the generated module does not verify: {diagnostics[0].message}")
    return module


def print_profile(run: Callable[[], object], label: str, top: int = 15) -> None:
    """Run ``run`` under cProfile; print the top functions by own time."""
    import cProfile
    import pstats

    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total: float = stats.total_tt  # type: ignore[attr-defined]
    table: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    print(f"{label}: {total:.3f} s under cProfile; top {top} by own time:")
    print(f"  {'share':>6} {'tottime':>8} {'calls':>9} {'cumtime':>8}  function")
    for (filename, line, name), (_, calls, tottime, cumtime, _) in sorted(
        table.items(), key=lambda kv: -kv[1][2]
    )[:top]:
        where = os.path.relpath(filename, ROOT) if filename.startswith(str(ROOT)) else filename
        print(f"  {tottime / total:6.1%} {tottime:8.3f} {calls:>9} {cumtime:8.3f}  {where}:{line}({name})")


def bare_loop_ns(iterations: int = 2_000_000) -> float:
    """Nanoseconds per iteration of a bare CPython loop (``s += i``): how fast the machine runs
    Python at the moment, so that runs in different spells of a shared machine can be compared."""
    total = 0
    start = time.perf_counter()
    for i in range(iterations):
        total += i
    return (time.perf_counter() - start) * 1e9 / iterations


def machine() -> dict[str, str]:
    """The CPU (its model name, from /proc/cpuinfo where there is one), its count, and Python."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }
