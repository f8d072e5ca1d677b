"""Speed of the interpreter's compiled code against plain CPython and hand-written NumPy.

Run from the repository root (or anywhere; it imports the checkout it lives in)::

    python3 benchmarks/interp_bench.py           # the full run (about a minute on 2 cores)
    python3 benchmarks/interp_bench.py --quick   # a smoke run: short loops, one repetition

Workloads, each written in SIL by this script (deterministically), parsed, verified and run on the
NumPy backend: (a) a straight-line function of 10k Double instructions, against a generated
plain-Python function doing the same arithmetic; (b) a loop of 10^6 trips with block arguments and
``cond_br`` on an Int counter and a Double accumulator, against the same Python ``while`` loop;
(c) that loop on Float, against the Python loop on ``numpy.float32`` scalars; (d) a 3-layer tanh
MLP forward pass on Float tensors, against the same NumPy calls written by hand; (e) the cost of
step counting (``Program(count_steps=True)``) on (a) and (b). Every workload is checked before it
is timed: the interpreter and the baseline give the same result (bit for bit, except the MLP:
allclose), and counted runs count the expected number of instructions. Workloads and baselines are
timed round-robin, so that a slow spell of the machine touches them alike, and each ratio is the
median over rounds of the ratio within a round. ``benchmarks/README.md`` explains the figures and
records results.
"""

from __future__ import annotations

import math
import operator
import random
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

import common
import numpy as np
from common import Bench, Figure, checked_module, fail, ratios

from accel import Backend, select_backend
from interp import Program
from interp.compiler import compiled_code
from sil import Module

# Targets for the 2-core reference machine (issue 3, item 8; see README.md): our time / baseline's.
TARGET_STRAIGHT = 3.5  # straight-line Double code / plain Python
TARGET_LOOP = 5.0  # a loop trip / a Python while-loop trip
TARGET_MLP = 1.10  # MLP forward pass at width 1024 / hand-written NumPy
TARGET_COUNTING = 1.10  # with count_steps or max_steps / without
MAX_STEPS = 10**9  # the --max-steps of the limited runs: never reached by the workloads

STRAIGHT_N = 10_000  # instructions, the return included
STRAIGHT_ARGS = (0.75, -1.25)
LOOP_C = 0.999  # acc = acc * c + i stays near i / (1 - c): no overflow, and every bit matters
BATCH, IO_WIDTH, HIDDEN_WIDTHS = 128, 256, (256, 1024)

# --- (a) straight-line Double code -------------------------------------------------------------
# Builtins, weighted towards the four arithmetic operations, with what each computes in Python.
BINARY = ("fadd",) * 4 + ("fmul",) * 4 + ("fsub",) * 3 + ("fdiv",) * 2
UNARY = ("sin", "cos", "exp", "tanh", "sqrt", "abs", "fneg")
PY_BINARY = {"fadd": "+", "fsub": "-", "fmul": "*", "fdiv": "/"}
PY_UNARY = {"sin": "sin", "cos": "cos", "exp": "exp", "tanh": "tanh", "sqrt": "sqrt", "abs": "abs"}
EVAL_BINARY: dict[str, Callable[[float, float], float]] = {
    "fadd": operator.add,
    "fsub": operator.sub,
    "fmul": operator.mul,
    "fdiv": operator.truediv,
}
EVAL_UNARY: dict[str, Callable[[float], float]] = {
    "sin": math.sin,
    "cos": math.cos,
    "exp": math.exp,
    "tanh": math.tanh,
    "sqrt": math.sqrt,
    "abs": abs,
    "fneg": operator.neg,
}
LITERALS = (1.5, -0.25, 3.0, 2.718281828459045, 1.0e-3, -7.25, 0.1, 42.0)
# The plain-Python baseline's names for math functions, as `from math import sin, ...` gives them.
PY_GLOBALS = {"sin": math.sin, "cos": math.cos, "exp": math.exp, "tanh": math.tanh, "sqrt": math.sqrt}


