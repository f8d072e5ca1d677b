"""The placement study (issue 16, item 4): where should differentiation run, before optimization or
after it? Enzyme's answer, on LLVM IR, is after (gradients 4.2x faster in geometric mean over its
benchmarks); this measures the same question on SIL.

Run from the repository root (or anywhere; it imports the checkout it lives in)::

    python3 benchmarks/placement.py                 # the full run: about 3 minutes on 2 cores
    python3 benchmarks/placement.py --quick         # a smoke run: the smallest sizes, one round
    python3 benchmarks/placement.py --csv out.csv --svg out.svg --jobs 2

Programs: ``benchmarks/placement/*.sil`` (written by ``placement_programs.py`` as a
straightforward frontend would emit them; see there), each at two sizes, each through four
placements, pipelines of registered passes run by name: AD alone (``-differentiation
-lower-gradient``: the gradient call site becomes a call of the synthesized gradient function, so
that what comes after sees it), AD then ``-O``, ``-O`` then AD then ``-O``, ``-O`` then AD. For
each: the gradient's time per call (``@main``, which calls it; the four placements' calls
interleaved in every round, ``common.time_round``; the median over rounds), the instructions it
executes (the interpreter's step count: deterministic), split into the VJP (the primal sweep) and
the pullback (the reverse sweep), the bytes of the records the pullback holds after the VJP
(``silopt.ad_measure.kept_records``, as ``--ad-stats`` measures them), and the instructions in the
module after the pipeline. Before anything is timed, the four placements' gradients must agree
(relative 1e-9) and match a fourth-order central difference of ``@f`` along a random direction in
Double (relative 1e-6), or the run stops. Each (program, size) is one job of a local process pool
(``--jobs``); its placements are timed side by side in that job.

Targets: ``-O`` then AD then ``-O`` at least 2x faster than AD then ``-O`` in geometric mean of
gradient time, and fewer executed instructions on every program and size. ``benchmarks/README.md``
records results.
"""

from __future__ import annotations

import csv
import gc
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import common  # first: it puts this checkout on sys.path
import numpy as np
from common import Bench, checked_module, fail
from placement_programs import PROGRAMS, Program

AD = ("differentiation", "lower-gradient")
PLACEMENTS: dict[str, tuple[str, ...]] = {
    "AD": AD,
    "AD, -O": (*AD, "O"),
    "-O, AD, -O": ("O", *AD, "O"),
    "-O, AD": ("O", *AD),
}
BEFORE, AFTER = "-O, AD, -O", "AD, -O"  # the comparison the targets judge
TARGET_SPEEDUP = 2.0  # AD, -O over -O, AD, -O: geometric mean of gradient time
REL_AGREE, REL_FD, FD_STEP = 1e-9, 1e-6, 1e-3
JOB_SECONDS = 5.0  # a full run's job times its placements for about this long (or reps rounds)


@dataclass
class Row:
    """One (program, size, placement): what it costs."""

    program: str
    size: str
    placement: str
    seconds: float  # median over rounds, per gradient call
    over_after: float  # the median over rounds of this placement's time / AD, -O's in the round
    steps: int  # executed by one @main call
    vjp_steps: int | None  # the VJP alone (None: -O removed the function)
    pullback_steps: int | None
    record_bytes: int | None  # held by the pullback after one VJP call
    records: int | None
    emitted: int  # instructions in the module after the pipeline
    fd_error: float  # the FD check's relative error (the same for every placement)
    samples: list[float]


