"""Cost of reading every element of a tensor once, differentiated: the pullback must stay O(n).

Run from the repository root (or anywhere; it imports the checkout it lives in)::

    python3 benchmarks/element_bench.py           # the full run (about a minute on 2 cores)
    python3 benchmarks/element_bench.py --quick   # a smoke run: one round, fewer calls (~5 s)

The workload (issue 14, item 4) is a SIL loop reading each element of an n-element
``Tensor<Double>`` once with ``element`` and summing the squares; its gradient (``gradient [wrt 0]``,
lowered by ``-lower-gradient``: VJP and pullback, run through ``Program.call_compiled`` as ``silopt
--run`` calls it) is timed at n = 10^3, 10^4 and 10^5 on the NumPy backend. The pullback of each read
adds its adjoint at one element, ``with_element(adj, element(adj, i) + seed, i)``, and the
interpreter writes that in place where nothing else holds the tensor (``interp/ownership.py``): the
time per element should not grow with n. Beside it, in the same rounds: hand-written Python doing
the same work element by element (a forward loop over the NumPy array, then a reverse loop adding
``2 * x[i]`` into ``g[i]``), and, at 10^3 and 10^4 only (it is quadratic), the same gradient on a
backend whose ``owns_buffer`` is False, so that every ``with_element`` copies its tensor: what the
in-place path buys. Before anything is timed, every gradient is checked against ``2 * x`` (and the
primal against a Python sum, bit for bit), the caller's tensor must be left as it was, and counting
backends confirm that the in-place program copies nothing while the other copies at every read.
``benchmarks/README.md`` explains the figures and records results.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import common  # first: it puts this checkout on sys.path
import numpy as np
from common import Bench, Figure, checked_module, fail, ratios

from accel import Backend, select_backend
from accel.numpy_backend import NumpyBackend
from interp import Program
from sil import Module, verify_module
from sil.diagnostics import SILError

TARGET_FLAT = 1.3  # gradient time per element at n / at SIZES[0] (issue 14, item 4)
SIZES = (1_000, 10_000, 100_000)
COPYING_SIZES = (1_000, 10_000)  # without copy-on-write the pullback is O(n^2): the small sizes only
ELEMENTS_PER_SAMPLE, ELEMENTS_PER_SAMPLE_QUICK = 100_000, 10_000  # calls per sample: this many elements
REL_GRADIENT = 1e-12  # the gradient against 2 * x (the pullback computes e + e: exact, in fact)
SEED = 14

T = "Tensor<Double>"
FN = f"$@convention(thin) ({T}) -> Double"
GRAD_FN = f"$@convention(thin) ({T}) -> {T}"
GRADIENT = "@AD__f__grad_src_0_wrt_0"

SUM_OF_SQUARES = f"""sil_stage canonical

sil [differentiable source 0 wrt 0] @f : {FN} {{
bb0(%x : ${T}):
  %zero = integer_literal $Int, 0
  %n = builtin "dim"(%x : ${T}, %zero : $Int) : $Int
  %z = float_literal $Double, 0.0
  br bb1(%zero : $Int, %z : $Double)
bb1(%i : $Int, %acc : $Double):
  %c = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %c, bb2, bb3
bb2:
  %e = builtin "element"(%x : ${T}, %i : $Int) : $Double
  %sq = builtin "fmul"(%e : $Double, %e : $Double) : $Double
  %next = builtin "fadd"(%acc : $Double, %sq : $Double) : $Double
  %one = integer_literal $Int, 1
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%j : $Int, %next : $Double)
bb3:
  return %acc : $Double
}}

sil @request : {GRAD_FN} {{
bb0(%x : ${T}):
  %f = function_ref @f : {FN}
  %g = gradient [wrt 0] %f : {FN}
  %r = apply %g(%x) : {GRAD_FN}
  return %r : ${T}
}}
"""
"""``@f(x)``: the sum of ``x[i] * x[i]`` over ``i``, each element read once with ``element`` (the
workload of tests/interp/test_ownership.py); ``@request`` asks for its gradient."""


# --- the backends --------------------------------------------------------------------------------
class NoCopyOnWrite(NumpyBackend):
    """NumPy, claiming no tensor owns its buffer: every ``with_element`` copies, as before
    copy-on-write (and as it must wherever another value can see the tensor)."""

    def owns_buffer(self, a: Any) -> bool:
        return False


class Counting(NumpyBackend):
    """NumPy counting ``with_element``'s copies and in-place writes (a copy writes into its new
    tensor in place: that write is not counted again), with or without copy-on-write."""

    def __init__(self, copy_on_write: bool) -> None:
        super().__init__()
        self.copy_on_write = copy_on_write
        self.copies = self.writes = 0

    @property
    def in_place(self) -> int:
        return self.writes - self.copies

    def owns_buffer(self, a: Any) -> bool:
        return self.copy_on_write and super().owns_buffer(a)

    def with_element(self, a: Any, value: Any, *indices: int) -> Any:
        self.copies += 1
        return super().with_element(a, value, *indices)

    def with_element_in_place(self, a: Any, value: Any, *indices: int) -> Any:
        self.writes += 1
        return super().with_element_in_place(a, value, *indices)


# --- the baseline ----------------------------------------------------------------------------------
def python_gradient(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The same gradient written by hand, element by element: a forward loop over the NumPy array
    summing the squares, then a reverse loop adding ``2 * x[i]`` into ``g[i]``."""
    n = len(x)
    acc = 0.0
    for i in range(n):
        e = x[i]
        acc += e * e
    g = np.zeros(n)
    for i in reversed(range(n)):
        g[i] += 2.0 * x[i]
    return g