def _bounded(x: float) -> bool:
    """Whether a value keeps the function well away from overflow, NaN and subnormals."""
    return x == 0.0 or 1e-6 <= abs(x) <= 1e3


def _spell(value: float, k: int) -> str:
    """A Double literal in one of the spec's spellings: decimal, scientific, or a hex bit pattern."""
    if k % 3 == 0:
        return repr(value)
    if k % 3 == 1:
        return f"{value:.16e}"
    return f"0x{struct.unpack('<Q', struct.pack('<d', value))[0]:016X}"


class StraightLine:
    """One function ``(Double, Double) -> Double`` of ``n`` instructions, with no control flow, and
    a plain-Python function doing the same arithmetic in the same order.

    The generator evaluates each instruction on ``STRAIGHT_ARGS`` as it goes and keeps only those
    whose result stays bounded (see ``_bounded``): no ``inf``, NaN, domain error or division by a
    tiny value can occur on those arguments, so the plain-Python function can use ``math`` as it
    is. ``sqrt`` always takes an ``abs`` first."""

    def __init__(self, n: int, seed: int = 3) -> None:
        rng = random.Random(seed)
        self.n = n
        fn_type = "$@convention(thin) (Double, Double) -> Double"
        sil = ["sil_stage canonical", "", f"sil @straight : {fn_type} {{", "bb0(%0 : $Double, %1 : $Double):"]
        py = ["def straight(v0, v1):"]
        values = list(STRAIGHT_ARGS)

        def operand() -> int:
            """Mostly one of the last few values, sometimes any earlier one."""
            count = len(values)
            if rng.random() < 0.9:
                return count - 1 - min(int(rng.expovariate(0.35)), count - 1)
            return rng.randrange(count)

        def emit(value: float, sil_rhs: str, py_rhs: str) -> None:
            r = len(values)
            sil.append(f"  %{r} = {sil_rhs}")
            py.append(f"    v{r} = {py_rhs}")
            values.append(value)

        while len(values) - 2 < n - 1:
            room = n - 1 - (len(values) - 2)
            for _ in range(20):  # tries for an instruction whose result stays bounded
                roll = rng.random()
                if roll < 0.10:
                    k = rng.randrange(len(LITERALS) * 3)
                    value = LITERALS[k % len(LITERALS)]
                    emit(value, f"float_literal $Double, {_spell(value, k // len(LITERALS))}", repr(value))
                    break
                if roll < 0.72:
                    op = rng.choice(BINARY)
                    a, b = operand(), operand()
                    x, y = values[a], values[b]
                    if op == "fdiv" and abs(y) < 1e-2:
                        continue
                    value = EVAL_BINARY[op](x, y)
                    if not _bounded(value):
                        continue
                    rhs = f'builtin "{op}"(%{a} : $Double, %{b} : $Double) : $Double'
                    emit(value, rhs, f"v{a} {PY_BINARY[op]} v{b}")
                    break
                op = rng.choice(UNARY)
                a = operand()
                x = values[a]
                if op == "sqrt":
                    if room < 2 or not _bounded(math.sqrt(abs(x))):
                        continue
                    emit(abs(x), f'builtin "abs"(%{a} : $Double) : $Double', f"abs(v{a})")
                    a, x = len(values) - 1, abs(x)
                elif op == "exp" and x > 6.0:
                    continue
                value = EVAL_UNARY[op](x)
                if not _bounded(value):
                    continue
                rhs = f'builtin "{op}"(%{a} : $Double) : $Double'
                emit(value, rhs, f"-v{a}" if op == "fneg" else f"{PY_UNARY[op]}(v{a})")
                break
            else:
                emit(1.5, "float_literal $Double, 1.5", "1.5")
        last = len(values) - 1
        sil += [f"  return %{last} : $Double", "}", ""]
        py.append(f"    return v{last}")
        self.text = "\n".join(sil)
        self.py_source = "\n".join(py) + "\n"
        self.expected = values[-1]

    def py_function(self) -> Callable[..., float]:
        namespace: dict[str, Any] = dict(PY_GLOBALS)
        exec(compile(self.py_source, "<plain Python straight-line>", "exec"), namespace)
        fn: Callable[..., float] = namespace["straight"]
        return fn


