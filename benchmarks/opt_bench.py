"""``-O`` on its own (issue 16, item 5): what it saves on programs it did not make, and what it costs.

Run from the repository root (or anywhere; it imports the checkout it lives in)::

    python3 benchmarks/opt_bench.py           # the full run (about a minute on 2 cores)
    python3 benchmarks/opt_bench.py --quick   # a smoke run: short loops, one round

Subjects: (a) interp_bench's programs (the straight-line function of 10k instructions, the loop on
Double and on Float, the MLP forward pass at width 256), called on their benchmark arguments; (b)
the golden differentiation outputs (``golden/differentiation/*.expected`` and ``cf/``), each
prepared as ``tests/sil/transforms/preservation.py`` prepares a subject (any request left lowered)
and each of its functions called on that harness's ordinary argument draws, those calls kept that
run without a fault. For each subject, before and after ``-O``: the instructions the calls execute
(the interpreter's step count: deterministic) and the time they take (before and after interleaved
call by call in every round, ``common.time_round``; the ratio is the median over rounds of the
ratio within a round); and the time ``-O`` itself takes on the subject (parsing not included; the
median of the rounds). Every call is checked to give the same result after ``-O``, bit for bit.
``benchmarks/README.md`` records results.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import common  # first: it puts this checkout on sys.path
import interp_bench
import numpy as np
from common import Bench, checked_module, fail

from accel import Backend, select_backend
from interp import Program, RunError
from sil import Module, parse
from sil.transforms.dead_function_elim import is_root
from tests.sil.transforms import preservation

GOLDEN = common.ROOT / "golden" / "differentiation"
MAX_STEPS = preservation.MAX_STEPS
SUBJECT_SECONDS = 1.0  # a full run times each subject for about this long (or --reps rounds)


@dataclass
class Subject:
    """A module before and after -O, the calls run on both, and what they cost."""

    name: str
    group: str
    text: str
    calls: list[tuple[str, list[Any]]]
    steps: dict[str, int] = field(default_factory=dict)
    opt_seconds: list[float] = field(default_factory=list)
    bench: Bench | None = None


def optimized(text: str, name: str) -> tuple[Module, float]:
    """``text`` parsed and through ``-O``, and the seconds -O took."""
    module = checked_module(text, name)
    manager = common.pass_manager("O")
    started = time.perf_counter()
    manager.run(module)
    return module, time.perf_counter() - started


def interp_subjects(quick: bool) -> list[Subject]:
    """interp_bench's programs, on its arguments."""
    trips = 1_000 if quick else 100_000
    straight = interp_bench.StraightLine(1_000 if quick else interp_bench.STRAIGHT_N)
    width = 64 if quick else 256
    return [
        Subject(
            f"straight-line {straight.n:,}",
            "interp",
            straight.text,
            [("straight", list(interp_bench.STRAIGHT_ARGS))],
        ),
        Subject(
            f"loop, Double, {trips:,} trips",
            "interp",
            interp_bench.loop_text("Double"),
            [("loop", [interp_bench.LOOP_C, trips])],
        ),
        Subject(
            f"loop, Float, {trips:,} trips",
            "interp",
            interp_bench.loop_text("Float"),
            [("loop", [interp_bench.LOOP_C, trips])],
        ),
        Subject(
            f"MLP forward, width {width}",
            "interp",
            interp_bench.mlp_text(),
            [("mlp", interp_bench.mlp_inputs(width))],
        ),
    ]


def golden_subjects(quick: bool) -> list[Subject]:
    """The golden differentiation outputs that run: each function on the harness's ordinary draws."""
    found = []
    for s in preservation.subjects():
        if s.path.suffix != ".expected" or GOLDEN not in s.path.parents:
            continue
        text = preservation.prepared_text(s)
        module = parse(text, s.id)
        program = Program(module, max_steps=MAX_STEPS, max_depth=preservation.MAX_DEPTH)
        calls = []
        for fn in module.functions.values():
            if not preservation.drawable(fn):
                continue
            draw = preservation.ArgumentDraw(module, f"{s.id}:{fn.name}")
            try:
                points = [draw.point(fn.type.params, i) for i in range(preservation.ORDINARY_POINTS)]
            except preservation.CannotDraw:
                continue
            calls += [(fn.name, args) for args in points if runs(program, fn.name, args)]
        if calls:
            found.append(Subject(s.path.relative_to(GOLDEN).as_posix(), "golden", text, calls))
    return found[:4] if quick else found


