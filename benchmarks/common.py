"""The harness the benchmarks share: the command line they all take, timed variants interleaved
round by round, per-round ratios with their spread and verdicts, checked generated modules, the
JSON every run can write and the flat list of figures read from it (which ``compare.py`` compares
between two trees), and cProfile reports.

Each benchmark (parse_bench, interp_bench, ad_bench, element_bench) imports this module from the
directory it lives in; importing it puts the checkout it lives in first on ``sys.path``, so a
benchmark measures the packages of its own tree. The project's entry points the harness uses are
imported here and nowhere else in it: ``checked_module`` (``sil``) and ``pass_manager`` (the pass
registry).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from sil import Module
    from sil.passes import PassManager


# --- the command line and the JSON output ------------------------------------------------------
def argument_parser(
    doc: str | None, quick: str, reps: str, profile: Sequence[str], profile_help: str
) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--quick`` (a smoke run), ``--reps`` (timed rounds),
    ``--json FILE`` (the figures, machine-readable) and ``--profile WORKLOAD`` (cProfile instead of
    timing); a benchmark adds its own after."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=quick)
    ap.add_argument("--reps", type=int, help=reps)
    ap.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    ap.add_argument("--profile", choices=profile, help=profile_help)
    return ap


def header(bench: str, info: dict[str, str], libraries: Sequence[str], rounds: str, quick: bool) -> None:
    """The run's first line: the benchmark, Python, the libraries named, the CPUs, the rounds."""
    named = "".join(f", {library} {info[library.lower()]}" for library in libraries)
    print(
        f"{bench}: {info['python']}{named}, {info['cpus']} CPUs ({info['cpu']}), {rounds}, median"
        + ("; QUICK smoke run" if quick else "")
    )