# --- (b), (c) a loop -----------------------------------------------------------------------------
LOOP_PREAMBLE = 4  # instructions of bb0
LOOP_TRIP = 7  # instructions of bb1 and bb2: one trip
LOOP_EXIT = 3  # the last test (bb1) and the return (bb3)


def loop_text(scalar: str) -> str:
    """``acc = acc * c + sitofp(i)`` for ``i`` in ``0..<n``: a header block tests the counter, the body
    updates the accumulator and the counter and branches back with both as block arguments."""
    fn_type = f"$@convention(thin) ({scalar}, Int) -> {scalar}"
    s = f"${scalar}"
    return "\n".join(
        [
            "sil_stage canonical",
            "",
            f"sil @loop : {fn_type} {{",
            f"bb0(%c : {s}, %n : $Int):",
            "  %zero = integer_literal $Int, 0",
            "  %one = integer_literal $Int, 1",
            f"  %acc0 = float_literal {s}, 0.0",
            f"  br bb1(%zero : $Int, %acc0 : {s})",
            "",
            f"bb1(%i : $Int, %acc : {s}):",
            '  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool',
            "  cond_br %more, bb2, bb3",
            "",
            "bb2:",
            f'  %fi = builtin "sitofp"(%i : $Int) : {s}',
            f'  %t = builtin "fmul"(%acc : {s}, %c : {s}) : {s}',
            f'  %acc2 = builtin "fadd"(%t : {s}, %fi : {s}) : {s}',
            '  %i2 = builtin "add"(%i : $Int, %one : $Int) : $Int',
            f"  br bb1(%i2 : $Int, %acc2 : {s})",
            "",
            "bb3:",
            f"  return %acc : {s}",
            "}",
            "",
        ]
    )


def py_loop(c: float, n: int) -> float:
    """The loop in plain Python, on floats."""
    i = 0
    acc = 0.0
    while i < n:
        acc = acc * c + float(i)
        i += 1
    return acc


def py_loop_f32(c: np.float32, n: int, f32: type[np.float32] = np.float32) -> np.float32:
    """The loop in plain Python on ``numpy.float32`` scalars: every result rounds to binary32."""
    i = 0
    acc = f32(0.0)
    while i < n:
        acc = acc * c + f32(i)
        i += 1
    return acc


# --- (d) an MLP forward pass -------------------------------------------------------------------------
def compile_afresh(module: Module, backend: Backend) -> Any:
    """``@straight`` compiled as a new session compiles it: not from the cache of code."""
    compiled_code.cache_clear()
    return Program(module, backend).function("@straight")


def mlp_text() -> str:
    """``y = tanh(tanh(x W1 + b1) W2 + b2) W3 + b3``: two tanh hidden layers and a linear output
    layer, the biases broadcast along the batch. Weights and biases are parameters."""
    lines, h, _ = common.mlp_sil("mlp", ["x", "w1", "b1", "w2", "b2", "w3", "b3"], "Tensor<Float>")
    lines += [f"  return {h} : $Tensor<Float>", "}", ""]
    return "\n".join(lines)