# --- one job: a program at a size, through every placement ---------------------------------------
class Placed:
    """A program through one placement: its module, what AD recorded making it, its runs."""

    def __init__(self, text: str, name: str, pipeline: Sequence[str], backend: Any) -> None:
        from interp import Program as Interp
        from silopt.ad_stats import attach

        self.module = checked_module(text, name)
        manager = common.pass_manager(*pipeline)
        self.stats = attach(manager)
        manager.run(self.module)
        self.emitted = sum(1 for fn in self.module.functions.values() for _ in fn.instructions())
        self.counting = Interp(self.module, backend, count_steps=True)
        self.timing = Interp(self.module, backend)

    def gradient(self, args: Sequence[Any]) -> tuple[list[np.ndarray[Any, Any]], int]:
        grads = self.counting.run("main", *args)
        steps = self.counting.steps
        assert steps is not None
        return flat(grads), steps

    def records(self, args: Sequence[Any]) -> tuple[int | None, int | None, int | None, int | None]:
        """The VJP's and the pullback's steps, and the records the pullback holds: how many, and
        their bytes (None where -O left no VJP or pullback function to run)."""
        from silopt.ad_measure import Sizes, kept_records

        request = next(r for r in self.stats.requests.values() if r.original == "f")
        vjp = request.answers["vjp"]
        made = {d.derivative: d for r in self.stats.requests.values() for d in r.made}
        d = made[vjp]
        if vjp not in self.module.functions or d.linear_map not in self.module.functions:
            return None, None, None, None
        _, pullback = self.counting.run(vjp, *args)
        vjp_steps = self.counting.steps
        # What the closure binds: the record, as AD makes it, or its fields, should a later pass
        # split it; each of the pullback's trailing parameters.
        bound = pullback.run_form[1]
        linear_map = self.module.functions[d.linear_map].type.params
        params = linear_map[len(linear_map) - len(bound) :]
        sizes = Sizes(self.module, self.stats.record_types)
        records, total = 0, 0
        for value, t in zip(bound, params):
            count, nbytes = kept_records(sizes, value, t)
            records += sum(count.values())
            total += nbytes
        pullback(1.0)
        return vjp_steps, self.counting.steps, records, total

    def timed_call(self, args: Sequence[Any]) -> Any:
        compiled = self.timing.function("main")
        params = self.timing.signature("main").params
        run_args = [self.timing.converter.to_run(a, p, "argument") for a, p in zip(args, params)]
        return lambda: self.timing.call_compiled(compiled, run_args)


def flat(value: Any) -> list[np.ndarray[Any, Any]]:
    """A gradient (a tangent or a tuple of them) as a list of float64 arrays."""
    parts = value if isinstance(value, tuple) else (value,)
    return [np.asarray(p, dtype=np.float64) for p in parts]


def check_agree(label: str, grads: dict[str, list[np.ndarray[Any, Any]]]) -> None:
    reference = grads["AD"]
    scale = max(float(np.max(np.abs(g))) for g in reference) or 1.0
    for placement, got in grads.items():
        for k, (a, b) in enumerate(zip(got, reference)):
            if not np.allclose(a, b, rtol=REL_AGREE, atol=REL_AGREE * scale):
                fail(f"{label}, {placement}: d/d(argument {k}) differs from AD alone's")


def fd_error(program: Program, placed: Placed, args: list[Any], grads: list[np.ndarray[Any, Any]]) -> float:
    """The relative error of the gradient along a random direction against a fourth-order central
    difference of ``@f`` (in Double)."""
    rng = np.random.default_rng(7)
    direction = {i: rng.normal(size=np.shape(args[i])) for i in program.wrt}
    norm = math.sqrt(sum(float(np.sum(v * v)) for v in direction.values()))

    def at(h: float) -> float:
        moved = list(args)
        for i, v in direction.items():
            moved[i] = args[i] + h * v / norm if np.ndim(args[i]) else float(args[i] + h * v / norm)
        return float(placed.counting.run("f", *moved))

    h = FD_STEP
    fd = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h)
    along = sum(float(np.sum(g * direction[i])) for g, i in zip(grads, program.wrt)) / norm
    size = sum(float(np.sum(np.abs(g * direction[i]))) for g, i in zip(grads, program.wrt)) / norm
    return abs(fd - along) / max(abs(along), size, 1e-300)