def write_json(path: str | None, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``path`` (when given), with ``figures``: the flat list that ``figures``
    reads from it, so that a reader need not know each benchmark's layout."""
    if path:
        doc = {**doc, "figures": figures(doc)}
        Path(path).write_text(json.dumps(doc, indent=2) + "\n")


def benches_json(benches: Iterable[Bench]) -> list[dict[str, Any]]:
    """Each workload's variants: the median seconds per call, and every round's sample."""
    return [
        {
            "name": b.name,
            "units": b.unit,
            "unit": b.unit_name,
            "seconds_per_call": {v: b.median(v) for v in b.variants},
            "samples": b.samples,
        }
        for b in benches
    ]


def figures(doc: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """Every figure a benchmark's JSON holds, by name: ``(value, unit)``, the unit ``s`` (seconds),
    ``x`` (a ratio, ours over a baseline or large over small) or ``B`` (bytes), each lower is
    better. It reads the layout every benchmark has written since ``--json`` came (fed0b21 and
    before too), so that two trees' runs compare whatever commit wrote them."""
    found: dict[str, tuple[float, str]] = {}
    for w in doc.get("workloads", []):
        for variant, seconds in {**w.get("seconds", {}), **w.get("seconds_per_call", {})}.items():
            found[f"{w['name']}: {variant}"] = (seconds, "s")
        if w.get("bytes_per_instruction"):
            found[f"{w['name']}: bytes/instr"] = (w["bytes_per_instruction"], "B")
    for name, entry in doc.get("ratios", {}).items():
        if entry.get("ratio") is not None:
            found[name] = (entry["ratio"], "x")
    for group in ("scaling", "baseline_scaling", "scaling_relative_to_json"):
        for phase, value in doc.get(group, {}).items():
            found[f"{group.replace('_', ' ')}: {phase}"] = (value, "x")
    return {**found, **_ad_figures(doc)}


def _ad_figures(doc: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """What only ad_bench writes: (c) by size, (d)'s records, (e) per call."""
    found: dict[str, tuple[float, str]] = {}
    for name, seconds in doc.get("called_loop", {}).get("seconds_per_call", {}).items():
        found[f"(e) per call: {name}"] = (seconds, "s")
    for trips, size in doc.get("loop_record_bytes_per_trip", {}).items():
        found[f"(d) records, {int(trips):,} trips: B/trip"] = (size, "B")
    for key, unit in (("pass", "instructions"), ("pass_blocks", "blocks")):
        for size in doc.get(key, []):
            for what in ("pass", "parse", "verify_print"):
                samples = size.get(f"{what}_seconds")
                if samples:
                    found[f"(c) {size[unit]:,} {unit}: {what.replace('_', '+')}"] = (
                        statistics.median(samples),
                        "s",
                    )
    return found


# --- workloads and their timed variants ----------------------------------------------------------
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


def warm_up(benches: Iterable[Bench]) -> None:
    """Every variant's warm-up calls, before the first round."""
    for bench in benches:
        for variant, (fn, _) in bench.variants.items():
            for _ in range(bench.warmup[variant]):
                fn()


def time_round(benches: Iterable[Bench], i: int) -> None:
    """Round ``i`` of every workload, adding one sample (seconds per call) per variant: its
    variants' calls interleaved, one call of each in turn, ``repeat`` times (a variant with a
    smaller ``repeat`` drops out early), so that a spell of a slower machine touches ours and the
    baselines alike; the order flips every other round, so that none always goes first. Garbage
    is collected before each workload's turn, outside the timing; a full collection evicts the
    caches, so variants with short calls (more than one warm-up call) then run once untimed."""
    clock = time.perf_counter
    for bench in benches:
        order = list(bench.variants.items())
        if i % 2:
            order.reverse()
        total = dict.fromkeys(bench.variants, 0.0)
        gc.collect()
        for variant, (fn, _) in order:
            if bench.warmup[variant] > 1:
                fn()
        for j in range(max(repeat for _, repeat in bench.variants.values())):
            for variant, (fn, repeat) in order:
                if j < repeat:
                    start = clock()
                    fn()
                    total[variant] += clock() - start
        for variant, (_, repeat) in order:
            bench.samples[variant].append(total[variant] / repeat)


def rounds(count: int, one_round: Callable[[int], str]) -> None:
    """Run ``one_round(i)`` for each of ``count`` rounds, printing each round's time and what
    ``one_round`` returns beside it."""
    for i in range(count):
        t0 = time.perf_counter()
        note = one_round(i)
        print(f"  round {i + 1}/{count}: {time.perf_counter() - t0:.1f} s{note}", flush=True)


# --- ratios, their spread, verdicts --------------------------------------------------------------
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


@dataclass
class Figure:
    """A ratio the report judges: its value round by round (None: the workload is blocked, and
    ``blocked`` says why), its target (None: shown, not judged), and whether it is a lower bound
    (a run ended at a time limit)."""

    name: str
    per_round: list[float] | None
    target: float | None = None
    lower_bound: bool = False
    blocked: str = ""


def print_ratios(title: str, figures: Sequence[Figure], width: int, quartile_width: int) -> dict[str, Any]:
    """The table of ratios: the median over rounds, its quartiles (with more than one round), the
    target and the verdict; returns the same as a JSON summary by figure."""
    print()
    print(title)
    print(f"  {'figure':<{width}} {'ratio':>9}  {'quartiles':>{quartile_width}}  {'target':>7}  verdict")
    summary: dict[str, Any] = {}
    for f in figures:
        cell = "" if f.target is None else f"<= {f.target:.2f}"
        if f.per_round is None:
            judged = "" if f.target is None else verdict(False)
            print(f"  {f.name:<{width}} {'BLOCKED':>9}  {'':>{quartile_width}}  {cell:>7}  {judged}")
            summary[f.name] = {"ratio": None, "blocked": f.blocked, "target": f.target, "pass": False}
            continue
        ratio = statistics.median(f.per_round)
        low, high = spread(f.per_round)
        ok = None if f.target is None else ratio <= f.target
        shown = f"> {ratio:.2f}x" if f.lower_bound else f"{ratio:.2f}x"
        quartiles = f"{low:.2f}-{high:.2f}" if len(f.per_round) > 1 else ""
        judged = "" if ok is None else verdict(ok)
        print(f"  {f.name:<{width}} {shown:>9}  {quartiles:>{quartile_width}}  {cell:>7}  {judged}")
        summary[f.name] = {"ratio": ratio, "quartiles": [low, high], "target": f.target, "pass": ok}
        if f.lower_bound:
            summary[f.name]["lower_bound"] = True
    return summary


def per_unit(seconds: float, b: Bench) -> str:
    """A time per call, and per unit of work when the call holds many."""
    text = f"{seconds * 1e3:,.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:,.1f} µs"
    if b.unit > 1:
        text += f" ({seconds / b.unit * 1e9:,.1f} ns/{b.unit_name})"
    return text


def print_medians(
    title: str,
    benches: Iterable[Bench],
    width: int,
    heading: Callable[[Bench], str] = lambda b: "",
    extra: Callable[[Bench, str], str] = lambda b, v: "",
) -> None:
    """Each workload's variants: the median time per call, and per unit of work."""
    print()
    print(title)
    for b in benches:
        print(f"  {b.name}{heading(b)}:")
        for variant in b.variants:
            print(f"    {variant:<{width}} {per_unit(b.median(variant), b)}{extra(b, variant)}")


# --- workloads both interp_bench and ad_bench run ------------------------------------------------
def mlp_sil(name: str, params: Sequence[str], returns: str) -> tuple[list[str], str, str]:
    """The start of ``@name``, a function of the Float tensors ``params`` (``%x``, ``%w1``, ``%b1``,
    ... ``%b3`` among them) returning ``returns``: its entry block computing the three layers of an
    MLP, ``tanh(tanh(x W1 + b1) W2 + b2) W3 + b3``, the biases broadcast along the batch. Returns
    the lines, the name of the last layer's value, and the function's type."""
    t = "$Tensor<Float>"
    fn_type = f"$@convention(thin) ({', '.join(['Tensor<Float>'] * len(params))}) -> {returns}"
    lines = ["sil_stage canonical", "", f"sil @{name} : {fn_type} {{"]
    lines.append(f"bb0({', '.join(f'%{p} : {t}' for p in params)}):")
    h = "%x"
    for layer in (1, 2, 3):
        lines.append(f'  %m{layer} = builtin "matmul"({h} : {t}, %w{layer} : {t}) : {t}')
        lines.append(f'  %a{layer} = builtin "fadd"(%m{layer} : {t}, %b{layer} : {t}) : {t}')
        h = f"%a{layer}"
        if layer < 3:
            lines.append(f'  %h{layer} = builtin "tanh"({h} : {t}) : {t}')
            h = f"%h{layer}"
    return lines, h, fn_type


# --- checks and the project's entry points -------------------------------------------------------
def fail(what: str) -> NoReturn:
    sys.exit(f"check failed: {what}")


def checked_module(text: str, name: str) -> Module:
    """``text`` parsed; the run stops if it does not verify."""
    from sil import parse, verify_module

    module = parse(text, name)
    diagnostics = verify_module(module)
    if diagnostics:
        sys.exit(f"{name}: the generated module does not verify: {diagnostics[0].message}")
    return module


def pass_manager(*names: str) -> PassManager:
    """A pass manager running the registered passes ``names`` in order."""
    from sil.passes import PassManager, registered_passes

    available = registered_passes()
    return PassManager([available[name]() for name in names])


# --- the machine, profiles -----------------------------------------------------------------------
def source_place(filename: str) -> str:
    """A source file's path relative to the checkout, when it lies in it."""
    return os.path.relpath(filename, ROOT) if filename.startswith(str(ROOT)) else filename


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
        where = source_place(filename)
        print(f"  {tottime / total:6.1%} {tottime:8.3f} {calls:>9} {cumtime:8.3f}  {where}:{line}({name})")


def bare_loop_ns(iterations: int = 2_000_000) -> float:
    """Nanoseconds per iteration of a bare CPython loop (``s += i``): how fast the machine runs
    Python at the moment, so that runs in different spells of a shared machine can be compared."""
    total = 0
    start = time.perf_counter()
    for i in range(iterations):
        total += i
    return (time.perf_counter() - start) * 1e9 / iterations


def machine(**libraries: str) -> dict[str, str]:
    """The CPU (its model name, from /proc/cpuinfo where there is one), its count, Python, and the
    ``libraries`` given (their versions, or the backend's description)."""
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
        **libraries,
    }
