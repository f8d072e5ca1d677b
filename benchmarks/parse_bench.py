"""Throughput and memory of the parser, the verifier and the printer on generated SIL text.

Run from the repository root::

    python3 benchmarks/parse_bench.py           # the full run (about two minutes on 2 cores)
    python3 benchmarks/parse_bench.py --quick   # a smoke run: small inputs, one repetition

Workloads: straight-line functions of 10k, 50k and 100k instructions of Double arithmetic, and a
module of 5,000 small functions, some calling others through ``function_ref`` + ``apply``. For
each, parse, verify and print are timed separately (the median of ``--reps`` runs, with the cyclic
GC enabled, as users run them), the memory the parsed module keeps alive is measured with
``tracemalloc``, and every figure is set against plain-CPython baselines timed in the same run on
equivalent input, so that a figure from a noisy machine can still be compared with another.
Before anything is timed, each workload is checked: the module verifies clean, and printing,
re-parsing and printing again gives the same text, so the benchmark times correct work.
``benchmarks/README.md`` explains the figures and records results.
"""

from __future__ import annotations

import gc
import itertools
import json
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import common  # first: it puts this checkout on sys.path
from common import bare_loop_ns, verdict

from sil import Module, parse, print_module, verify_module

# Targets for the 2-core reference machine (see README.md).
TARGET_PARSE = 100_000  # instructions per second
TARGET_VERIFY = 250_000
TARGET_PRINT = 300_000
TARGET_BYTES = 600  # retained bytes per instruction after parse
TARGET_SCALING = 1.3  # time per instruction at the largest size / at the smallest
# Each sample averages this many instructions' worth of calls at least (a 10k workload: 10 calls),
# so that a small workload's sample is not a few milliseconds that a noisy spell can double.
SAMPLE_INSTRUCTIONS = 100_000

FN_TYPE = "$@convention(thin) (Double, Double) -> Double"
# Binary builtins, weighted towards the four arithmetic operations, and unary ones.
BINARY = ("fadd",) * 4 + ("fmul",) * 4 + ("fsub",) * 3 + ("fdiv",) * 2 + ("fmin", "fmax", "pow")
UNARY = ("sin", "cos", "exp", "log", "tanh", "sqrt", "abs", "fneg")
LITERALS = ("1.5", "-0.25", "3.0", "2.718281828459045", "1.0e-3", "-7.25e+2", "0x3FF8000000000000", "42.0")

T = TypeVar("T")

# An instruction as the JSON baselines hold it: the same content as one line of SIL text.
JsonInst = list[Any]


# --- workloads ---------------------------------------------------------------------------------
class Workload:
    """One input: its SIL text, an equivalent JSON document, and how many instructions it holds."""

    def __init__(self, name: str, text: str, doc: object, instructions: int) -> None:
        self.name = name
        self.text = text
        self.json_text = json.dumps(doc, separators=(",", ":"))
        self.instructions = instructions


def _operand(rng: random.Random, values: list[str]) -> str:
    """A Double value to use: mostly one of the last few defined, sometimes any earlier one."""
    count = len(values)
    if rng.random() < 0.9:
        return values[count - 1 - min(int(rng.expovariate(0.35)), count - 1)]
    return values[rng.randrange(count)]


def _body(
    rng: random.Random, n: int, names: Iterator[str], values: list[str], lines: list[str], doc: list[JsonInst]
) -> None:
    """Append ``n`` arithmetic instructions on the Double values in ``values``, adding their results."""
    for _ in range(n):
        r = next(names)
        roll = rng.random()
        if roll < 0.12:
            lit = rng.choice(LITERALS)
            lines.append(f"  {r} = float_literal $Double, {lit}")
            doc.append([r, "float_literal", "Double", lit])
        elif roll < 0.78:
            op = rng.choice(BINARY)
            a, b = _operand(rng, values), _operand(rng, values)
            lines.append(f'  {r} = builtin "{op}"({a} : $Double, {b} : $Double) : $Double')
            doc.append([r, "builtin", op, [[a, "Double"], [b, "Double"]], "Double"])
        else:
            op = rng.choice(UNARY)
            a = _operand(rng, values)
            lines.append(f'  {r} = builtin "{op}"({a} : $Double) : $Double')
            doc.append([r, "builtin", op, [[a, "Double"]], "Double"])
        values.append(r)


def _value_names(first: int) -> Iterator[str]:
    return (f"%{i}" for i in itertools.count(first))