def time_placements(label: str, calls: dict[str, Callable[[], object]], reps: int, extend: bool) -> Bench:
    """The placements' calls timed side by side: a sample is one call, the four interleaved in a
    round (``common.time_round``), for at least ``reps`` rounds, and with ``extend`` as many as
    fit in ``JOB_SECONDS`` (at most ``10 * reps``). On a shared machine, a call is now and then
    descheduled; single calls make most samples whole, and the median then skips the others."""
    bench = Bench(label, 1, "call")
    for p, call in calls.items():
        call()  # the first call compiles
        bench.add(p, call, 1, warmup=2)
    common.warm_up([bench])
    started = time.perf_counter()
    for call in calls.values():
        call()
    once = max(time.perf_counter() - started, 1e-6)
    rounds = max(reps, min(10 * reps, int(JOB_SECONDS / once))) if extend else reps
    # The four modules and their compiled code stay alive through the timing: a full collection
    # would traverse them all, a pause that lands in whichever call it interrupts.
    gc.collect()
    gc.freeze()
    for i in range(rounds):
        common.time_round([bench], i)
    gc.unfreeze()  # a pool's worker runs the next job with this one's modules freed
    return bench


def run_job(name: str, size: Any, reps: int, extend: bool) -> list[Row]:
    """Every placement of one program at one size: checked, counted, then timed side by side."""
    from accel import select_backend

    backend = select_backend("numpy")
    program = next(p for p in PROGRAMS if p.name == name)
    text = program.path.read_text()
    args = program.inputs(size)
    label = f"{name} {size_label(size)}"
    placed = {p: Placed(text, f"{name}.sil", pipeline, backend) for p, pipeline in PLACEMENTS.items()}
    counted = {p: pl.gradient(args) for p, pl in placed.items()}
    check_agree(label, {p: g for p, (g, _) in counted.items()})
    error = fd_error(program, placed["AD"], args, counted["AD"][0])
    if not error <= REL_FD:
        fail(f"{label}: the gradient is {error:.1e} from finite differences (limit {REL_FD:.0e})")
    bench = time_placements(label, {p: pl.timed_call(args) for p, pl in placed.items()}, reps, extend)
    rows = []
    for p, pl in placed.items():
        vjp, pullback, records, nbytes = pl.records(args)
        rows.append(
            Row(
                name,
                size_label(size),
                p,
                bench.median(p),
                statistics.median(common.ratios((bench, p), (bench, AFTER))),
                counted[p][1],
                vjp,
                pullback,
                nbytes,
                records,
                pl.emitted,
                error,
                bench.samples[p],
            )
        )
    return rows


def size_label(size: Any) -> str:
    return "x".join(map(str, size)) if isinstance(size, tuple) else str(size)


# --- the report -------------------------------------------------------------------------------------
def geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def number(v: int | None) -> str:
    return "—" if v is None else f"{v:,}"


def by_case(rows: Sequence[Row]) -> dict[tuple[str, str], dict[str, Row]]:
    cases: dict[tuple[str, str], dict[str, Row]] = {}
    for r in rows:
        cases.setdefault((r.program, r.size), {})[r.placement] = r
    return cases