def python_sum_of_squares(x: np.ndarray[Any, Any]) -> float:
    """The primal in the interpreter's order, on Python floats."""
    acc = 0.0
    for e in x.tolist():
        acc += e * e
    return acc


# --- checking --------------------------------------------------------------------------------------
def differentiated() -> Module:
    """The module parsed, verified, differentiated and lowered; it must verify after."""
    module = checked_module(SUM_OF_SQUARES, "sum of squares")
    try:
        common.pass_manager("differentiation", "lower-gradient").run(module)
    except SILError as e:
        fail(f"sum of squares: differentiation failed: {e.diagnostics[0].message}")
    diagnostics = verify_module(module)
    if diagnostics:
        fail(f"sum of squares: the differentiated module does not verify: {diagnostics[0].message}")
    return module


def inputs(n: int) -> np.ndarray[Any, Any]:
    return np.random.default_rng(SEED).standard_normal(n)


def check_gradient(what: str, gradient: Callable[[np.ndarray[Any, Any]], Any], n: int) -> float:
    """``gradient`` at ``n`` elements against ``2 * x``, the caller's array left as it was; the
    largest relative difference."""
    x = inputs(n)
    before = x.copy()
    got = np.asarray(gradient(x))
    if not np.array_equal(x, before):
        fail(f"{what}, n = {n:,}: the gradient wrote into the caller's tensor")
    want = 2.0 * x
    if got.shape != want.shape or got.dtype != np.float64:
        fail(f"{what}, n = {n:,}: the gradient is a {got.dtype} array of shape {got.shape}, not ({n},)")
    error = float(np.max(np.abs(got - want) / np.maximum(np.abs(want), np.finfo(float).tiny)))
    if not error <= REL_GRADIENT:
        fail(f"{what}, n = {n:,}: the gradient differs from 2 * x by {error:.1e} (relative)")
    return error


def check_copies(module: Module, n: int) -> None:
    """With copy-on-write the gradient copies no tensor and writes each element's adjoint in place;
    without it, every read's adjoint copies the tensor."""
    for copy_on_write, want in ((True, (0, n)), (False, (n, 0))):
        backend = Counting(copy_on_write)
        program = Program(module, backend)
        program.call_compiled(program.function(GRADIENT), [inputs(n)])
        if (backend.copies, backend.in_place) != want:
            fail(
                f"n = {n:,}, copy-on-write {'on' if copy_on_write else 'off'}: with_element copied "
                f"{backend.copies} times and wrote {backend.in_place} times in place, expected {want}"
            )


def calling(program: Program, fn: Any) -> Callable[[np.ndarray[Any, Any]], Any]:
    """A compiled function of one tensor, called as ``silopt --run`` calls it."""
    return lambda x: program.call_compiled(fn, [x])