def straight_line(n: int, seed: int = 1) -> Workload:
    """One function of ``n`` instructions (the ``return`` included) and no control flow."""
    rng = random.Random(seed)
    lines = [
        "sil_stage canonical",
        "",
        f"sil @straight_{n} : {FN_TYPE} {{",
        "bb0(%0 : $Double, %1 : $Double):",
    ]
    insts: list[JsonInst] = []
    values = ["%0", "%1"]
    _body(rng, n - 1, _value_names(2), values, lines, insts)
    lines.append(f"  return {values[-1]} : $Double")
    insts.append(["return", values[-1], "Double"])
    lines += ["}", ""]
    doc = [{"name": f"straight_{n}", "type": FN_TYPE, "args": [["%0", "Double"], ["%1", "Double"]]}, insts]
    return Workload(f"straight-line {n // 1000}k", "\n".join(lines), doc, n)


def many_functions(count: int, seed: int = 2) -> Workload:
    """``count`` small functions of 3 to 10 instructions; a third of them call one or two others.

    Half the functions name their values (``%x0``, ``%x1``, …) rather than number them."""
    rng = random.Random(seed)
    lines = ["sil_stage canonical", ""]
    doc: list[object] = []
    total = 0
    for i in range(count):
        insts: list[JsonInst] = []
        if i % 2:
            values = ["%x", "%y"]
            names: Iterator[str] = (f"%v{k}" for k in itertools.count())
        else:
            values = ["%0", "%1"]
            names = _value_names(2)
        lines.append(f"sil @f{i} : {FN_TYPE} {{")
        lines.append(f"bb0({values[0]} : $Double, {values[1]} : $Double):")
        args = [[values[0], "Double"], [values[1], "Double"]]
        _body(rng, rng.randint(2, 4), names, values, lines, insts)
        if i % 3 == 0:
            for _ in range(rng.randint(1, 2)):
                callee = f"@f{rng.randrange(count)}"  # earlier or later: references may go forward
                ref, res = next(names), next(names)
                a, b = _operand(rng, values), _operand(rng, values)
                lines.append(f"  {ref} = function_ref {callee} : {FN_TYPE}")
                lines.append(f"  {res} = apply {ref}({a}, {b}) : {FN_TYPE}")
                insts.append([ref, "function_ref", callee, FN_TYPE])
                insts.append([res, "apply", ref, [a, b], FN_TYPE])
                values.append(res)
        _body(rng, rng.randint(0, 2), names, values, lines, insts)
        lines.append(f"  return {values[-1]} : $Double")
        insts.append(["return", values[-1], "Double"])
        lines += ["}", ""]
        total += len(insts)
        doc.append({"name": f"f{i}", "type": FN_TYPE, "args": args, "body": insts})
    return Workload(f"{count} functions", "\n".join(lines), doc, total)


def count_instructions(module: Module) -> int:
    return sum(len(b.instructions) for f in module.functions.values() for b in f.blocks)


# --- measuring ---------------------------------------------------------------------------------
def seconds(fn: Callable[[], T], gc_enabled: bool, calls: int = 1) -> tuple[float, T]:
    """The mean wall time of ``calls`` calls of ``fn()``, and the last result. Each call is timed
    as a single one would be: the previous call's result is freed and garbage collected before
    it, outside the timing, so every call starts from the same memory (the caller frees the last
    result outside the timing too)."""
    result: T | None = None
    elapsed = 0.0
    for _ in range(calls):
        result = None
        gc.collect()
        if not gc_enabled:
            gc.disable()
        try:
            start = time.perf_counter()
            result = fn()
            elapsed += time.perf_counter() - start
        finally:
            gc.enable()
    assert result is not None
    return elapsed / calls, result


def split_floor(text: str) -> int:
    """A floor for any pure-Python parser: split into lines and look at each once."""
    n = 0
    for line in text.split("\n"):
        if line.startswith("  "):
            n += 1
    return n