def print_table(rows: Sequence[Row]) -> None:
    """The Markdown table: per program, size and placement."""
    print()
    print(
        "| program | size | placement | µs/gradient | time / AD, -O | executed | VJP + pullback "
        "| record B/call | records | emitted |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (program, size), placed in by_case(rows).items():
        for p, r in placed.items():
            split = "—" if r.vjp_steps is None else f"{r.vjp_steps:,} + {r.pullback_steps:,}"
            print(
                f"| {program} | {size} | {p} | {r.seconds * 1e6:,.1f} | {r.over_after:.2f}x "
                f"| {r.steps:,} | {split} | {number(r.record_bytes)} | {number(r.records)} | {r.emitted:,} |"
            )


def summary(rows: Sequence[Row]) -> dict[str, Any]:
    """The geometric means, the targets' verdicts, and per program what -O before AD saved."""
    cases = by_case(rows)
    speedups = {k: 1 / c[BEFORE].over_after for k, c in cases.items()}
    steps = {k: c[AFTER].steps / c[BEFORE].steps for k, c in cases.items()}
    mean = geomean(list(speedups.values()))
    behind = [f"{p} {s}" for (p, s), c in cases.items() if c[BEFORE].steps >= c[AFTER].steps]
    print()
    print("Geometric means over every program and size (AD, -O over -O, AD, -O):")
    print(
        f"  gradient time          {mean:.2f}x  (target >= {TARGET_SPEEDUP:.1f}x: "
        f"{common.verdict(mean >= TARGET_SPEEDUP)})"
    )
    print(
        f"  executed instructions  {geomean(list(steps.values())):.2f}x  (target: fewer on every "
        f"program and size: {common.verdict(not behind)}{'; not on ' + ', '.join(behind) if behind else ''})"
    )
    for placement in PLACEMENTS:
        g = geomean([c[placement].over_after / c["AD"].over_after for c in cases.values()])
        print(f"  time of {placement:<11} over AD alone's: {g:.2f}x")
    print()
    print("What -O before AD saved that -O after AD did not recover (the larger size, measured):")
    for line in why_lines(cases):
        print(f"  {line}")
    return {
        "placement: gradient time, -O AD -O / AD -O (geomean)": {"ratio": 1 / mean},
        "placement: executed, -O AD -O / AD -O (geomean)": {"ratio": 1 / geomean(list(steps.values()))},
        "speedups": {f"{p} {s}": v for (p, s), v in speedups.items()},
    }


def why_lines(cases: dict[tuple[str, str], dict[str, Row]]) -> list[str]:
    """Per program, at its larger size: how -O, AD, -O differs from AD, -O, from the measured
    executed instructions (VJP and pullback apart), records and bytes, and code size."""
    lines = []
    for program in dict.fromkeys(p for p, _ in cases):
        size, placed = [(s, c) for (p, s), c in cases.items() if p == program][-1]
        a, b = placed[AFTER], placed[BEFORE]
        lines.append(f"{program} {size}: " + "; ".join(why_parts(a, b)))
    return lines


def why_parts(a: Row, b: Row) -> list[str]:
    """What separates ``b`` (-O before AD too) from ``a`` (-O after AD only)."""
    if (a.steps, a.record_bytes, a.emitted) == (b.steps, b.record_bytes, b.emitted):
        return [
            "no difference: the same instructions executed, the same records kept (-O after AD "
            "recovered all that -O before AD did)"
        ]
    parts = [f"executed {delta(b.steps, a.steps)} instructions per gradient"]
    if a.vjp_steps is not None and b.vjp_steps is not None and a.pullback_steps is not None:
        assert b.pullback_steps is not None
        parts[0] += (
            f" (pullback {delta(b.pullback_steps, a.pullback_steps)}, VJP {delta(b.vjp_steps, a.vjp_steps)})"
        )
    if a.record_bytes is not None and b.record_bytes is not None and a.records and b.records:
        each_a, each_b = a.record_bytes / a.records, b.record_bytes / b.records
        parts.append(
            f"records {delta(b.record_bytes, a.record_bytes)} bytes per call, "
            f"{a.records:,} -> {b.records:,} records of {each_a:,.0f} -> {each_b:,.0f} B on average"
        )
        if b.records >= a.records and each_b < each_a:
            parts.append(
                "values AD recorded on every trip that -O before AD hoisted or merged: -O after AD "
                "cannot drop a record's field, nor the pullback's work on it"
            )
        elif b.records < a.records:
            parts.append(
                "fewer records: -O before AD left fewer blocks on the path (merged or threaded), and AD "
                "keeps a record for each visit of a block"
            )
    parts.append(f"emitted {delta(b.emitted, a.emitted)} instructions")
    return parts


def delta(new: int, old: int) -> str:
    """``new - old`` with its sign and, where ``old`` is not zero, as a percentage of it."""
    return f"{new - old:+,} ({(new - old) / old:+.0%})" if old else f"{new - old:+,}"


def write_csv(path: str, rows: Sequence[Row]) -> None:
    fields = [k for k in asdict(rows[0]) if k != "samples"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: v for k, v in asdict(r).items() if k != "samples"})