# --- the workloads, checked and ready to time -------------------------------------------------------
class Setup:
    """The module differentiated, both programs compiled, every size checked, a bench per size."""

    def __init__(self, quick: bool, backend: Backend) -> None:
        module = differentiated()
        program = Program(module, backend)
        copying = Program(module, NoCopyOnWrite())
        primal, grad = program.function("@f"), program.function(GRADIENT)
        copying_grad = copying.function(GRADIENT)
        check_copies(module, SIZES[0])
        per_sample = ELEMENTS_PER_SAMPLE_QUICK if quick else ELEMENTS_PER_SAMPLE
        self.errors: dict[str, float] = {}
        self.benches: list[Bench] = []
        self.profiled: dict[str, Callable[[], object]] = {}  # what --profile runs, by variant
        for n in SIZES:
            x = inputs(n)
            if program.call_compiled(primal, [x]) != python_sum_of_squares(x):
                fail(f"n = {n:,}: the primal differs from the Python sum of the squares")
            variants: dict[str, Callable[[np.ndarray[Any, Any]], Any]] = {
                "interp gradient": calling(program, grad),
                "hand Python": python_gradient,
            }
            if n in COPYING_SIZES:
                variants["interp gradient, no COW"] = calling(copying, copying_grad)
            b = Bench(f"n = {n:,}", n, "element")
            for variant, fn in variants.items():
                self.errors[f"{b.name}: {variant}"] = check_gradient(variant, fn, n)
                b.add(variant, partial(fn, x), max(1, per_sample // n), warmup=1 if quick else 2)
            self.benches.append(b)
        self.small = self.benches[0]
        self.profiled["gradient"] = self.bench(SIZES[-1]).variants["interp gradient"][0]
        self.profiled["python"] = self.bench(SIZES[-1]).variants["hand Python"][0]
        self.profiled["no-cow"] = self.bench(COPYING_SIZES[-1]).variants["interp gradient, no COW"][0]

    def bench(self, n: int) -> Bench:
        """The bench of ``n`` elements."""
        return next(b for b in self.benches if b.unit == n)


# --- measuring and reporting -----------------------------------------------------------------------
def measure(benches: list[Bench], reps: int) -> list[float]:
    """Warm every variant up, then time ``reps`` rounds (``common.time_round``); each round first
    times a bare CPython loop, how fast the machine runs Python at the moment. Returns those."""
    common.warm_up(benches)
    loop_ns: list[float] = []

    def one_round(i: int) -> str:
        loop_ns.append(common.bare_loop_ns())
        common.time_round(benches, i)
        return f", bare loop {loop_ns[-1]:.0f} ns"

    common.rounds(reps, one_round)
    return loop_ns


def short(n: int) -> str:
    return f"{n // 1000}k"


def per_element_scaling(setup: Setup, variant: str, n: int) -> list[float]:
    """Time per element at ``n`` over the time per element at the smallest size, round by round."""
    small = setup.small
    return [r * small.unit / n for r in ratios((setup.bench(n), variant), (small, variant))]


def figures(setup: Setup) -> list[Figure]:
    """Flatness (judged), the hand-written Python's and the copying gradient's, then ours over
    each baseline at each size."""
    small = setup.small.unit
    found = []
    for variant, label, target, sizes in (
        ("interp gradient", "gradient", TARGET_FLAT, SIZES),
        ("hand Python", "hand Python", None, SIZES),
        ("interp gradient, no COW", "gradient, no COW", None, COPYING_SIZES),
    ):
        for n in sizes[1:]:
            name = f"µs/element {short(n)} / {short(small)}: {label}"
            found.append(Figure(name, per_element_scaling(setup, variant, n), target))
    for b in setup.benches:
        found.append(
            Figure(
                f"n = {short(b.unit)}: gradient / hand Python",
                ratios((b, "interp gradient"), (b, "hand Python")),
            )
        )
    for b in setup.benches:
        if "interp gradient, no COW" in b.variants:
            ours = ratios((b, "interp gradient"), (b, "interp gradient, no COW"))
            found.append(Figure(f"n = {short(b.unit)}: gradient / no COW", ours))
    return found


def print_per_element(setup: Setup) -> None:
    """Each variant's median time per element, by size."""
    names = list(setup.benches[0].variants)
    print()
    print("Median time per element (µs), over rounds:")
    print(f"  {'n':>9}" + "".join(f" {name:>24}" for name in names))
    for b in setup.benches:
        cells = [
            f"{b.median(name) / b.unit * 1e6:>24.3f}" if name in b.variants else f"{'-':>24}"
            for name in names
        ]
        print(f"  {b.unit:>9,}" + "".join(f" {cell}" for cell in cells))


def report(setup: Setup, quick: bool) -> dict[str, Any]:
    print_per_element(setup)
    worst = max(setup.errors.values())
    agree = "equals 2 * x bit for bit" if worst == 0 else f"lies within {worst:.0e} (relative) of 2 * x"
    print()
    print(f"Checks: every gradient {agree}; the caller's tensor is left as it was; at n = {SIZES[0]:,},")
    print("    with copy-on-write no with_element copies, without it every one does.")
    summary = common.print_ratios(
        "Ratios: the median over rounds of the ratio within a round, and its quartiles",
        figures(setup),
        40,
        11,
    )
    if quick:
        print("A --quick smoke run: too small and short to judge the targets.")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = common.argument_parser(
        __doc__,
        quick="one round, samples of 10^4 elements: a smoke run",
        reps="timed rounds (default 9; 1 with --quick)",
        profile=("gradient", "no-cow", "python"),
        profile_help="instead of timing, run one variant under cProfile: the gradient at 10^5 elements, "
        "the gradient without copy-on-write at 10^4, or the hand-written Python at 10^5",
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
    common.header("element_bench", info, ("NumPy", "backend"), f"{reps} round(s)", args.quick)
    print(
        f"  differentiated, compiled and checked {len(SIZES)} sizes in {time.perf_counter() - started:.1f} s"
    )
    loop_ns = measure(setup.benches, reps)
    summary = report(setup, args.quick)
    print(f"\nTotal {time.perf_counter() - started:.1f} s.")
    doc = {"machine": info, "reps": reps, "quick": args.quick, "bare_loop_ns": statistics.median(loop_ns)}
    doc |= {
        "gradient_errors": setup.errors,
        "workloads": common.benches_json(setup.benches),
        "ratios": summary,
    }
    common.write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