def mlp_inputs(width: int, seed: int = 4) -> list[np.ndarray[Any, Any]]:
    """The batch, then each layer's weights (scaled by 1/sqrt(fan-in)) and bias, all float32."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((BATCH, IO_WIDTH))]
    for fan_in, fan_out in ((IO_WIDTH, width), (width, width), (width, IO_WIDTH)):
        arrays.append(rng.standard_normal((fan_in, fan_out)) / math.sqrt(fan_in))
        arrays.append(0.1 * rng.standard_normal(fan_out))
    return [a.astype(np.float32) for a in arrays]


def numpy_mlp(x: Any, w1: Any, b1: Any, w2: Any, b2: Any, w3: Any, b3: Any) -> Any:
    """The same forward pass, written by hand in NumPy."""
    h = np.tanh(x @ w1 + b1)
    h = np.tanh(h @ w2 + b2)
    return h @ w3 + b3


# --- checking ----------------------------------------------------------------------------------------


def same_bits(a: Any, b: Any) -> bool:
    """The same type and the same bits (so 0.0 and -0.0 differ, and a NaN equals itself)."""
    return bool(np.asarray(a).tobytes() == np.asarray(b).tobytes()) and type(a) is type(b)


# --- measuring ---------------------------------------------------------------------------------------


def measure(benches: list[Bench], reps: int) -> None:
    """Warm every variant up, then time ``reps`` rounds of every workload (``common.time_round``:
    one workload's variants interleaved call by call, their order flipped every other round)."""
    common.warm_up(benches)

    def one_round(i: int) -> str:
        common.time_round(benches, i)
        return ""

    common.rounds(reps, one_round)


# --- the workloads, checked and ready to time -------------------------------------------------------
class Setup:
    """Every workload generated, verified, compiled and checked, with its variants ready to time."""

    def __init__(self, quick: bool, backend: Backend) -> None:
        self.quick = quick
        self.backend = backend
        self.trips = 10_000 if quick else 1_000_000
        self.benches: list[Bench] = []
        self.profiled: dict[str, Callable[[], object]] = {}  # what --profile runs, by workload
        self.a = self.straight()
        self.b = self.loop_double()
        self.c = self.loop_float()
        self.d = [self.mlp(width) for width in HIDDEN_WIDTHS]

    def straight(self) -> Bench:
        w = StraightLine(STRAIGHT_N)
        module = checked_module(w.text, "straight-line")
        program = Program(module, self.backend)
        compiled = program.function("@straight")
        counted_program = Program(module, self.backend, count_steps=True)
        counted = counted_program.function("@straight")
        baseline = w.py_function()
        x, y = STRAIGHT_ARGS
        results = {
            "expected (generator)": w.expected,
            "plain Python": baseline(x, y),
            "compiled": compiled(1, x, y),
            "compiled, counted": counted(1, x, y),
            "program.run": program.run("@straight", x, y),
            "program.run, counted": counted_program.run("@straight", x, y),
        }
        for what, value in results.items():
            if not same_bits(value, w.expected) or not math.isfinite(value):
                fail(f"straight-line: {what} gives {value!r}, the generator computed {w.expected!r}")
        if counted_program.steps != w.n:
            fail(f"straight-line: counted {counted_program.steps} steps, expected {w.n}")
        b = Bench(f"(a) straight-line {w.n // 1000}k", w.n, "instr")
        calls = 10 if self.quick else 25
        b.add("interp", lambda: compiled(1, x, y), calls)
        b.add("interp, counted", lambda: counted(1, x, y), calls)
        limited_program = Program(module, self.backend, max_steps=MAX_STEPS)
        limited = limited_program.function("@straight")
        b.add("interp, --max-steps", lambda: limited_program.call_compiled(limited, (x, y)), calls)
        b.add("python", lambda: baseline(x, y), calls)
        # Compiling churns through memory and leaves the caches cold: it is timed apart from the calls.
        self.a_compile = Bench(f"(a) compiling straight-line {w.n // 1000}k", w.n, "instr")
        self.a_compile.add("compile", lambda: compile_afresh(module, self.backend), 1, 1)
        self.a_compile.add("python compile", w.py_function, 1, 1)
        self.benches += [b, self.a_compile]
        self.profiled["straight"] = lambda: [compiled(1, x, y) for _ in range(20 if self.quick else 200)]
        return b

    def loop_double(self) -> Bench:
        module = checked_module(loop_text("Double"), "loop on Double")
        program = Program(module, self.backend)
        compiled = program.function("@loop")
        counted_program = Program(module, self.backend, count_steps=True)
        counted = counted_program.function("@loop")
        c, n = LOOP_C, self.trips
        expected = py_loop(c, n)
        for what, value in {
            "compiled": compiled(1, c, n),
            "compiled, counted": counted(1, c, n),
            "program.run": program.run("@loop", c, n),
            "program.run, counted": counted_program.run("@loop", c, n),
        }.items():
            if not same_bits(value, expected):
                fail(f"loop on Double: {what} gives {value!r}, the Python loop {expected!r}")
        steps = LOOP_PREAMBLE + LOOP_TRIP * n + LOOP_EXIT
        if counted_program.steps != steps:
            fail(f"loop on Double: counted {counted_program.steps} steps, expected {steps}")
        b = Bench("(b) loop, Double", n, "trip")
        calls = 10 if self.quick else 2
        b.add("interp", lambda: compiled(1, c, n), calls, warmup=1)
        b.add("interp, counted", lambda: counted(1, c, n), calls, warmup=1)
        limited_program = Program(module, self.backend, max_steps=MAX_STEPS)
        limited = limited_program.function("@loop")
        if limited_program.call_compiled(limited, (c, n)) != expected:
            fail("loop on Double: the run with --max-steps gives a different result")
        b.add("interp, --max-steps", lambda: limited_program.call_compiled(limited, (c, n)), calls, warmup=1)
        b.add("python", lambda: py_loop(c, n), calls, warmup=1)
        self.benches.append(b)
        self.profiled["loop"] = lambda: compiled(1, c, n)
        return b

    def loop_float(self) -> Bench:
        module = checked_module(loop_text("Float"), "loop on Float")
        program = Program(module, self.backend)
        compiled = program.function("@loop")
        c, n = np.float32(LOOP_C), self.trips
        expected = py_loop_f32(c, n)
        value = compiled(1, c, n)
        if not same_bits(value, expected):
            fail(f"loop on Float: compiled gives {value!r}, the float32 Python loop {expected!r}")
        if program.run("@loop", c, n) != float(expected):
            fail("loop on Float: program.run differs from the float32 Python loop")
        b = Bench("(c) loop, Float", n, "trip")
        calls = 10 if self.quick else 2
        b.add("interp", lambda: compiled(1, c, n), calls, warmup=1)
        b.add("python f32", lambda: py_loop_f32(c, n), calls, warmup=1)
        b.add("python", lambda: py_loop(LOOP_C, n), calls, warmup=1)
        self.benches.append(b)
        self.profiled["loop-float"] = lambda: compiled(1, c, n)
        return b

    def mlp(self, width: int) -> Bench:
        module = checked_module(mlp_text(), f"MLP width {width}")
        program = Program(module, self.backend)
        compiled = program.function("@mlp")
        host = mlp_inputs(width)
        args = [self.backend.from_host(a, np.float32) for a in host]
        expected = numpy_mlp(*host)
        results = {"compiled": compiled(1, *args), "program.run": program.run("@mlp", *host)}
        for what, value in results.items():
            got = self.backend.to_host(value)
            if got.dtype != np.float32 or got.shape != (BATCH, IO_WIDTH):
                fail(f"MLP width {width}: {what} gives a {got.dtype} array of shape {got.shape}")
            if not np.allclose(got, expected, rtol=1e-5, atol=1e-5):
                fail(f"MLP width {width}: {what} differs from hand-written NumPy")
        flops = 2 * BATCH * (IO_WIDTH * width + width * width + width * IO_WIDTH)
        b = Bench(f"(d) MLP, width {width}", 1, "pass")
        b.flops = flops
        calls = 1 if self.quick else (5 if width >= 1024 else 20)
        b.add("interp", lambda: compiled(1, *args), calls)
        b.add("numpy", lambda: numpy_mlp(*args), calls)
        b.add("program.run", lambda: program.run("@mlp", *args), calls)
        self.benches.append(b)
        if width == max(HIDDEN_WIDTHS):
            self.profiled["mlp"] = lambda: [compiled(1, *args) for _ in range(2 if self.quick else 20)]
        return b


# --- reporting ---------------------------------------------------------------------------------------


def report(setup: Setup, quick: bool) -> dict[str, Any]:
    """The medians per variant, the ratios against the targets, and the cost of compiling."""

    def flops(b: Bench, variant: str) -> str:
        if b.flops and variant != "program.run":
            return f", {b.flops / b.median(variant) / 1e9:,.1f} GFLOP/s"
        return ""

    common.print_medians(
        "Median time per call (and per unit of work), over rounds:", setup.benches, 18, extra=flops
    )
    summary = common.print_ratios(
        "Ratios, ours / baseline: the median over rounds of the ratio within a round, and its quartiles",
        ratio_figures(setup),
        44,
        13,
    )
    straight, compiling = setup.a, setup.a_compile
    compile_s = compiling.median("compile")
    print()
    print(
        f"Compiling the {straight.unit:,}-instruction function (Program + program.function) takes "
        f"{compile_s * 1e3:,.0f} ms ({compile_s / straight.unit * 1e6:,.1f} µs/instr); CPython's compile() "
        f"of the plain-Python function takes {compiling.median('python compile') * 1e3:,.0f} ms."
    )
    if quick:
        print("A --quick smoke run: too small and short to judge the targets.")
    return summary


def ratio_figures(setup: Setup) -> list[Figure]:
    """Each figure: ours, the baseline it is set against, and the target where there is one."""
    straight, loop, loop_f, compiling = setup.a, setup.b, setup.c, setup.a_compile
    pairs: list[tuple[str, Bench, str, Bench, str, float | None]] = [
        ("(a) straight-line / plain Python", straight, "interp", straight, "python", TARGET_STRAIGHT),
        ("(b) loop trip, Double / Python while", loop, "interp", loop, "python", TARGET_LOOP),
        ("(c) loop trip, Float / Python on float32", loop_f, "interp", loop_f, "python f32", None),
        ("(c) loop trip, Float / Python on float", loop_f, "interp", loop_f, "python", None),
    ]
    for b in setup.d:
        width = b.name.rsplit(" ", 1)[1]
        target = TARGET_MLP if b is setup.d[-1] else None
        pairs.append((f"(d) MLP {width} / hand NumPy", b, "interp", b, "numpy", target))
        pairs.append((f"(d) MLP {width}, program.run / hand NumPy", b, "program.run", b, "numpy", None))
    for what, variant in (("counting steps", "interp, counted"), ("--max-steps", "interp, --max-steps")):
        for shape, b in (("straight", straight), ("loop", loop)):
            pairs.append((f"(e) {what}, {shape}", b, variant, b, "interp", TARGET_COUNTING))
    pairs += [
        ("compile first call / one run, (a)", compiling, "compile", straight, "interp", None),
        ("CPython compile() / one run, (a)", compiling, "python compile", straight, "python", None),
    ]
    return [Figure(name, ratios((o, ov), (b, bv)), target) for name, o, ov, b, bv, target in pairs]


def main(argv: list[str] | None = None) -> int:
    ap = common.argument_parser(
        __doc__,
        quick="10^4-trip loops, one repetition: a smoke run",
        reps="timed rounds (default 9; 1 with --quick)",
        profile=("straight", "loop", "loop-float", "mlp"),
        profile_help="instead of timing, run one workload on the interpreter under cProfile",
    )
    args = ap.parse_args(argv)
    backend = select_backend("numpy")
    reps = args.reps or (1 if args.quick else 9)
    info = common.machine(numpy=np.__version__, backend=backend.describe())
    started = time.perf_counter()
    setup = Setup(args.quick, backend)
    if args.profile:
        common.print_profile(setup.profiled[args.profile], args.profile)
        return 0
    common.header("interp_bench", info, ("NumPy", "backend"), f"{reps} round(s)", args.quick)
    ready = time.perf_counter() - started
    print(f"  generated, compiled and checked {len(setup.benches)} workloads in {ready:.1f} s")
    measure(setup.benches, reps)
    summary = report(setup, args.quick)
    print(f"\nTotal {time.perf_counter() - started:.1f} s.")
    doc = {"machine": info, "reps": reps, "quick": args.quick}
    common.write_json(args.json, {**doc, "workloads": common.benches_json(setup.benches), "ratios": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