def retained_bytes(text: str) -> tuple[int, list[str]]:
    """Bytes allocated by ``parse`` that the module keeps alive (the source text excluded), and
    the allocation sites holding most of them."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    module = parse(text)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = after.compare_to(before, "lineno")
    retained = sum(s.size_diff for s in stats)
    top = []
    for s in stats[:6]:
        frame = s.traceback[0]
        where = common.source_place(frame.filename)
        top.append(f"{s.size_diff / 1e6:7.2f} MB  {s.count_diff:>8} blocks  {where}:{frame.lineno}")
    del module
    return retained, top


def check_round_trip(w: Workload) -> None:
    """The benchmark times correct work: the module verifies, and print(parse(print(m))) == print(m)."""
    module = parse(w.text, w.name)
    got = count_instructions(module)
    if got != w.instructions:
        sys.exit(f"{w.name}: parsed {got} instructions, generated {w.instructions}")
    diagnostics = verify_module(module)
    if diagnostics:
        sys.exit(f"{w.name}: the generated module does not verify: {diagnostics[0].message}")
    printed = print_module(module)
    again = parse(printed, w.name + " (printed)")
    if verify_module(again) or print_module(again) != printed:
        sys.exit(f"{w.name}: printing does not round-trip")


class Result:
    def __init__(self, w: Workload) -> None:
        self.name = w.name
        self.n = w.instructions
        self.text_bytes = len(w.text)
        self.json_bytes = len(w.json_text)
        self.samples: dict[str, list[float]] = {}
        self.times: dict[str, float] = {}  # the median of each list of samples
        self.bytes_per_inst = 0.0
        self.top_allocations: list[str] = []

    def rate(self, phase: str) -> float:
        return self.n / self.times[phase]

    def ratio(self, phase: str, baseline: str) -> float:
        """The median over the runs of our time / the baseline's time in the same round."""
        return statistics.median(p / b for p, b in zip(self.samples[phase], self.samples[baseline]))