def runs(program: Program, name: str, args: Sequence[Any]) -> bool:
    try:
        program.run(name, *args)
    except RunError:
        return False
    return True


def prepare(subject: Subject, backend: Backend) -> None:
    """Optimize ``subject``, check every call gives the same result after -O, count the steps
    of both, and make its timed variants. A synthesized function -O erased (nothing reached it) is
    called in neither; one whose record -sroa split into its fields is given the fields after."""
    before = checked_module(subject.text, subject.name)
    after, seconds = optimized(subject.text, subject.name)
    subject.opt_seconds.append(seconds)
    missing = [name for name, _ in subject.calls if name not in after.functions and is_root(name)]
    if missing:
        fail(f"{subject.name}: -O removed @{missing[0]}, which a user wrote")
    kept = [(name, args) for name, args in subject.calls if name in after.functions]
    calls = {"before": kept, "after": [(name, reshaped(before, after, name, args)) for name, args in kept]}
    bench = Bench(subject.name, 1, "call")
    for label, module in (("before", before), ("after", after)):
        counting = Program(module, backend, count_steps=True, max_depth=preservation.MAX_DEPTH)
        total = 0
        for name, args in calls[label]:
            counting.run(name, *args)
            assert counting.steps is not None
            total += counting.steps
        subject.steps[label] = total
        call = calls_of(Program(module, backend, max_depth=preservation.MAX_DEPTH), calls[label])
        call()  # the first run compiles
        bench.add(label, call, 1, warmup=2)
    for (name, args), (_, args_after) in zip(calls["before"], calls["after"], strict=True):
        old = preservation.outcome(Program(before, backend), name, args)
        new = preservation.outcome(Program(after, backend), name, args_after)
        if old != new:
            fail(f"{subject.name}: @{name} gives another result after -O")
    subject.bench = bench


def reshaped(before: Module, after: Module, name: str, args: list[Any]) -> list[Any]:
    """``args`` of a call of ``@name`` as the optimized module's signature takes them."""
    fn = before.functions[name]
    return preservation.exploded(args, fn.type.params, after.functions[name].type.params, fn, before)


def calls_of(program: Program, calls: Sequence[tuple[str, list[Any]]]) -> Callable[[], None]:
    """One run of every call, through compiled forms and arguments converted once (a module that
    recurses deeper than the recursion limit allows is not among the subjects: the harness's
    draws keep depths small)."""
    ready = []
    for name, args in calls:
        params = program.signature(name).params
        run_args = [program.converter.to_run(a, p, "argument") for a, p in zip(args, params)]
        ready.append((program.function(name), run_args))

    def run_all() -> None:
        # As Program.call_compiled runs a call, without its per-call set-up, which would weigh on
        # the golden subjects' calls of a few instructions as much as the calls themselves.
        gc.disable()
        try:
            with np.errstate(all="ignore"):
                for compiled, run_args in ready:
                    compiled(1, *run_args)
        finally:
            gc.enable()

    return run_all


def time_subject(bench: Bench, reps: int, extend: bool) -> None:
    """A subject before and after -O, side by side: a sample is one run of its calls, before and
    after interleaved in a round (``common.time_round``), for at least ``reps`` rounds and, with
    ``extend``, as many as fit in ``SUBJECT_SECONDS`` (at most ``20 * reps``). On a shared
    machine a run is now and then descheduled; short samples leave most of them whole, and the
    median skips the others."""
    common.warm_up([bench])
    started = time.perf_counter()
    for call, _ in bench.variants.values():
        call()
    once = max(time.perf_counter() - started, 1e-6)
    rounds = max(reps, min(20 * reps, int(SUBJECT_SECONDS / once))) if extend else reps
    for i in range(rounds):
        common.time_round([bench], i)


def time_opt(subject: Subject) -> None:
    """One more timing of -O on the subject (parsing outside it)."""
    subject.opt_seconds.append(optimized(subject.text, subject.name)[1])