def write_svg(path: str, rows: Sequence[Row]) -> bool:
    """A bar chart of gradient time relative to AD alone, by program and size; False when
    matplotlib is not importable."""
    try:
        import matplotlib

        matplotlib.use("svg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    cases = by_case(rows)
    labels = [f"{p}\n{s}" for p, s in cases]
    fig, ax = plt.subplots(figsize=(max(6, len(labels) * 0.9), 4))
    width = 0.8 / len(PLACEMENTS)
    for k, placement in enumerate(PLACEMENTS):
        heights = [c[placement].over_after / c["AD"].over_after for c in cases.values()]
        ax.bar([x + k * width for x in range(len(labels))], heights, width, label=placement)
    ax.set_xticks([x + width * (len(PLACEMENTS) - 1) / 2 for x in range(len(labels))], labels, fontsize=7)
    ax.set_ylabel("gradient time / AD alone")
    ax.axhline(1.0, color="grey", linewidth=0.5)
    ax.set_ylim(0, max(1.3, ax.get_ylim()[1] * 1.15))
    ax.legend(fontsize=7, ncols=len(PLACEMENTS), loc="upper center")
    ax.set_title("Gradient time by placement (lower is faster)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = common.argument_parser(
        __doc__,
        quick="the smallest sizes, one round: a smoke run",
        reps="timed rounds per job, at least (default 31; 1 with --quick, and no more)",
        profile=(),
        profile_help="(no workload is profiled here)",
    )
    ap.add_argument("--csv", metavar="PATH", help="also write every row to PATH as CSV")
    ap.add_argument(
        "--svg", metavar="PATH", help="also draw the times as an SVG bar chart (needs matplotlib)"
    )
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    args = ap.parse_args(argv)
    reps = args.reps or (1 if args.quick else 31)
    started = time.perf_counter()
    info = common.machine(numpy=np.__version__)
    common.header("placement", info, ("NumPy",), f"{reps}+ round(s) per job, {args.jobs} job(s)", args.quick)
    jobs = [(p.name, s) for p in PROGRAMS for s in ((p.quick,) if args.quick else p.sizes)]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_job, name, size, reps, not args.quick) for name, size in jobs]
        rows = [r for f in futures for r in f.result()]
    print(
        f"  {len(jobs)} jobs checked (placements agree, finite differences within {REL_FD:.0e}) "
        f"and timed in {time.perf_counter() - started:.1f} s"
    )
    print_table(rows)
    ratios = summary(rows)
    if args.quick:
        print("A --quick smoke run: too small and short to judge the targets.")
    if args.csv:
        write_csv(args.csv, rows)
    if args.svg and not write_svg(args.svg, rows):
        print("--svg: matplotlib is not importable (pip install '.[plot]'); no chart written")
    print(f"\nTotal {time.perf_counter() - started:.1f} s.")
    workloads = [
        {
            "name": f"{p} {s}",
            "units": 1,
            "unit": "call",
            "seconds_per_call": {pl: r.seconds for pl, r in c.items()},
            "samples": {pl: r.samples for pl, r in c.items()},
        }
        for (p, s), c in by_case(rows).items()
    ]
    doc = {
        "machine": info,
        "reps": reps,
        "quick": args.quick,
        "workloads": workloads,
        "rows": [asdict(r) for r in rows],
        "ratios": {k: v for k, v in ratios.items() if k != "speedups"},
        "speedups": ratios["speedups"],
    }
    common.write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