def time_round(w: Workload, samples: dict[str, list[float]], sample_instructions: int) -> None:
    """Take one sample of each phase and baseline on ``w``, adding to ``samples``: the mean time
    of enough calls to cover ``sample_instructions`` instructions.

    Our phases run with the cyclic GC on, as users run them (the parser turns it off itself while
    it runs); verify and print run once more with it off, to show what it costs. Baselines run with
    it off, as timeit does: json.loads builds ~5 containers per instruction and, with the GC on,
    gets superlinear on large inputs, which would flatter us. Only this workload's modules and
    documents are alive meanwhile, as in a process that handles one input at a time."""

    calls = max(1, sample_instructions // w.instructions)

    def add(name: str, fn: Callable[[], T], gc_enabled: bool) -> T:
        elapsed, result = seconds(fn, gc_enabled, calls)
        samples.setdefault(name, []).append(elapsed)
        return result

    text, json_text = w.text, w.json_text
    add("floor", lambda: split_floor(text), False)
    doc = add("json.loads", lambda: json.loads(json_text), False)
    add("json.dumps", lambda: json.dumps(doc, separators=(",", ":")), False)
    module = add("parse", lambda: parse(text), True)
    add("verify", lambda: verify_module(module), True)
    add("print", lambda: print_module(module), True)
    add("verify, gc off", lambda: verify_module(module), False)
    add("print, gc off", lambda: print_module(module), False)


def measure(
    ws: list[Workload], reps: int, memory: bool, sample_instructions: int
) -> tuple[list[Result], list[float]]:
    """Time every workload ``reps`` times, round-robin over workloads and phases, so that a slow
    spell of the machine touches every figure alike (and the scaling ratios compare sizes timed
    moments apart); then measure each module's memory. Also returns the machine's speed in each
    round (``bare_loop_ns``), which tells the spell a run fell in."""
    results = [Result(w) for w in ws]
    speeds: list[float] = []

    def one_round(i: int) -> str:
        speeds.append(bare_loop_ns())
        for w, r in zip(ws, results):
            time_round(w, r.samples, sample_instructions)
        return f" (bare loop: {speeds[-1]:.0f} ns/iteration)"

    common.rounds(reps, one_round)
    for w, r in zip(ws, results):
        r.times = {name: statistics.median(ts) for name, ts in r.samples.items()}
        if memory:
            retained, r.top_allocations = retained_bytes(w.text)
            r.bytes_per_inst = retained / w.instructions
    return results, speeds


# --- reporting ---------------------------------------------------------------------------------


BASELINE_RATIOS = (  # (ours, the baseline, digits shown): the columns of the baselines' table
    ("parse", "floor", 1),
    ("parse", "json.loads", 1),
    ("verify", "json.loads", 2),
    ("print", "json.dumps", 2),
)


def print_rows(widths: tuple[int, ...], rows: list[tuple[object, ...]]) -> None:
    """A table, its columns right-aligned to ``widths`` (the first row is its header)."""
    for cells in rows:
        print("  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))


def report_throughput(results: list[Result]) -> dict[str, Any]:
    """Instructions per second and retained bytes per workload; the ratios to the baselines
    (returned, by workload and ratio, for the JSON output); the same with the GC off."""
    widths = (18, 9, 12, 12, 12, 10)
    print()
    print("Throughput, instructions per second (median, cyclic GC on):")
    rows: list[tuple[object, ...]] = [("workload", "instrs", "parse", "verify", "print", "bytes/inst")]
    for r in results:
        rates = (f"{r.rate(phase):,.0f}" for phase in ("parse", "verify", "print"))
        rows.append((r.name, r.n, *rates, f"{r.bytes_per_inst:,.0f}" if r.bytes_per_inst else "-"))
    print_rows(widths, rows)
    print()
    print("Against plain-CPython baselines on the same content (our time / baseline time):")
    print("  floor = str.split + one look at each line; json = the same instructions as a JSON document")
    heads = tuple(f"{ours}/{base.removeprefix('json.')}" for ours, base, _ in BASELINE_RATIOS)
    rows = [("workload", "text KB", *heads)]
    summary: dict[str, Any] = {}
    for r in results:
        values = [r.ratio(ours, base) for ours, base, _ in BASELINE_RATIOS]
        shown = (f"{v:.{digits}f}x" for v, (_, _, digits) in zip(values, BASELINE_RATIOS))
        rows.append((r.name, f"{r.text_bytes / 1024:,.0f}", *shown))
        summary.update({f"{r.name}: {head}": {"ratio": v} for head, v in zip(heads, values)})
    print_rows(widths, rows)
    print()
    print("Cyclic GC off for verify and print (instructions per second; parse always runs with it off):")
    rows = [("workload", "", "", "verify", "print", "")]
    rows += [
        (r.name, "", "", f"{r.rate('verify, gc off'):,.0f}", f"{r.rate('print, gc off'):,.0f}", "")
        for r in results
    ]
    print_rows(widths, rows)
    return summary


def report_scaling(small: Result, large: Result) -> dict[str, dict[str, float]]:
    """Time per instruction at the largest size / at the smallest, ours and the baselines'."""

    def scale(name: str) -> float:
        """The median over rounds."""
        per_round = zip(large.samples[name], small.samples[name])
        return statistics.median((tl / large.n) / (ts / small.n) for tl, ts in per_round)

    scaling = {phase: scale(phase) for phase in ("parse", "verify", "print")}
    baseline_scaling = {name: scale(name) for name in ("floor", "json.loads", "json.dumps")}
    print()
    print(f"Scaling, time per instruction at {large.n:,} / at {small.n:,} (linear = 1.0):")
    print("  ours:      " + ", ".join(f"{p} {s:.2f}" for p, s in scaling.items()))
    print("  baselines: " + ", ".join(f"{p} {s:.2f}" for p, s in baseline_scaling.items()))
    relative = {
        "parse": scaling["parse"] / baseline_scaling["json.loads"],
        "verify": scaling["verify"] / baseline_scaling["json.loads"],
        "print": scaling["print"] / baseline_scaling["json.dumps"],
    }
    print("  ours / json's (parse and verify / json.loads, print / json.dumps): ", end="")
    print(", ".join(f"{p} {s:.2f}" for p, s in relative.items()))
    print("  (the baselines are linear algorithms: what they show above 1.0 is the machine's caches)")
    return {"scaling": scaling, "baseline_scaling": baseline_scaling, "scaling_relative_to_json": relative}


def report_targets(results: list[Result], worst_scaling: float, quick: bool) -> dict[str, Any]:
    """Each target judged on the worst workload, so that no input shape hides a slow path."""

    def slowest(phase: str) -> tuple[float, str]:
        r = min(results, key=lambda r: r.rate(phase))
        return r.rate(phase), r.name

    checks: list[tuple[str, float, str, float, str, str]] = [
        (phase, *slowest(phase), target, ">=", "instr/s")
        for phase, target in (("parse", TARGET_PARSE), ("verify", TARGET_VERIFY), ("print", TARGET_PRINT))
    ]
    measured = [r for r in results if r.bytes_per_inst]
    if measured:
        r = max(measured, key=lambda r: r.bytes_per_inst)
        checks.append(("memory", r.bytes_per_inst, r.name, TARGET_BYTES, "<=", "bytes/instr"))
    checks.append(("scaling", worst_scaling, "worst phase", TARGET_SCALING, "<=", "ratio"))
    print()
    print(
        "Targets (worst workload)"
        + (": a --quick smoke run, too small and short to judge them" if quick else ":")
    )
    summary = {}
    for name, value, where, target, op, unit in checks:
        ok = value >= target if op == ">=" else value <= target
        fmt = "{:,.2f}" if unit == "ratio" else "{:,.0f}"
        print(
            f"  {name:<8} {fmt.format(value):>10} {unit:<12} target {op} {fmt.format(target):<8}"
            f" {verdict(ok)}  ({where})"
        )
        summary[name] = {"value": value, "target": target, "workload": where, "pass": ok}
    return summary


def report(results: list[Result], straight: list[Result], quick: bool) -> dict[str, Any]:
    """Every table of the run; returns its figures for the JSON output."""
    ratios = report_throughput(results)
    scaling = report_scaling(straight[0], straight[-1])
    targets = report_targets(results, max(scaling["scaling"].values()), quick)
    for r in results:
        if r.top_allocations and (r is straight[-1] or not r.name.startswith("straight")):
            print()
            print(f"Where the retained memory of {r.name} was allocated (tracemalloc, by line):")
            for line in r.top_allocations:
                print("  " + line)
    return {**scaling, "targets": targets, "ratios": ratios}


def workloads(quick: bool) -> Iterator[Workload]:
    sizes = (1_000, 2_000, 5_000) if quick else (10_000, 50_000, 100_000)
    for n in sizes:
        yield straight_line(n)
    yield many_functions(200 if quick else 5_000)


def profile(phase: str, quick: bool, top: int = 15) -> None:
    """Run one phase on the largest straight-line function under cProfile; print the top functions
    by their own time (tottime), with their share of the total."""
    w = straight_line(5_000 if quick else 100_000)
    module = parse(w.text)
    run: dict[str, Callable[[], object]] = {
        "parse": lambda: parse(w.text),
        "verify": lambda: verify_module(module),
        "print": lambda: print_module(module),
    }
    common.print_profile(run[phase], f"{phase} of {w.name} (cyclic GC on)", top)


def check_workloads(quick: bool) -> list[Workload]:
    """Every workload generated and checked, after a small module has run through each phase once
    (import-time and first-call costs, outside the figures)."""
    started = time.perf_counter()
    warm = parse(many_functions(50).text)
    verify_module(warm)
    print_module(warm)
    del warm
    ws = list(workloads(quick))
    for w in ws:
        check_round_trip(w)
    print(f"  generated and checked {len(ws)} workloads in {time.perf_counter() - started:.1f} s")
    return ws


def main(argv: list[str] | None = None) -> int:
    ap = common.argument_parser(
        __doc__,
        quick="small inputs, one repetition: a smoke run",
        reps="timed runs per figure (default 9; 1 with --quick)",
        profile=("parse", "verify", "print"),
        profile_help="instead of timing, profile one phase on the 100k function (5k with --quick) "
        "with cProfile",
    )
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc measurement")
    args = ap.parse_args(argv)
    if args.profile:
        profile(args.profile, args.quick)
        return 0
    reps = args.reps or (1 if args.quick else 9)
    info = common.machine()
    common.header("parse_bench", info, (), f"{reps} run(s) per figure", args.quick)
    started = time.perf_counter()
    ws = check_workloads(args.quick)
    sample_instructions = 0 if args.quick else SAMPLE_INSTRUCTIONS  # a smoke run: one call a sample
    results, speeds = measure(ws, reps, not args.no_memory, sample_instructions)
    straight = [r for r in results if r.name.startswith("straight")]
    print(
        f"\nMachine speed: a bare CPython loop (`s += i`) took {statistics.median(speeds):.0f} ns per "
        f"iteration (median over rounds, {min(speeds):.0f}–{max(speeds):.0f}); compare runs made at "
        "similar speeds."
    )
    summary = report(results, straight, args.quick)
    print(f"\nTotal {time.perf_counter() - started:.1f} s.")
    workloads_json = [
        {
            "name": r.name,
            "instructions": r.n,
            "text_bytes": r.text_bytes,
            "json_bytes": r.json_bytes,
            "seconds": r.times,
            "bytes_per_instruction": r.bytes_per_inst,
        }
        for r in results
    ]
    doc = {"machine": info, "bare_loop_ns": statistics.median(speeds), "reps": reps, "quick": args.quick}
    common.write_json(args.json, {**doc, "workloads": workloads_json, **summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