def geomean(values: Sequence[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def time_ratio(s: Subject) -> float:
    assert s.bench is not None
    return statistics.median(common.ratios((s.bench, "after"), (s.bench, "before")))


def print_table(subjects: Sequence[Subject]) -> dict[str, Any]:
    """The Markdown table and the geometric means by group; returns the ratios for the JSON."""
    print()
    print("| subject | calls | executed before | after | after / before | time after / before | -O time |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s in subjects:
        b, a = s.steps["before"], s.steps["after"]
        print(
            f"| {s.group}: {s.name} | {len(s.calls)} | {b:,} | {a:,} | {a / b:.3f} | {time_ratio(s):.2f} "
            f"| {statistics.median(s.opt_seconds) * 1e3:,.1f} ms |"
        )
    summary: dict[str, Any] = {}
    print()
    print("Geometric means, after -O / before:")
    for group in dict.fromkeys(s.group for s in subjects):
        members = [s for s in subjects if s.group == group]
        steps = geomean([s.steps["after"] / s.steps["before"] for s in members])
        timed = geomean([time_ratio(s) for s in members])
        opt = sum(statistics.median(s.opt_seconds) for s in members)
        print(
            f"  {group} ({len(members)} subjects): executed {steps:.3f}x, time {timed:.2f}x; "
            f"-O took {opt:.2f} s on them in all"
        )
        summary[f"{group}: executed, after -O / before (geomean)"] = {"ratio": steps}
        summary[f"{group}: time, after -O / before (geomean)"] = {"ratio": timed}
    return summary


SCALING_PASSES = ("cse", "canonicalize", "simplify-cfg", "sroa", "loop-unroll", "inline", "O")


def print_scaling(quick: bool) -> dict[str, list[float]]:
    """Each pass on a long block and on a long chain of blocks (``tests/sil/transforms/test_scaling.py``'s
    generators) at n and 4n instructions: a linear pass takes about 4 times as long on the larger
    (the best of 2; one with ``quick``)."""
    from tests.sil.transforms.test_scaling import many_blocks, optimize_timed, straight_line

    n = 2_500 if quick else 10_000
    print(f"\nScaling: seconds at {n:,} and {4 * n:,} instructions, and their ratio (linear: about 4)\n")
    print("| pass | workload | small (s) | large (s) | large / small |\n|---|---|---:|---:|---:|")
    figures: dict[str, list[float]] = {}
    for name in SCALING_PASSES:
        for label, make in (("one block", straight_line), ("blocks", many_blocks)):
            small, large = (
                min(optimize_timed(make(size), name) for _ in range(1 if quick else 2)) for size in (n, 4 * n)
            )
            figures[f"{name} {label}"] = [small, large]
            print(f"| -{name} | {label} | {small:.3f} | {large:.3f} | {large / max(small, 1e-9):.1f} |")
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = common.argument_parser(
        __doc__,
        quick="short loops, 4 golden subjects, one round: a smoke run",
        reps="timed rounds per subject, at least, and timings of -O (default 9; 1 with --quick)",
        profile=(),
        profile_help="(no workload is profiled here)",
    )
    args = ap.parse_args(argv)
    backend = select_backend("numpy")
    reps = args.reps or (1 if args.quick else 9)
    started = time.perf_counter()
    info = common.machine(numpy=np.__version__, backend=backend.describe())
    common.header("opt_bench", info, ("NumPy", "backend"), f"{reps} round(s)", args.quick)
    subjects = interp_subjects(args.quick) + golden_subjects(args.quick)
    for s in subjects:
        prepare(s, backend)
    print(
        f"  {len(subjects)} subjects optimized and checked in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    benches = [s.bench for s in subjects if s.bench is not None]
    gc.collect()
    gc.freeze()  # the subjects' modules stay alive: each round's collection need not traverse them
    for bench in benches:
        time_subject(bench, reps, not args.quick)
    gc.unfreeze()
    for _ in range(reps - 1):
        for s in subjects:
            time_opt(s)
    summary = print_table(subjects)
    scaling = print_scaling(args.quick)
    if args.quick:
        print("A --quick smoke run: too small and short to judge.")
    print(f"\nTotal {time.perf_counter() - started:.1f} s.")
    doc = {
        "machine": info,
        "reps": reps,
        "quick": args.quick,
        "workloads": common.benches_json(benches),
        "steps": {s.name: s.steps for s in subjects},
        "opt_seconds": {s.name: s.opt_seconds for s in subjects},
        "ratios": summary,
        "scaling_seconds": scaling,
    }
    common.write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
