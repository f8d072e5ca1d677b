"""Cost of the gradients ``-differentiation`` synthesizes, and of the pass itself.

Run from the repository root (or anywhere; it imports the checkout it lives in)::

    python3 benchmarks/ad_bench.py           # the full run (70-90 s on 2 cores, half of it (c))
    python3 benchmarks/ad_bench.py --quick   # a smoke run: (c) up to 4k, one repetition

Workloads, each written in SIL by this script (deterministically), parsed, verified, differentiated
(``-differentiation``, ``-lower-gradient``) and run on the NumPy backend: (a) the gradient of
``(Double, Double) -> Double`` functions over the same function's primal, on the interpreter, next to
the same ratio for a generated plain-Python function with a hand-written reverse sweep: a
straight-line function of 1k instructions, a chain of 100 small functions each calling the next,
and a function applying 10 small helpers in sequence, ten times over; (b) the gradient of a 3-layer
tanh MLP's mean squared error (batch 128, widths 256 and 1024, Float, the biases tensors of shape
(width,) broadcast along the batch) by every weight and bias, against hand-written NumPy forward and
backward passes in the same run, and its peak memory (tracemalloc, which NumPy reports its buffers
to) against theirs; and torch (CPU, eager) and JAX (``jit`` and not) where installed (a line says
which are not); (c) the ``-differentiation`` pass itself on
straight-line functions of 1k to 64k instructions: time per instruction and the size of the
checkpoints record it builds, both of which should grow linearly; and on functions of 2k to 50k
blocks (if/else diamonds in sequence): time per block, which should too; (d) the gradient of a loop of
100,000 trips with a small scalar body (``v = sin(v) * 0.5 + x``) over its primal, next to a
hand-written Python loop with a tape, and the memory the VJP's records keep per trip at 1k, 10k and
100k trips (tracemalloc), which should not grow with the trip count; (e) a gradient called in a SIL
loop: ``gradient [wrt 0, 1]`` of a chain of 100 links (``s = sin(p); m = s * y; p = m + p``), called
20,000 times with its result fed back, over the same loop calling the primal, per call (the difference
between two trip counts), next to plain Python's loops around a taped forward pass and a reverse
sweep, and around the primal. Every workload is checked before
it is timed: the primal runs agree bit for bit with plain Python, and the interpreter's gradients
agree with the hand-written ones (relative 1e-9), with the generator's own forward-mode derivatives
(1e-9) and with central finite differences (1e-5). Variants are timed round-robin, and each ratio is
the median over rounds of the ratio within a round. ``benchmarks/README.md`` explains the figures
and records results.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import math
import multiprocessing
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import common  # first: it puts this checkout on sys.path
import numpy as np
from common import Bench, Figure, checked_module, fail, ratios
from common import pass_manager as passes

from accel import Backend, select_backend
from interp import Program
from sil import Module, parse, print_module, verify_module
from sil.diagnostics import SILError
from sil.ir import StructDecl

# Targets for the 2-core reference machine (issue 4, item 7; see README.md).
TARGET_GRADIENT = 3.0  # interpreter: gradient time / primal time (the cheap-gradient principle)
TARGET_MLP = 1.05  # MLP loss gradient at width 1024 / hand-written NumPy forward and backward (issue 14)
TARGET_MLP_MEMORY = 1.2  # its peak memory at width 1024 / hand-written NumPy's (issue 14, item 5)
TARGET_LINEAR = 1.5  # -differentiation at 64k / at 1k: time per instruction, record fields per instruction
TARGET_LOOP = 4.0  # (d) loop gradient / primal (issue 5, item 7); records' bytes per trip: TARGET_LINEAR
TARGET_CALLED = 3.0  # (e) a gradient called in a loop, per call / the primal per call (issue 12, item 8)

ARGS = (0.75, -1.25)  # where every scalar function is generated, checked and timed
FN = "$@convention(thin) (Double, Double) -> Double"
GRAD_FN = "$@convention(thin) (Double, Double) -> (Double, Double)"
STRAIGHT_N = 1_000  # (a) instructions, the return included
CHAIN_DEPTH, CHAIN_PRE, CHAIN_POST, CHAIN_LEAF = 100, 4, 4, 8  # (a) c0 calls c1 ... calls c99
HELPERS, HELPER_N, SEQUENCE_LAPS = 10, 8, 10  # (a) h0 .. h9 applied in turn, SEQUENCE_LAPS times
PASS_SIZES, PASS_SIZES_QUICK = (1_000, 4_000, 16_000, 64_000), (1_000, 4_000)  # (c)
BLOCK_SIZES, BLOCK_SIZES_QUICK = (2_000, 4_000, 8_000, 50_000), (2_000, 4_000)  # (c) blocks
RUN_CHECK_LIMIT = 4_000  # (c) sizes up to this are also lowered, run and checked against Python
BATCH, IO_WIDTH, HIDDEN_WIDTHS = 128, 256, (256, 1024)  # (b)
LOOP_X, LOOP_TRIPS, LOOP_MEMORY_TRIPS = 0.5, 100_000, (1_000, 10_000, 100_000)  # (d)
# (e): links of the chain, where the loop starts, and its two trip counts (the difference is timed)
CALLED_LINKS, CALLED_START, CALLED_TRIPS, CALLED_TRIPS_QUICK = 100, (0.5, 0.02), (2_000, 22_000), (500, 2_500)

VALUE_BOUND = (1e-6, 1e3)  # a kept value's magnitude lies within these
DERIVATIVE_BOUND = 1e3  # and its derivatives by the function's parameters at most this
WINDOW = 6  # an operand is forced when it has gone unused for this many values
REL_EXACT, REL_FD = 1e-9, 1e-5  # gradient checks: against reverse/forward sweeps, finite differences
FD_STEP = 1e-6  # relative step of the fourth-order central difference


# --- (a), (c) scalar functions, generated with their derivatives ---------------------------------
class Op(NamedTuple):
    """A differentiable builtin on Double: its value and partial derivatives, the operands kept
    (well away from poles, overflow and domain edges), the plain-Python expression, and each
    operand's hand-written adjoint contribution (``{g}`` is the result's adjoint, ``{r}`` the
    result, ``{0}``/``{1}`` the operands; a leading ``-`` subtracts)."""

    evaluate: Callable[..., tuple[float, tuple[float, ...]]]
    allowed: Callable[..., bool]
    python: str
    adjoints: tuple[str, ...]


def _any(*_: float) -> bool:
    return True


def _pow(a: float, b: float) -> tuple[float, tuple[float, ...]]:
    r = math.pow(a, b)
    return r, (b * math.pow(a, b - 1.0), r * math.log(a))


OPS: dict[str, Op] = {
    "fadd": Op(lambda a, b: (a + b, (1.0, 1.0)), _any, "{0} + {1}", ("{g}", "{g}")),
    "fsub": Op(lambda a, b: (a - b, (1.0, -1.0)), _any, "{0} - {1}", ("{g}", "-{g}")),
    "fmul": Op(lambda a, b: (a * b, (b, a)), _any, "{0} * {1}", ("{g} * {1}", "{g} * {0}")),
    "fdiv": Op(
        lambda a, b: (a / b, (1.0 / b, -a / (b * b))),
        lambda a, b: abs(b) >= 1e-2,
        "{0} / {1}",
        ("{g} / {1}", "-{g} * {r} / {1}"),
    ),
    "pow": Op(
        _pow,
        lambda a, b: 0.1 <= a <= 10.0 and abs(b) <= 3.0,
        "pow({0}, {1})",
        ("{g} * {1} * pow({0}, {1} - 1.0)", "{g} * {r} * log({0})"),
    ),
    "fneg": Op(lambda a: (-a, (-1.0,)), _any, "-{0}", ("-{g}",)),
    "exp": Op(lambda a: (math.exp(a), (math.exp(a),)), lambda a: a <= 6.0, "exp({0})", ("{g} * {r}",)),
    "log": Op(lambda a: (math.log(a), (1.0 / a,)), lambda a: a >= 1e-2, "log({0})", ("{g} / {0}",)),
    "sin": Op(lambda a: (math.sin(a), (math.cos(a),)), _any, "sin({0})", ("{g} * cos({0})",)),
    "cos": Op(lambda a: (math.cos(a), (-math.sin(a),)), _any, "cos({0})", ("-{g} * sin({0})",)),
    "tanh": Op(
        lambda a: (math.tanh(a), (1.0 - math.tanh(a) ** 2,)),
        _any,
        "tanh({0})",
        ("{g} * (1.0 - {r} * {r})",),
    ),
    "sqrt": Op(
        lambda a: (math.sqrt(a), (0.5 / math.sqrt(a),)),
        lambda a: a >= 1e-2,
        "sqrt({0})",
        ("{g} * 0.5 / {r}",),
    ),
}
# Builtins drawn, weighted towards the four arithmetic operations (as in interp_bench.py). Helpers
# applied many times are checked on a grid of arguments, not at each call, so they use only
# builtins defined everywhere, whose values cannot blow up between the grid's points.
BINARY = ("fadd",) * 4 + ("fmul",) * 4 + ("fsub",) * 3 + ("fdiv",) * 2 + ("pow",)
UNARY = ("sin", "cos", "exp", "log", "tanh", "sqrt", "fneg")
SMOOTH_BINARY = ("fadd",) * 4 + ("fmul",) * 4 + ("fsub",) * 3
SMOOTH_UNARY = ("sin", "cos", "exp", "tanh", "fneg")
LITERALS = (1.5, -0.25, 3.0, 2.718281828459045, 0.5, -7.25, 0.1, 42.0)
HELPER_CONTEXTS = [(s / 8, p) for s in range(-16, 17) for p in ARGS]  # a helper's (s, p): s in [-2, 2]
PY_GLOBALS = {
    name: getattr(math, name) for name in ("sin", "cos", "exp", "log", "tanh", "sqrt", "pow")
}  # as `from math import sin, ...` gives them


def _bounded(x: float) -> bool:
    """Whether a value keeps the function well away from overflow, NaN and subnormals, and is not
    an exact 0 (``x - x``), past which a derivative could vanish."""
    return VALUE_BOUND[0] <= abs(x) <= VALUE_BOUND[1]


class Step(NamedTuple):
    """One instruction: a builtin of ``OPS``, ``literal`` (``payload`` is its value) or ``call``
    (``payload`` is the callee, applied to the two operands)."""

    op: str
    result: int
    operands: tuple[int, ...]
    payload: Any = None


class ScalarFunction:
    """A generated function ``(Double, Double) -> Double`` with no control flow, in SIL and in plain
    Python (the primal, and a hand-written VJP and pullback).

    Each value is evaluated as it is generated on a few argument pairs (``contexts``), with its
    derivatives by the two parameters (forward mode), and an instruction is kept only when its
    value and derivatives stay bounded on every context, so no inf, NaN, domain error or division
    by a tiny value occurs and the gradient is well conditioned. Every value is used: an operand
    that has gone unused for ``WINDOW`` values is forced into the next instruction, and whatever is
    left unused at the end is added into the result, so that no code is dead (dead code would be
    left out of the VJP and flatter the gradient)."""

    def __init__(
        self,
        name: str,
        rng: random.Random,
        contexts: Sequence[tuple[float, float]],
        binary: Sequence[str] = BINARY,
        unary: Sequence[str] = UNARY,
    ) -> None:
        self.name = name
        self.rng = rng
        self.binary, self.unary = binary, unary
        k = len(contexts)
        self.values: list[list[float]] = [[c[0] for c in contexts], [c[1] for c in contexts]]
        self.derivatives: list[list[tuple[float, float]]] = [[(1.0, 0.0)] * k, [(0.0, 1.0)] * k]
        self.varied = [True, True]  # depends on the parameters
        self.unused: dict[int, None] = {0: None, 1: None}  # in order of definition
        self.steps: list[Step] = []
        self.instructions = 1  # the return
        self.result = 1

    # --- generating ----------------------------------------------------------------------------
    def _recent(self) -> int:
        """Mostly one of the last few values, sometimes any earlier one."""
        count = len(self.values)
        if self.rng.random() < 0.9:
            return count - 1 - min(int(self.rng.expovariate(0.35)), count - 1)
        return self.rng.randrange(count)

    def _first_operand(self) -> int:
        """The oldest value unused for ``WINDOW`` values, else a recent one."""
        oldest = next(iter(self.unused), None)
        if oldest is not None and oldest < len(self.values) - WINDOW:
            return oldest
        return self._recent()

    def _add(self, step: Step, values: list[float], derivatives: list[tuple[float, float]]) -> None:
        self.steps.append(step)
        self.values.append(values)
        self.derivatives.append(derivatives)
        self.varied.append(step.op != "literal" and any(self.varied[i] for i in step.operands))
        for i in step.operands:
            self.unused.pop(i, None)
        self.unused[step.result] = None
        self.instructions += 2 if step.op == "call" else 1

    def literal(self, value: float) -> int:
        r = len(self.values)
        k = len(self.values[0])
        self._add(Step("literal", r, (), value), [value] * k, [(0.0, 0.0)] * k)
        return r

    def builtin(self, name: str, operands: tuple[int, ...], check: bool = True) -> bool:
        """Add ``name`` applied to ``operands`` if (``check``) it stays bounded on every context."""
        op = OPS[name]
        values, derivatives = [], []
        for c in range(len(self.values[0])):
            args = [self.values[i][c] for i in operands]
            if check and not op.allowed(*args):
                return False
            value, partials = op.evaluate(*args)
            dx = sum(p * self.derivatives[i][c][0] for p, i in zip(partials, operands))
            dy = sum(p * self.derivatives[i][c][1] for p, i in zip(partials, operands))
            if check and not (
                _bounded(value) and abs(dx) <= DERIVATIVE_BOUND and abs(dy) <= DERIVATIVE_BOUND
            ):
                return False
            values.append(value)
            derivatives.append((dx, dy))
        self._add(Step(name, len(self.values), operands), values, derivatives)
        return True

    def call(self, callee: ScalarFunction, a: int, b: int) -> int:
        values, derivatives = [], []
        for c in range(len(self.values[0])):
            value, (pa, pb) = callee.evaluate(self.values[a][c], self.values[b][c])
            da, db = self.derivatives[a][c], self.derivatives[b][c]
            values.append(value)
            derivatives.append((pa * da[0] + pb * db[0], pa * da[1] + pb * db[1]))
        r = len(self.values)
        self._add(Step("call", r, (a, b), callee), values, derivatives)
        return r

    def call_operands(self) -> tuple[int, int]:
        """Two varied values to pass to a call: the latest, and the oldest unused or a recent one."""
        varied = [i for i, v in enumerate(self.varied) if v]
        u = varied[-1]
        unused = [i for i in self.unused if self.varied[i] and i != u]
        if unused:
            return u, unused[0]
        choices = varied[-WINDOW:-1] or varied
        return u, self.rng.choice(choices)

    def grow(self, count: int) -> None:
        """Add ``count`` instructions: ~10% literals, ~62% binary builtins, ~28% unary ones."""
        for _ in range(count):
            for _ in range(20):  # tries for an instruction whose result stays bounded
                roll = self.rng.random()
                if roll < 0.10:
                    self.literal(self.rng.choice(LITERALS))
                    break
                operands: tuple[int, ...]
                if roll < 0.72:
                    name = self.rng.choice(self.binary)
                    operands = (self._first_operand(), self._recent())
                else:
                    name = self.rng.choice(self.unary)
                    operands = (self._first_operand(),)
                if self.builtin(name, operands):
                    break
            else:
                self.builtin("fneg", (self._first_operand(),), check=False)

    def finish(self, squash: bool = False) -> None:
        """Add what is still unused into the last value; ``squash``: then map it into [-2, 2]."""
        last = len(self.values) - 1
        for i in [i for i in self.unused if i != last]:
            self.builtin("fadd", (len(self.values) - 1, i), check=False)
        if squash:
            self.builtin("sin", (len(self.values) - 1,), check=False)
            two = self.literal(2.0)
            self.builtin("fmul", (two - 1, two), check=False)
        self.result = len(self.values) - 1

    def evaluate(self, x: float, y: float) -> tuple[float, tuple[float, float]]:
        """The value and the gradient at ``(x, y)``, in forward mode."""
        values: list[float] = [x, y]
        derivatives: list[tuple[float, float]] = [(1.0, 0.0), (0.0, 1.0)]
        for step in self.steps:
            if step.op == "literal":
                values.append(step.payload)
                derivatives.append((0.0, 0.0))
                continue
            args = [values[i] for i in step.operands]
            if step.op == "call":
                value, partials = step.payload.evaluate(*args)
            else:
                value, partials = OPS[step.op].evaluate(*args)
            values.append(value)
            derivatives.append(
                (
                    sum(p * derivatives[i][0] for p, i in zip(partials, step.operands)),
                    sum(p * derivatives[i][1] for p, i in zip(partials, step.operands)),
                )
            )
        return values[self.result], derivatives[self.result]

    def dynamic_instructions(self) -> int:
        """Instructions one call executes, its callees' included."""
        callees: list[ScalarFunction] = [s.payload for s in self.steps if s.op == "call"]
        return self.instructions + sum(callee.dynamic_instructions() for callee in callees)

    # --- SIL -----------------------------------------------------------------------------------
    def sil(self) -> list[str]:
        lines = [f"sil @{self.name} : {FN} {{", "bb0(%0 : $Double, %1 : $Double):"]
        for s in self.steps:
            r, ops = s.result, s.operands
            if s.op == "literal":
                lines.append(f"  %{r} = float_literal $Double, {s.payload!r}")
            elif s.op == "call":
                lines.append(f"  %f{r} = function_ref @{s.payload.name} : {FN}")
                lines.append(f"  %{r} = apply %f{r}(%{ops[0]}, %{ops[1]}) : {FN}")
            else:
                typed = ", ".join(f"%{i} : $Double" for i in ops)
                lines.append(f'  %{r} = builtin "{s.op}"({typed}) : $Double')
        lines += [f"  return %{self.result} : $Double", "}", ""]
        return lines

    # --- plain Python: the primal, and the same function differentiated by hand -----------------
    def _forward(self, taped: bool) -> list[str]:
        """The primal's statements; ``taped``: a call runs the callee's VJP and keeps its tape."""
        lines = []
        for s in self.steps:
            r, ops = s.result, s.operands
            if s.op == "literal":
                lines.append(f"    v{r} = {s.payload!r}")
            elif s.op == "call":
                args = f"v{ops[0]}, v{ops[1]}"
                callee = s.payload.name
                lines.append(
                    f"    v{r}, t{r} = {callee}_vjp({args})" if taped else f"    v{r} = {callee}({args})"
                )
            else:
                lines.append(f"    v{r} = " + OPS[s.op].python.format(*(f"v{i}" for i in ops)))
        return lines

    def _reverse(self) -> tuple[list[str], list[str]]:
        """The reverse sweep from ``g<result>``, accumulating only into varied values, and the
        names of the primal values and tapes it reads."""
        lines: list[str] = []
        reads: dict[str, None] = {}
        assigned = {self.result}

        def accumulate(i: int, term: str) -> None:
            negate = term.startswith("-")
            term = term.removeprefix("-")
            if i in assigned:
                lines.append(f"    g{i} {'-=' if negate else '+='} {term}")
            else:
                lines.append(f"    g{i} = {'-' if negate else ''}{term}")
                assigned.add(i)

        for s in reversed(self.steps):
            r, ops = s.result, s.operands
            if not self.varied[r] or r not in assigned:
                continue
            wanted = [i for i in ops if self.varied[i]]
            if s.op == "call":
                reads[f"t{r}"] = None
                call = f"{s.payload.name}_pb(g{r}, t{r})"
                a, b = ops
                if a != b and a not in assigned and b not in assigned:
                    lines.append(f"    g{a}, g{b} = {call}")
                    assigned.update(ops)
                else:
                    lines.append(f"    q{r}, w{r} = {call}")
                    accumulate(a, f"q{r}")
                    accumulate(b, f"w{r}")
                continue
            names = [f"v{i}" for i in ops]
            for k, i in enumerate(ops):
                if i not in wanted:
                    continue
                template = OPS[s.op].adjoints[k]
                for key, name in [*enumerate(names), ("r", f"v{r}")]:
                    if f"{{{key}}}" in template:
                        reads[name] = None
                accumulate(i, template.format(*names, g=f"g{r}", r=f"v{r}"))
        params = [f"g{i}" if i in assigned else "0.0" for i in (0, 1)]
        lines.append(f"    return {params[0]}, {params[1]}")
        return lines, list(reads)

    def python(self) -> str:
        """``name(v0, v1)``, the primal; ``name_vjp`` returning the value and a tape of what
        ``name_pb(seed, tape)`` reads; and ``name_grad(v0, v1)``, the value computed and then the
        gradient by reverse accumulation, in one function."""
        forward, taped = self._forward(False), self._forward(True)
        reverse, reads = self._reverse()
        tape = f"({', '.join(reads)},)" if reads else "()"
        n, r = self.name, self.result
        source = [f"def {n}(v0, v1):", *forward, f"    return v{r}", ""]
        source += [f"def {n}_vjp(v0, v1):", *taped, f"    return v{r}, {tape}", ""]
        source += [f"def {n}_pb(g{r}, tape):"]
        if reads:
            source.append(f"    {', '.join(reads)}, = tape")
        source += [*reverse, ""]
        source += [f"def {n}_grad(v0, v1):", *taped, f"    g{r} = 1.0", *reverse, ""]
        return "\n".join(source)


def straight_line(n: int, seed: int = 7) -> list[ScalarFunction]:
    """One function of about ``n`` instructions, the return included (one more, at times: the
    values left unused at the end are added in)."""
    f = ScalarFunction("f", random.Random(seed), [ARGS])
    while f.instructions + len(f.unused) - 1 < n:
        f.grow(1)
    f.finish()
    return [f]


def call_chain(seed: int = 8) -> list[ScalarFunction]:
    """``c0`` … ``c99``: each computes a few values from its arguments, passes two of them to the
    next, and computes a few more with what it returns; the last calls nothing."""
    rng = random.Random(seed)
    functions: list[ScalarFunction] = []

    def make(i: int, context: tuple[float, float]) -> ScalarFunction:
        f = ScalarFunction(f"c{i}", rng, [context])
        functions.append(f)
        if i == CHAIN_DEPTH - 1:
            f.grow(CHAIN_LEAF)
        else:
            f.grow(CHAIN_PRE)
            u, v = f.call_operands()
            callee = make(i + 1, (f.values[u][0], f.values[v][0]))
            f.call(callee, u, v)
            f.grow(CHAIN_POST)
        f.finish()
        return f

    make(0, ARGS)
    return functions


def helper_sequence(seed: int = 9) -> list[ScalarFunction]:
    """``seq(x, y)``: ``s = h_k(s, y or x)`` for the helpers ``h0`` … ``h9`` in turn, ten times over
    (100 calls), starting from ``s = x``. Each helper is checked on a grid of ``s`` in [-2, 2] and
    ends in ``2 sin(…)``, so that whatever ``s`` it is given lies on that grid's span (``tanh``
    would saturate, and derivatives vanish)."""
    rng = random.Random(seed)
    helpers = []
    for k in range(HELPERS):
        h = ScalarFunction(f"h{k}", rng, HELPER_CONTEXTS, SMOOTH_BINARY, SMOOTH_UNARY)
        h.grow(HELPER_N)
        h.finish(squash=True)
        helpers.append(h)
    seq = ScalarFunction("seq", rng, [ARGS])
    s = 0
    for k in range(HELPERS * SEQUENCE_LAPS):
        s = seq.call(helpers[k % HELPERS], s, 1 if k % 2 == 0 else 0)
    seq.finish()
    return [seq, *helpers]


def request_sil(
    top: str,
    fn: str = FN,
    params: Sequence[tuple[str, str]] = (("x", "Double"), ("y", "Double")),
    wrt: Sequence[int] = (0, 1),
    result: str = "(Double, Double)",
) -> list[str]:
    """``@request``: it applies the gradient of ``@top`` (of type ``fn``, whose parameters are
    ``params``: name and type) by the parameters ``wrt`` to its own, and returns it (``result``)."""
    grad_fn = f"$@convention(thin) ({', '.join(t for _, t in params)}) -> {result}"
    return [
        f"sil @request : {grad_fn} {{",
        f"bb0({', '.join(f'%{name} : ${t}' for name, t in params)}):",
        f"  %f = function_ref @{top} : {fn}",
        f"  %g = gradient [wrt {', '.join(map(str, wrt))}] %f : {fn}",
        f"  %r = apply %g({', '.join(f'%{name}' for name, _ in params)}) : {grad_fn}",
        f"  return %r : ${result}",
        "}",
        "",
    ]


def module_text(functions: list[ScalarFunction]) -> str:
    """The functions (the first is the one differentiated) and ``@request``."""
    lines = ["sil_stage canonical", ""]
    for f in functions:
        lines += f.sil()
    return "\n".join(lines + request_sil(functions[0].name))


def python_namespace(functions: list[ScalarFunction], what: str) -> dict[str, Any]:
    namespace: dict[str, Any] = dict(PY_GLOBALS)
    source = "\n".join(f.python() for f in functions)
    exec(compile(source, f"<plain Python: {what}>", "exec"), namespace)
    return namespace


# --- (c) a function of many blocks ---------------------------------------------------------------------
def branching_text(blocks: int) -> tuple[str, int]:
    """``@f(x, y)``: ``v = x``, then if/else diamonds in sequence, each ``v = 0.5 sin(v) + 0.25 y``
    on one side and ``v = 0.5 cos(v) + 0.25 sin(x)`` on the other, taken by ``v < ±10`` in turn (so
    both sides run, far from their kinks); and ``@request``. About ``blocks`` blocks (each diamond
    adds three); returns the text and the count of blocks."""
    n = diamonds(blocks)
    lines = [
        "sil_stage canonical",
        "",
        f"sil @f : {FN} {{",
        "bb0(%x : $Double, %y : $Double):",
        "  %half = float_literal $Double, 0.5",
        "  %quarter = float_literal $Double, 0.25",
        '  %sx = builtin "sin"(%x : $Double) : $Double',
        '  %xq = builtin "fmul"(%sx : $Double, %quarter : $Double) : $Double',
        '  %yq = builtin "fmul"(%y : $Double, %quarter : $Double) : $Double',
        "  br j0(%x : $Double)",
    ]
    for i in range(n):
        lines += [
            f"j{i}(%v{i} : $Double):",
            f"  %c{i} = float_literal $Double, {BRANCH_BOUNDS[i % 2]}",
            f'  %p{i} = builtin "fcmp_olt"(%v{i} : $Double, %c{i} : $Double) : $Bool',
            f"  cond_br %p{i}, t{i}, e{i}",
            f"t{i}:",
            f'  %s{i} = builtin "sin"(%v{i} : $Double) : $Double',
            f'  %a{i} = builtin "fmul"(%s{i} : $Double, %half : $Double) : $Double',
            f'  %b{i} = builtin "fadd"(%a{i} : $Double, %yq : $Double) : $Double',
            f"  br j{i + 1}(%b{i} : $Double)",
            f"e{i}:",
            f'  %k{i} = builtin "cos"(%v{i} : $Double) : $Double',
            f'  %m{i} = builtin "fmul"(%k{i} : $Double, %half : $Double) : $Double',
            f'  %n{i} = builtin "fadd"(%m{i} : $Double, %xq : $Double) : $Double',
            f"  br j{i + 1}(%n{i} : $Double)",
        ]
    lines += [f"j{n}(%r : $Double):", "  return %r : $Double", "}", ""]
    return "\n".join(lines + request_sil("f")), 3 * n + 2


BRANCH_BOUNDS = (10.0, -10.0)  # diamond i takes its first side when v < BRANCH_BOUNDS[i % 2]


def diamonds(blocks: int) -> int:
    """How many diamonds make about ``blocks`` blocks: the entry, then a join and two sides each."""
    return max(1, round((blocks - 2) / 3))


def branching_python(x: float, y: float, blocks: int) -> tuple[float, tuple[float, float]]:
    """``@f`` of ``branching_text`` in plain Python, and its gradient in forward mode."""
    n = diamonds(blocks)
    xq, yq = math.sin(x) * 0.25, y * 0.25
    v, dx, dy = x, 1.0, 0.0
    for i in range(n):
        if v < BRANCH_BOUNDS[i % 2]:
            slope = math.cos(v) * 0.5
            v, dx, dy = math.sin(v) * 0.5 + yq, slope * dx, slope * dy + 0.25
        else:
            slope = -math.sin(v) * 0.5
            v, dx, dy = math.cos(v) * 0.5 + xq, slope * dx + 0.25 * math.cos(x), slope * dy
    return v, (dx, dy)


def branching_value(x: float, y: float, blocks: int) -> float:
    """``@f`` of ``branching_text`` in plain Python."""
    return branching_python(x, y, blocks)[0]


# --- (b) an MLP's loss ---------------------------------------------------------------------------------
MLP_PARAMS = ("x", "t", "w1", "b1", "w2", "b2", "w3", "b3")
MLP_WRT = tuple(range(2, len(MLP_PARAMS)))  # the weights and biases


def mlp_text() -> str:
    """``mean((tanh(tanh(x W1 + b1) W2 + b2) W3 + b3 - t)^2)``: two tanh hidden layers, a linear
    output layer, the biases broadcast along the batch, and ``@request`` asking for its gradient by
    the weights and biases. Tensor types carry no shape: one module serves every width."""
    t = "$Tensor<Float>"
    lines, h, fn_type = common.mlp_sil("loss", MLP_PARAMS, "Float")
    grads = f"({', '.join(['Tensor<Float>'] * len(MLP_WRT))})"
    lines += [
        f'  %d = builtin "fsub"({h} : {t}, %t : {t}) : {t}',
        f'  %sq = builtin "fmul"(%d : {t}, %d : {t}) : {t}',
        f'  %l = builtin "mean"(%sq : {t}) : $Float',
        "  return %l : $Float",
        "}",
        "",
    ]
    params = [(p, "Tensor<Float>") for p in MLP_PARAMS]
    return "\n".join(lines + request_sil("loss", fn_type, params, MLP_WRT, grads))


def mlp_inputs(width: int, seed: int = 4, batch: int = BATCH) -> list[np.ndarray[Any, Any]]:
    """The batch and its targets, then each layer's weights (scaled by 1/sqrt(fan-in)) and bias."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((batch, IO_WIDTH)), rng.standard_normal((batch, IO_WIDTH))]
    for fan_in, fan_out in ((IO_WIDTH, width), (width, width), (width, IO_WIDTH)):
        arrays.append(rng.standard_normal((fan_in, fan_out)) / math.sqrt(fan_in))
        arrays.append(0.1 * rng.standard_normal(fan_out))
    return [a.astype(np.float32) for a in arrays]


def numpy_loss(x: Any, t: Any, w1: Any, b1: Any, w2: Any, b2: Any, w3: Any, b3: Any) -> Any:
    """The loss alone, written by hand in NumPy."""
    h = np.tanh(x @ w1 + b1)
    h = np.tanh(h @ w2 + b2)
    d = h @ w3 + b3 - t
    return np.mean(d * d)


def numpy_loss_and_grad(
    x: Any, t: Any, w1: Any, b1: Any, w2: Any, b2: Any, w3: Any, b3: Any
) -> tuple[Any, tuple[Any, ...]]:
    """The loss and its gradient by the weights and biases: forward and backward by hand."""
    return hand_loss_and_grad(np, x, t, w1, b1, w2, b2, w3, b3)


def hand_loss_and_grad(
    xp: Any, x: Any, t: Any, w1: Any, b1: Any, w2: Any, b2: Any, w3: Any, b3: Any
) -> tuple[Any, tuple[Any, ...]]:
    """``numpy_loss_and_grad`` written against ``xp``, NumPy or CuPy (``benchmarks/gpu_mlp.py``)."""
    h1 = xp.tanh(x @ w1 + b1)
    h2 = xp.tanh(h1 @ w2 + b2)
    d = h2 @ w3 + b3 - t
    loss = xp.mean(d * d)
    gy = d * d.dtype.type(2.0 / d.size)
    gw3, gb3 = h2.T @ gy, gy.sum(axis=0)
    g2 = (gy @ w3.T) * (1 - h2 * h2)
    gw2, gb2 = h1.T @ g2, g2.sum(axis=0)
    g1 = (g2 @ w2.T) * (1 - h1 * h1)
    gw1, gb1 = x.T @ g1, g1.sum(axis=0)
    return loss, (gw1, gb1, gw2, gb2, gw3, gb3)


def torch_loss_and_grad(torch: Any) -> Callable[..., tuple[Any, tuple[Any, ...]]]:
    """The same loss in torch, differentiated by ``loss.backward()`` (CPU, float32)."""

    def run(x: Any, t: Any, *params: Any) -> tuple[Any, tuple[Any, ...]]:
        for p in params:
            p.grad = None
        w1, b1, w2, b2, w3, b3 = params
        h = torch.tanh(x @ w1 + b1)
        h = torch.tanh(h @ w2 + b2)
        d = h @ w3 + b3 - t
        loss = torch.mean(d * d)
        loss.backward()
        return loss, tuple(p.grad for p in params)

    return run


JAX_VARIANTS = {"jax jit value_and_grad": True, "jax value_and_grad, no jit": False}


def jax_loss_and_grad(jax: Any, jit: bool) -> Callable[..., tuple[Any, tuple[Any, ...]]]:
    """The same loss in JAX, ``jax.value_and_grad(...)`` by the weights and biases, compiled by
    ``jax.jit`` or run op by op."""
    jnp = jax.numpy

    def loss(params: tuple[Any, ...], x: Any, t: Any) -> Any:
        w1, b1, w2, b2, w3, b3 = params
        h = jnp.tanh(x @ w1 + b1)
        h = jnp.tanh(h @ w2 + b2)
        d = h @ w3 + b3 - t
        return jnp.mean(d * d)

    value_and_grad = jax.value_and_grad(loss)
    compiled = jax.jit(value_and_grad) if jit else value_and_grad

    def run(x: Any, t: Any, *params: Any) -> tuple[Any, tuple[Any, ...]]:
        value, grads = compiled(params, x, t)
        jax.block_until_ready(grads)
        return value, tuple(grads)

    return run


LOOP_TEXT = """
sil [differentiable source 0 wrt 0] @loop : $@convention(thin) (Double, Int) -> Double {
bb0(%x : $Double, %n : $Int):
  %zero = integer_literal $Int, 0
  %step = integer_literal $Int, 1
  %half = float_literal $Double, 0.5
  br bb1(%zero : $Int, %x : $Double)
bb1(%i : $Int, %v : $Double):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3
bb2:
  %s = builtin "sin"(%v : $Double) : $Double
  %m = builtin "fmul"(%s : $Double, %half : $Double) : $Double
  %w = builtin "fadd"(%m : $Double, %x : $Double) : $Double
  %j = builtin "add"(%i : $Int, %step : $Int) : $Int
  br bb1(%j : $Int, %w : $Double)
bb3:
  return %v : $Double
}

""" + "\n".join(
    request_sil(
        "loop", "$@convention(thin) (Double, Int) -> Double", (("x", "Double"), ("n", "Int")), (0,), "Double"
    )
)
"""(d): ``v = x``, then ``n`` times ``v = sin(v) * 0.5 + x``; and a request for its gradient."""


def python_loop(x: float, n: int) -> float:
    v = x
    for _ in range(n):
        v = math.sin(v) * 0.5 + x
    return v


def python_loop_grad(x: float, n: int) -> float:
    """The loop's derivative by ``x``, by hand: a forward sweep keeping each trip's ``v`` on a
    tape, then a reverse sweep."""
    tape = []
    v = x
    for _ in range(n):
        tape.append(v)
        v = math.sin(v) * 0.5 + x
    dv, dx = 1.0, 0.0
    for v in reversed(tape):
        dx += dv
        dv = dv * 0.5 * math.cos(v)
    return dx + dv


def python_loop_forward(x: float, n: int) -> float:
    """The same derivative in forward mode (the tangent of ``v`` carried along)."""
    v, dv = x, 1.0
    for _ in range(n):
        v, dv = math.sin(v) * 0.5 + x, math.cos(v) * 0.5 * dv + 1.0
    return dv


def sine_chain(links: int = CALLED_LINKS) -> ScalarFunction:
    """(e): ``@f(x, y)``, ``p = x`` then ``links`` times ``s = sin(p); m = s * y; p = m + p``.
    With ``y`` about 0.02 each link moves ``p`` by at most ``y``, so the gradient stays within
    e^±2 whatever ``x``: well conditioned, and no value runs off."""
    f = ScalarFunction("f", random.Random(0), [CALLED_START])
    p = 0
    for _ in range(links):
        f.builtin("sin", (p,), check=False)
        f.builtin("fmul", (len(f.values) - 1, 1), check=False)
        f.builtin("fadd", (len(f.values) - 1, p), check=False)
        p = len(f.values) - 1
    f.unused.clear()
    f.result = p
    return f


def called_loop_sil(f: ScalarFunction) -> str:
    """(e): ``@f``, and two loops of ``n`` trips feeding their result back: ``@grad_loop`` calls
    ``gradient [wrt 0, 1]`` of ``@f`` and takes ``x = sin(dx) * 0.5 + 1``, ``y = cos(dy) * 0.01 +
    0.02``; ``@primal_loop`` calls ``@f`` and takes the same of ``r = f(x, y)``, ``r``."""
    lines = ["sil_stage canonical", "", *f.sil()]
    for name, grad in (("grad_loop", True), ("primal_loop", False)):
        if grad:
            call = [
                f"  %r = apply %g(%x, %y) : {GRAD_FN}",
                "  (%a, %b) = destructure_tuple %r : $(Double, Double)",
            ]
            b = "%b"
        else:
            call, b = [f"  %a = apply %f(%x, %y) : {FN}"], "%a"
        lines += [
            f"sil @{name} : $@convention(thin) (Double, Double, Int) -> (Double, Double) {{",
            "bb0(%x0 : $Double, %y0 : $Double, %n : $Int):",
            f"  %f = function_ref @f : {FN}",
            *([f"  %g = gradient [wrt 0, 1] %f : {FN}"] if grad else []),
            "  %zero = integer_literal $Int, 0",
            "  %one = integer_literal $Int, 1",
            "  %c1 = float_literal $Double, 1.0",
            "  %c05 = float_literal $Double, 0.5",
            "  %c002 = float_literal $Double, 0.02",
            "  %c001 = float_literal $Double, 0.01",
            "  br bb1(%zero : $Int, %x0 : $Double, %y0 : $Double)",
            "bb1(%i : $Int, %x : $Double, %y : $Double):",
            '  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool',
            "  cond_br %more, bb2, bb3",
            "bb2:",
            *call,
            '  %sa = builtin "sin"(%a : $Double) : $Double',
            '  %ha = builtin "fmul"(%sa : $Double, %c05 : $Double) : $Double',
            '  %x1 = builtin "fadd"(%ha : $Double, %c1 : $Double) : $Double',
            f'  %cb = builtin "cos"({b} : $Double) : $Double',
            '  %hb = builtin "fmul"(%cb : $Double, %c001 : $Double) : $Double',
            '  %y1 = builtin "fadd"(%hb : $Double, %c002 : $Double) : $Double',
            '  %j = builtin "add"(%i : $Int, %one : $Int) : $Int',
            "  br bb1(%j : $Int, %x1 : $Double, %y1 : $Double)",
            "bb3:",
            "  %out = tuple (%x : $Double, %y : $Double)",
            "  return %out : $(Double, Double)",
            "}",
            "",
        ]
    return "\n".join(lines)


def called_loops_python(namespace: dict[str, Any]) -> dict[str, Callable[[float, float, int], Any]]:
    """(e) in plain Python: the same loops around ``f``, around ``f_vjp`` and ``f_pb`` (a forward
    pass keeping a tape, and a reverse sweep reading it), and around ``f_grad`` (both sweeps in
    one function, values in locals: no tape)."""
    f, f_vjp, f_pb, f_grad = (namespace[k] for k in ("f", "f_vjp", "f_pb", "f_grad"))
    sin, cos = math.sin, math.cos

    def primal_loop(x: float, y: float, n: int) -> tuple[float, float]:
        for _ in range(n):
            r = f(x, y)
            x, y = sin(r) * 0.5 + 1.0, cos(r) * 0.01 + 0.02
        return x, y

    def taped_loop(x: float, y: float, n: int) -> tuple[float, float]:
        for _ in range(n):
            dx, dy = f_pb(1.0, f_vjp(x, y)[1])
            x, y = sin(dx) * 0.5 + 1.0, cos(dy) * 0.01 + 0.02
        return x, y

    def grad_loop(x: float, y: float, n: int) -> tuple[float, float]:
        for _ in range(n):
            dx, dy = f_grad(x, y)
            x, y = sin(dx) * 0.5 + 1.0, cos(dy) * 0.01 + 0.02
        return x, y

    return {"primal": primal_loop, "taped": taped_loop, "grad": grad_loop}


def gc_paused(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` with the cyclic GC paused, as ``Program.call_compiled`` runs the interpreter."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return fn(*args)
    finally:
        if collecting:
            gc.enable()


def peak_bytes(fn: Callable[[], object]) -> int:
    """The most memory ``fn()`` holds at once beyond what was allocated before, its result
    included, as tracemalloc sees it (NumPy reports its array buffers to it). Called once before,
    so that what a first call builds and keeps (compiled code, caches) is not counted."""
    fn()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del result
    finally:
        tracemalloc.stop()
    return peak - before


def optional_module(name: str) -> Any:
    """``name`` imported, or None when it is not installed."""
    with contextlib.suppress(ImportError):
        return importlib.import_module(name)
    return None


# --- checking ----------------------------------------------------------------------------------------


def differentiated(text: str, name: str) -> Module:
    """The module parsed, verified, differentiated and lowered; it must verify after."""
    module = checked_module(text, name)
    try:
        passes("differentiation", "lower-gradient").run(module)
    except SILError as e:
        fail(f"{name}: differentiation failed: {e.diagnostics[0].message}")
    diagnostics = verify_module(module)
    if diagnostics:
        fail(f"{name}: the differentiated module does not verify: {diagnostics[0].message}")
    return module


def close(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b))


def central_difference(fn: Callable[[float, float], float], x: float, y: float) -> tuple[float, float]:
    """The gradient by fourth-order central differences, a step of ``FD_STEP`` times the argument."""

    def along(f: Callable[[float], float], at: float) -> float:
        h = FD_STEP * max(1.0, abs(at))
        return (8 * (f(at + h) - f(at - h)) - (f(at + 2 * h) - f(at - 2 * h))) / (12 * h)

    return along(lambda u: fn(u, y), x), along(lambda v: fn(x, v), y)


# --- measuring ---------------------------------------------------------------------------------------


def record_name(function: str) -> str:
    """The checkpoints record of ``function``'s entry block, differentiated by both parameters."""
    return f"_AD__{function}_bb0__PB__src_0_wrt_0_1"


def pass_child(conn: Any, text: str, name: str, verify: bool, repeat: int, output: bool = False) -> None:
    """In a fresh process: parse ``text`` and run ``-differentiation`` on it, ``repeat`` times.
    Sends ``("parsed", seconds)`` when the first pass starts; then ``(the pass's seconds, the
    parse's seconds, fields of the checkpoints record, the pass's diagnostic or None, the output's
    seconds or None)``, the medians of the runs, where the output is what ``silopt`` does after the
    pass (``verify_module`` and ``print_module``), timed when ``output``; then, if ``verify``, the
    verifier's first diagnostic or None. The parent ends a pass or a verification that runs too
    long."""
    warm = parse(module_text(straight_line(50)))  # first-call costs, outside the timing
    passes("differentiation").run(warm)
    clock = time.perf_counter
    parse_s, pass_s, output_s = [], [], []
    fields: set[int] = set()
    for i in range(repeat):
        gc.collect()
        start = clock()
        module = parse(text, name)
        parse_s.append(clock() - start)
        if i == 0:
            conn.send(("parsed", parse_s[0]))
        pm = passes("differentiation")
        gc.collect()
        start = clock()
        try:
            pm.run(module)
        except SILError as e:
            conn.send((clock() - start, parse_s[0], 0, e.diagnostics[0].message, None))
            return
        pass_s.append(clock() - start)
        if output:
            start = clock()
            verify_module(module)
            print_module(module)
            output_s.append(clock() - start)
        record = module.types.get(record_name("f"))
        fields.add(len(record.fields) if isinstance(record, StructDecl) else 0)
    problem = None
    if fields == {0}:
        problem = "no checkpoints record was added"
    elif len(fields) > 1:
        problem = "the checkpoints record differs from one run to the next"
    output_median = statistics.median(output_s) if output_s else None
    conn.send((statistics.median(pass_s), statistics.median(parse_s), max(fields), problem, output_median))
    if verify and problem is None:
        diagnostics = verify_module(module)
        conn.send(diagnostics[0].message if diagnostics else None)


class PassRun(NamedTuple):
    pass_s: float | None  # None: still running after the time limit, and ended
    parse_s: float
    fields: int
    problem: str | None  # the pass's or the verifier's first diagnostic
    verified: bool  # verify_module finished (within the limit) and found nothing
    output_s: float | None = None  # verify_module and print_module after the pass, when timed


def run_pass(
    text: str, name: str, verify: bool, limit: float, repeat: int = 1, output: bool = False
) -> PassRun:
    """``pass_child`` in a fresh interpreter (so every size starts from the same heap), ended if
    its passes, or the verification, run longer than ``limit`` seconds each."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=pass_child, args=(sender, text, name, verify, repeat, output), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(120):
            fail(f"{name}: the child process did not start the pass within 120 s")
        _, parse_s = receiver.recv()
        if not receiver.poll(limit * repeat):
            return PassRun(None, parse_s, 0, None, False)
        pass_s, parse_s, fields, problem, output_s = receiver.recv()
        if not verify or problem is not None or not receiver.poll(limit):
            return PassRun(pass_s, parse_s, fields, problem, False, output_s)
        problem = receiver.recv()
        return PassRun(pass_s, parse_s, fields, problem, problem is None, output_s)
    finally:
        if child.is_alive():  # ours: still running, or tearing down a large heap we do not need
            child.terminate()
        child.join()


class PassBench:
    """(c): ``-differentiation`` on a fresh parse of each size's module, in a fresh process per size
    per round (a pass shorter than 0.2 s: the median of 5 in that process); the parse is timed too
    (a linear algorithm: what its time per unit does with size shows what the machine's caches do
    to larger inputs). ``make`` writes the module of a size and counts its units (instructions of
    a straight-line function, blocks of a branching one)."""

    def __init__(
        self,
        label: str,
        unit: str,
        sizes: Sequence[int],
        limit: float,
        make: Callable[[int], tuple[str, int]],
        output: bool = False,
    ) -> None:
        self.label = label
        self.output = output  # also time what silopt does after the pass: verify and print
        self.unit = unit
        self.limit = limit
        self.texts: dict[int, str] = {}
        self.units: dict[int, int] = {}
        self.fields: dict[int, int] = {}
        self.check_s: dict[int, float | None] = {}  # the checking run's pass time
        self.sizes: list[int] = []  # those whose pass finished within the limit
        self.timed_out: list[int] = []
        self.unverified: list[int] = []  # verify_module was still running after the limit
        self.samples: dict[tuple[int, str], list[float]] = {}
        for n in sizes:
            self.texts[n], self.units[n] = make(n)

    def time_round(self) -> None:
        for n in self.sizes:
            checked = self.check_s[n] or 0.0
            limit = max(self.limit, 2 * checked)  # ended only if far slower than it was
            repeat = 5 if checked < 0.2 else 1  # a short pass: the median of a few, against noise
            run = run_pass(self.texts[n], f"{self.label} {n}", False, limit, repeat, self.output)
            if run.pass_s is None or run.fields != self.fields[n] or run.problem:
                fail(f"(c) {n}: a timed run differs from the checking run: {run}")
            self.samples.setdefault((n, "pass"), []).append(run.pass_s)
            self.samples.setdefault((n, "parse"), []).append(run.parse_s)
            if run.output_s is not None:
                self.samples.setdefault((n, "output"), []).append(run.output_s)

    def per_unit(self, n: int, what: str) -> float:
        return statistics.median(self.samples[(n, what)]) / self.units[n]

    def scaling(self, what: str, large: int) -> list[float]:
        """Time per unit at ``large`` / at the smallest size, round by round."""
        small = self.sizes[0]
        ns, nl = self.units[small], self.units[large]
        return [
            (tl / nl) / (ts / ns) for tl, ts in zip(self.samples[(large, what)], self.samples[(small, what)])
        ]


def measure(benches: list[Bench], pass_benches: list[PassBench], reps: int, pass_reps: int) -> None:
    """Warm every variant up, then time ``reps`` rounds of (a), (b), (d) and (e)
    (``common.time_round``: one workload's variants interleaved call by call, their order flipped
    every other round), and ``pass_reps`` rounds of (c) (each of its runs starts a process, and the
    largest take seconds)."""
    common.warm_up(benches)

    def one_round(i: int) -> str:
        if i < reps:
            common.time_round(benches, i)
        if i < pass_reps:
            for pass_bench in pass_benches:
                pass_bench.time_round()
        return ""

    common.rounds(max(reps, pass_reps), one_round)


# --- the workloads, checked and ready to time -------------------------------------------------------
class Scalar:
    """(a): one workload's bench, and what its checks found."""

    def __init__(self, bench: Bench, errors: dict[str, float], steps_ratio: float) -> None:
        self.bench = bench
        self.errors = errors  # the largest relative difference from the interpreter's gradient, by reference
        self.steps_ratio = steps_ratio  # instructions a gradient runs / instructions the primal runs


class MLP:
    """(b): the differentiator's answer, and a bench per width."""

    def __init__(self) -> None:
        self.blocked: list[str] = []  # the diagnostics, when -differentiation rejects the loss
        self.benches: list[Bench] = []
        self.missing: dict[str, str] = {}  # optional baselines not timed, and why
        self.peak_bytes: dict[int, dict[str, int]] = {}  # by width: tracemalloc's peak, by variant


class Loop:
    """(d): the bench, and the bytes the VJP's records keep per trip, by trip count."""

    def __init__(self, bench: Bench, bytes_per_trip: dict[int, float]) -> None:
        self.bench = bench
        self.bytes_per_trip = bytes_per_trip


class Called:
    """(e): both loops, ours and plain Python's, each timed at two trip counts; what the checks
    found; and the instructions a gradient call runs over a primal call's."""

    VARIANTS = ("interp gradient", "interp primal", "python tape", "python no tape", "python primal")

    def __init__(
        self, bench: Bench, trips: tuple[int, int], errors: dict[str, float], steps_ratio: float
    ) -> None:
        self.bench = bench
        self.trips = trips
        self.errors = errors
        self.steps_ratio = steps_ratio

    @staticmethod
    def variant(name: str, trips: int) -> str:
        return f"{name}, {trips:,} calls"

    def per_call(self, name: str) -> list[float]:
        """Seconds per call, round by round: the difference between the two trip counts' times
        over the difference of the counts, so that what a run costs once (the call from Python,
        the conversions, the loop's set-up) cancels."""
        short, long = self.trips
        samples = self.bench.samples
        return [
            (b - a) / (long - short)
            for a, b in zip(samples[self.variant(name, short)], samples[self.variant(name, long)])
        ]

    def ratio(self, ours: str, baseline: str) -> list[float]:
        return [a / b for a, b in zip(self.per_call(ours), self.per_call(baseline))]


class Setup:
    """Every workload generated, verified, differentiated, compiled and checked, ready to time."""

    def __init__(self, quick: bool, backend: Backend, pass_limit: float) -> None:
        self.quick = quick
        self.backend = backend
        self.benches: list[Bench] = []
        self.profiled: dict[str, Callable[[], object]] = {}  # what --profile runs, by workload
        self.a = [
            self.scalar("straight", "(a) straight-line 1k", straight_line(STRAIGHT_N)),
            self.scalar("chain", "(a) chain of 100 calls", call_chain()),
            self.scalar("sequence", "(a) 10 helpers x 10 calls", helper_sequence()),
        ]
        self.b = self.mlp()
        self.c = self.pass_bench(PASS_SIZES_QUICK if quick else PASS_SIZES, pass_limit)
        self.c_blocks = self.blocks_bench(BLOCK_SIZES_QUICK if quick else BLOCK_SIZES, pass_limit)
        self.d = self.loop()
        self.e = self.called()

    def scalar(self, key: str, label: str, functions: list[ScalarFunction]) -> Scalar:
        top = functions[0]
        module = differentiated(module_text(functions), label)
        program = Program(module, self.backend)
        primal = program.function(f"@{top.name}")
        grad = program.function(f"@AD__{top.name}__grad_src_0_wrt_0_1")
        namespace = python_namespace(functions, label)
        py_primal, py_grad = namespace[top.name], namespace[f"{top.name}_grad"]
        x, y = ARGS
        value = py_primal(x, y)
        forward_value, forward = top.evaluate(x, y)
        for what, got in {
            "the generator": forward_value,
            "the interpreter": primal(1, x, y),
            "program.run": program.run(f"@{top.name}", x, y),
        }.items():
            if not (
                math.isfinite(value) and got == value and math.copysign(1, got) == math.copysign(1, value)
            ):
                fail(f"{label}: {what} computes {got!r}, plain Python {value!r}")
        got = grad(1, x, y)
        if program.run("@request", x, y) != got:
            fail(f"{label}: @request and the compiled gradient function differ")
        _, tape = namespace[f"{top.name}_vjp"](x, y)
        if namespace[f"{top.name}_pb"](1.0, tape) != py_grad(x, y):
            fail(f"{label}: the hand-written VJP and pullback differ from the hand-written gradient")
        errors = {}
        references = {
            "hand-written reverse": (py_grad(x, y), REL_EXACT),
            "forward mode": (forward, REL_EXACT),
            "finite differences": (central_difference(py_primal, x, y), REL_FD),
        }
        for what, (want, rel) in references.items():
            for k in (0, 1):
                if not (abs(got[k]) >= 1e-6 and close(got[k], want[k], rel)):
                    fail(f"{label}: d/d%{k} is {got[k]!r} in the interpreter, {want[k]!r} by {what}")
            errors[what] = max(abs(got[k] - want[k]) / max(abs(got[k]), abs(want[k])) for k in (0, 1))
        steps = {}
        for what, fn in (("primal", f"@{top.name}"), ("gradient", f"@AD__{top.name}__grad_src_0_wrt_0_1")):
            counted = Program(module, self.backend, count_steps=True)
            counted.run(fn, x, y)
            steps[what] = int(counted.steps or 0)
        expected = top.dynamic_instructions()
        if steps["primal"] != expected:
            fail(f"{label}: the primal ran {steps['primal']} instructions, {expected} expected")
        b = Bench(label, expected, "instr")
        calls = 20 if self.quick else 100
        b.add("interp gradient", lambda: grad(1, x, y), calls)
        b.add("interp primal", lambda: primal(1, x, y), calls)
        b.add("python gradient", lambda: py_grad(x, y), calls)
        b.add("python primal", lambda: py_primal(x, y), calls)
        self.benches.append(b)
        self.profiled[key] = lambda: [grad(1, x, y) for _ in range(50 if self.quick else 500)]
        return Scalar(b, errors, steps["gradient"] / steps["primal"])

    def mlp(self) -> MLP:
        result = MLP()
        module = checked_module(mlp_text(), "MLP loss")
        try:
            passes("differentiation", "lower-gradient").run(module)
        except SILError as e:
            result.blocked = [d.message for d in e.diagnostics]
        grad = None
        if not result.blocked:
            diagnostics = verify_module(module)
            if diagnostics:
                fail(f"MLP loss: the differentiated module does not verify: {diagnostics[0].message}")
            program = Program(module, self.backend)
            grad = program.function(f"@AD__loss__grad_src_0_wrt_{'_'.join(map(str, MLP_WRT))}")
        torch, jax = optional_module("torch"), optional_module("jax")
        for name, found in (("torch", torch), ("jax", jax)):
            if found is None:
                result.missing[name] = "not installed"
        for width in HIDDEN_WIDTHS:
            host = mlp_inputs(width)
            _, want = numpy_loss_and_grad(*host)
            check_numpy_gradient(host, want, width)
            b = Bench(f"(b) MLP loss gradient, width {width}", 1, "step")
            calls = 1 if self.quick else (5 if width >= 1024 else 20)
            if grad is not None:
                args = [self.backend.from_host(a, np.float32) for a in host]
                got = [self.backend.to_host(g) for g in grad(1, *args)]
                check_arrays(f"MLP width {width}: the interpreter's gradient", got, want)
                b.add("interp gradient", partial(grad, 1, *args), calls)
                result.peak_bytes[width] = {
                    "interp gradient": peak_bytes(partial(grad, 1, *args)),
                    "numpy fwd+bwd": peak_bytes(partial(numpy_loss_and_grad, *host)),
                }
                if width == max(HIDDEN_WIDTHS):
                    self.profiled["mlp"] = partial(grad, 1, *args)
            b.add("numpy fwd+bwd", partial(numpy_loss_and_grad, *host), calls)
            b.add("numpy forward", partial(numpy_loss, *host), calls)
            if torch is not None:
                run_torch = torch_loss_and_grad(torch)
                inputs = [torch.from_numpy(a) for a in host[:2]]
                params = [torch.from_numpy(a.copy()).requires_grad_() for a in host[2:]]
                _, grads = run_torch(*inputs, *params)
                check_arrays(f"MLP width {width}: torch", [g.numpy() for g in grads], want)
                b.add("torch fwd+bwd", partial(run_torch, *inputs, *params), calls)
            if jax is not None:
                arrays = [jax.numpy.asarray(a) for a in host]
                for variant, jit in JAX_VARIANTS.items():
                    run_jax = jax_loss_and_grad(jax, jit)
                    _, grads = run_jax(*arrays)
                    check_arrays(f"MLP width {width}: {variant}", [np.asarray(g) for g in grads], want)
                    b.add(variant, partial(run_jax, *arrays), calls)
            result.benches.append(b)
        self.benches += result.benches
        return result

    def loop(self) -> Loop:
        """(d): the loop's gradient, checked against the hand-written sweeps and finite
        differences, timed through ``Program.call_compiled`` (as ``silopt --run`` calls); and the
        memory its VJP's records keep."""
        label = f"(d) loop of {LOOP_TRIPS:,} trips"
        module = differentiated(LOOP_TEXT, label)
        program = Program(module, self.backend)
        primal = program.function("@loop")
        grad = program.function("@AD__loop__grad_src_0_wrt_0")
        vjp = program.function("@AD__loop__vjp_src_0_wrt_0")
        x = LOOP_X
        for n in (0, 1, 7, 1_000):
            value, want = program.call_compiled(primal, [x, n]), python_loop(x, n)
            if value != want:
                fail(f"{label}: the interpreter computes {value!r} at {n} trips, plain Python {want!r}")
            got = program.call_compiled(grad, [x, n])
            h = FD_STEP * max(1.0, abs(x))
            fd = (
                8 * (python_loop(x + h, n) - python_loop(x - h, n))
                - (python_loop(x + 2 * h, n) - python_loop(x - 2 * h, n))
            ) / (12 * h)
            for what, want, rel in (
                ("the hand-written reverse sweep", python_loop_grad(x, n), REL_EXACT),
                ("forward mode", python_loop_forward(x, n), REL_EXACT),
                ("finite differences", fd, REL_FD),
            ):
                if not close(got, want, rel):
                    fail(f"{label}: the gradient at {n} trips is {got!r}, {want!r} by {what}")
        bytes_per_trip = {}
        for n in LOOP_MEMORY_TRIPS:
            gc.collect()
            tracemalloc.start()
            kept = program.call_compiled(vjp, [x, n])
            retained, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            del kept
            bytes_per_trip[n] = retained / n
        b = Bench(label, LOOP_TRIPS, "trip")
        trips = 10_000 if self.quick else LOOP_TRIPS
        b.unit = trips
        b.add("interp gradient", partial(program.call_compiled, grad, [x, trips]), 1, warmup=2)
        b.add("interp primal", partial(program.call_compiled, primal, [x, trips]), 1, warmup=2)
        b.add("python gradient", partial(python_loop_grad, x, trips), 1, warmup=2)
        b.add("python primal", partial(python_loop, x, trips), 1, warmup=2)
        self.benches.append(b)
        self.profiled["loop"] = partial(program.call_compiled, grad, [x, trips])
        return Loop(b, bytes_per_trip)

    def called(self) -> Called:
        """(e): ``gradient [wrt 0, 1]`` of a 100-link chain called in a SIL loop, against the same
        loop calling the primal, through ``Program.call_compiled`` (as ``silopt --run`` runs
        ``@grad_loop``); next to plain Python's loops. Checked first: one gradient against the
        hand-written sweeps, forward mode and finite differences, and the loops after 0, 1, 7 and
        100 trips against plain Python's (the primal's bit for bit)."""
        label = "(e) a gradient called in a loop"
        f = sine_chain()
        module = differentiated(called_loop_sil(f), label)
        program = Program(module, self.backend)
        loops = {k: program.function(f"@{k}_loop") for k in ("grad", "primal")}
        namespace = python_namespace([f], label)
        python = called_loops_python(namespace)
        x, y = CALLED_START
        got = program.function("@AD__f__grad_src_0_wrt_0_1")(1, x, y)
        references = {
            "hand-written reverse": (namespace["f_grad"](x, y), REL_EXACT),
            "hand-written tape": (namespace["f_pb"](1.0, namespace["f_vjp"](x, y)[1]), REL_EXACT),
            "forward mode": (f.evaluate(x, y)[1], REL_EXACT),
            "finite differences": (central_difference(namespace["f"], x, y), REL_FD),
        }
        errors = {}
        for what, (want, rel) in references.items():
            if not all(abs(got[k]) >= 1e-6 and close(got[k], want[k], rel) for k in (0, 1)):
                fail(f"{label}: the gradient is {got!r} in the interpreter, {want!r} by {what}")
            errors[what] = max(abs(got[k] - want[k]) / max(abs(got[k]), abs(want[k])) for k in (0, 1))
        for n in (0, 1, 7, 100):
            primal, want_primal = program.call_compiled(loops["primal"], [x, y, n]), python["primal"](x, y, n)
            if primal != want_primal:
                fail(
                    f"{label}: the primal loop gives {primal!r} after {n} trips, plain Python {want_primal!r}"
                )
            ours = program.call_compiled(loops["grad"], [x, y, n])
            for variant in ("taped", "grad"):
                want = python[variant](x, y, n)
                if not all(close(a, b, REL_EXACT) for a, b in zip(ours, want)):
                    fail(f"{label}: the gradient loop gives {ours!r} after {n} trips, Python {want!r}")
        steps = {}
        for k in ("grad", "primal"):
            counted = Program(module, self.backend, count_steps=True)
            counts = []
            for n in (10, 20):
                counted.run(f"@{k}_loop", x, y, n)
                counts.append(int(counted.steps or 0))
            steps[k] = counts[1] - counts[0]
        trips = CALLED_TRIPS_QUICK if self.quick else CALLED_TRIPS
        b = Bench(label, 1, "call")
        for n in trips:
            b.add(
                Called.variant("interp gradient", n),
                partial(program.call_compiled, loops["grad"], [x, y, n]),
                1,
                1,
            )
            b.add(
                Called.variant("interp primal", n),
                partial(program.call_compiled, loops["primal"], [x, y, n]),
                1,
                1,
            )
            b.add(Called.variant("python tape", n), partial(gc_paused, python["taped"], x, y, n), 1, 1)
            b.add(Called.variant("python no tape", n), partial(gc_paused, python["grad"], x, y, n), 1, 1)
            b.add(Called.variant("python primal", n), partial(gc_paused, python["primal"], x, y, n), 1, 1)
        self.benches.append(b)
        self.profiled["called"] = partial(program.call_compiled, loops["grad"], [x, y, trips[1]])
        return Called(b, trips, errors, steps["grad"] / steps["primal"])

    def pass_bench(self, sizes: Sequence[int], limit: float) -> PassBench:
        """Generate each size, and check it in a first run: the pass succeeds within the limit and
        adds a checkpoints record, and the module verifies (a verification still running after the
        limit is ended, and the size reported as not verified); sizes up to RUN_CHECK_LIMIT are
        also lowered, run, and checked against the hand-written gradient."""

        def make(n: int) -> tuple[str, int]:
            functions = straight_line(n)
            return module_text(functions), functions[0].instructions

        c = PassBench("straight-line", "instr", sizes, limit, make)
        for n in sizes:
            name = f"(c) straight-line {n}"
            if not self.first_pass_run(c, n, name):
                continue
            if n <= RUN_CHECK_LIMIT:
                functions = straight_line(n)
                module = differentiated(c.texts[n], name)
                got = Program(module, self.backend).run("@request", *ARGS)
                want = python_namespace(functions, name)["f_grad"](*ARGS)
                if not all(close(g, w, REL_EXACT) for g, w in zip(got, want)):
                    fail(f"{name}: the interpreter's gradient {got} differs from the hand-written {want}")
        self.profiled["pass"] = lambda: passes("differentiation").run(parse(c.texts[c.sizes[-1]]))
        return c

    def blocks_bench(self, sizes: Sequence[int], limit: float) -> PassBench:
        """As ``pass_bench``, on functions of many blocks (``branching_text``); those up to
        RUN_CHECK_LIMIT blocks are also run and their gradient checked against forward mode and
        finite differences in plain Python."""
        c = PassBench("branching", "block", sizes, limit, branching_text, output=True)
        for n in sizes:
            name = f"(c) branching {n}"
            if not self.first_pass_run(c, n, name) or n > RUN_CHECK_LIMIT:
                continue
            module = differentiated(c.texts[n], name)
            program = Program(module, self.backend)
            value, want = branching_python(*ARGS, n)
            if program.run("@f", *ARGS) != value:
                fail(f"{name}: the interpreter computes {program.run('@f', *ARGS)!r}, plain Python {value!r}")
            got = program.run("@request", *ARGS)
            fd = central_difference(partial(branching_value, blocks=n), *ARGS)
            for what, reference, rel in (
                ("forward mode", want, REL_EXACT),
                ("finite differences", fd, REL_FD),
            ):
                if not all(close(g, w, rel) for g, w in zip(got, reference)):
                    fail(f"{name}: the interpreter's gradient {got} differs from {what}'s {reference}")
        self.profiled["blocks"] = lambda: passes("differentiation").run(parse(c.texts[c.sizes[-1]]))
        return c

    @staticmethod
    def first_pass_run(c: PassBench, n: int, name: str) -> bool:
        """The checking run of one size: the pass succeeds and adds a checkpoints record, and the
        module verifies; False when it was ended at the limit."""
        run = run_pass(c.texts[n], name, True, c.limit)
        if run.problem is not None:
            fail(f"{name}: {run.problem}")
        c.check_s[n] = run.pass_s
        if run.pass_s is None:
            c.timed_out.append(n)
            return False
        if not run.verified:
            c.unverified.append(n)
        c.sizes.append(n)
        c.fields[n] = run.fields
        return True


def check_arrays(what: str, got: Sequence[Any], want: Sequence[Any]) -> None:
    """Float32 gradients that agree with hand-written NumPy's up to summation order."""
    for g, w in zip(got, want, strict=True):
        g = np.asarray(g)
        if g.shape != w.shape or not np.allclose(g, w, rtol=1e-3, atol=1e-4 * float(np.max(np.abs(w)))):
            fail(f"{what} differs from hand-written NumPy")


def check_numpy_gradient(host: list[Any], grads: tuple[Any, ...], width: int) -> None:
    """The hand-written backward pass is right: in float64 it agrees with central differences on
    two entries of each parameter (1e-5), and the float32 gradient with the float64 one."""
    wide = [a.astype(np.float64) for a in host]
    _, exact = numpy_loss_and_grad(*wide)
    check_arrays(f"MLP width {width}: float32 NumPy", grads, exact)
    rng = np.random.default_rng(5)
    for k, i in enumerate(MLP_WRT):
        p = wide[i]
        for _ in range(2):
            at = tuple(int(rng.integers(0, s)) for s in p.shape)
            saved = p[at]
            h = 1e-6 * max(1.0, abs(saved))
            p[at] = saved + h
            above = numpy_loss(*wide)
            p[at] = saved - h
            below = numpy_loss(*wide)
            p[at] = saved
            fd = (above - below) / (2 * h)
            floor = 1e-5 * float(np.max(np.abs(exact[k])))
            if abs(fd - exact[k][at]) > REL_FD * max(abs(fd), abs(exact[k][at])) + floor:
                fail(
                    f"MLP width {width}: hand-written NumPy's d/d{MLP_PARAMS[i]}{list(at)} is "
                    f"{exact[k][at]!r}, finite differences give {fd!r}"
                )


# --- reporting ---------------------------------------------------------------------------------------


def machine(backend: Backend) -> dict[str, str]:
    versions = {}
    for name in ("torch", "jax"):
        found = sys.modules.get(name)
        versions[name] = getattr(found, "__version__", "?") if found is not None else "not installed"
    return common.machine(numpy=np.__version__, backend=backend.describe(), **versions)


def report(setup: Setup, quick: bool) -> dict[str, Any]:
    """The medians per variant, what the checks found, (c)'s tables, the ratios against the
    targets, and what blocked or ended a workload."""
    common.print_medians(
        "Median time per call (and per instruction of the primal), over rounds:",
        setup.benches,
        20,
        heading=lambda b: f" ({b.unit:,} {b.unit_name}s a primal run)" if b.unit > 1 else "",
    )
    for name, why in setup.b.missing.items():
        print(f"  (b) {name}: {why}, not compared")
    for width, peaks in setup.b.peak_bytes.items():
        shown = ", ".join(f"{variant} {size / 2**20:.2f} MiB" for variant, size in peaks.items())
        print(f"  (b) MLP {width}: peak memory (tracemalloc): {shown}")
    report_checks(setup)
    for bench in (setup.c, setup.c_blocks):
        print_pass_table(bench)
    figures = [
        *scalar_figures(setup.a),
        *mlp_figures(setup.b),
        *scaling_figures(setup.c),
        *scaling_figures(setup.c_blocks),
        *loop_figures(setup.d),
        *called_figures(setup.e),
        records_figure(setup.d),
    ]
    summary = common.print_ratios(
        "Ratios: the median over rounds of the ratio within a round, and its quartiles", figures, 58, 11
    )
    report_blocked(setup.b)
    for bench in (setup.c, setup.c_blocks):
        report_ended(bench)
    if quick:
        print("A --quick smoke run: too small and short to judge the targets.")
    return summary


def report_checks(setup: Setup) -> None:
    """How far (a)'s and (e)'s gradients lie from their references and how many instructions they
    run; (e)'s time per call; (d)'s records' bytes per trip."""
    print()
    print("(a) Checks: the largest relative difference of the interpreter's d/dx and d/dy from each")
    print("    reference; and how many instructions the gradient runs (VJP and pullback), over the primal's:")
    for a in setup.a:
        errors = ", ".join(f"{what} {e:.0e}" for what, e in a.errors.items())
        print(f"  {a.bench.name:<26} {errors}; {a.steps_ratio:.2f}x")

    e = setup.e
    short, long = e.trips
    print()
    print(f"(e) A gradient called in a loop: per call, the difference between {long:,} and {short:,} calls")
    print("    over the difference of the counts, the median over rounds:")
    for name in Called.VARIANTS:
        print(f"  {name:<22} {statistics.median(e.per_call(name)) * 1e6:8.2f} µs")
    errors = ", ".join(f"{what} {err:.0e}" for what, err in e.errors.items())
    print(f"  checks of one gradient: {errors}")
    print(f"  a gradient call runs {e.steps_ratio:.2f}x the instructions of a primal call")

    print()
    print("(d) Memory the VJP's records keep (tracemalloc, the VJP's result alive), per trip:")
    print("  " + ", ".join(f"{n:,} trips {b:.0f} B" for n, b in setup.d.bytes_per_trip.items()))


# Each ratio of (a), (d) and (e): its label, ours, the baseline, and whether the gradient's target
# judges it: the interpreter's gradient over its primal, and the same of hand-written Python.
GRADIENT_RATIOS = (
    ("gradient / primal", "interp gradient", "interp primal", True),
    ("hand Python, gradient / primal", "python gradient", "python primal", False),
    ("gradient / hand Python's", "interp gradient", "python gradient", False),
)


def scalar_figures(scalars: list[Scalar]) -> list[Figure]:
    """(a): per workload, the gradient's ratios and the primal's over plain Python's."""
    figures = []
    for a in scalars:
        b = a.bench
        for label, ours, base, judged in GRADIENT_RATIOS:
            target = TARGET_GRADIENT if judged else None
            figures.append(Figure(f"{b.name}: {label}", ratios((b, ours), (b, base)), target))
        figures.append(
            Figure(f"{b.name}: primal / plain Python's", ratios((b, "interp primal"), (b, "python primal")))
        )
    return figures


def mlp_figures(mlp: MLP) -> list[Figure]:
    """(b): per width, the gradient (BLOCKED while the differentiator rejects the loss) and the
    other frameworks against hand-written NumPy, and NumPy's own backward pass over its forward."""
    figures = []
    for b in mlp.benches:
        width = int(b.name.rsplit(" ", 1)[1])
        ours = (
            ratios((b, "interp gradient"), (b, "numpy fwd+bwd")) if "interp gradient" in b.variants else None
        )
        target = TARGET_MLP if width == max(HIDDEN_WIDTHS) else None
        blocked = mlp.blocked[0] if mlp.blocked else ""
        figures.append(
            Figure(f"(b) MLP {width}: gradient / hand NumPy fwd+bwd", ours, target, blocked=blocked)
        )
        peaks = mlp.peak_bytes.get(width)
        if peaks is not None:
            memory = peaks["interp gradient"] / peaks["numpy fwd+bwd"]
            memory_target = TARGET_MLP_MEMORY if width == max(HIDDEN_WIDTHS) else None
            figures.append(Figure(f"(b) MLP {width}: peak memory / hand NumPy's", [memory], memory_target))
        numpy_ratio = ratios((b, "numpy fwd+bwd"), (b, "numpy forward"))
        figures.append(Figure(f"(b) MLP {width}: hand NumPy, fwd+bwd / forward", numpy_ratio))
        for variant in ("torch fwd+bwd", *JAX_VARIANTS):
            if variant in b.variants:
                other = ratios((b, variant), (b, "numpy fwd+bwd"))
                figures.append(Figure(f"(b) MLP {width}: {variant} / hand NumPy", other))
    return figures


def loop_figures(loop: Loop) -> list[Figure]:
    """(d): the loop's gradient against its primal and hand-written Python's."""
    b = loop.bench
    return [
        Figure(f"(d) loop: {label}", ratios((b, ours), (b, base)), TARGET_LOOP if judged else None)
        for label, ours, base, judged in GRADIENT_RATIOS
    ]


def called_figures(e: Called) -> list[Figure]:
    """(e): per call, the gradient over the primal, ours and hand-written Python's."""
    pairs = (
        ("gradient / primal, per call", "interp gradient", "interp primal", TARGET_CALLED),
        ("hand Python (tape), grad / primal", "python tape", "python primal", None),
        ("hand Python (no tape), grad / primal", "python no tape", "python primal", None),
        ("gradient / hand Python's (tape)", "interp gradient", "python tape", None),
        ("primal / plain Python's", "interp primal", "python primal", None),
    )
    return [
        Figure(f"(e) called in a loop: {label}", e.ratio(ours, base), target)
        for label, ours, base, target in pairs
    ]


def records_figure(loop: Loop) -> Figure:
    """(d): bytes per trip at the most trips over the fewest."""
    memory = loop.bytes_per_trip
    few, most = min(memory), max(memory)
    growth = memory[most] / memory[few]
    return Figure(f"(d) records B/trip, {most // 1000}k / {few // 1000}k trips", [growth], TARGET_LINEAR)


def report_blocked(mlp: MLP) -> None:
    """What -differentiation reported on (b)'s loss, when it rejected it."""
    if not mlp.blocked:
        return
    print()
    print(f"(b) BLOCKED: {mlp.blocked[0]}")
    counts: dict[str, int] = {}
    for message in mlp.blocked:
        counts[message] = counts.get(message, 0) + 1
    print(f"    -differentiation reports {len(mlp.blocked)} diagnostic(s) on the MLP's loss:")
    for message, count in counts.items():
        print(f"    {count} x {message}")


def report_ended(bench: PassBench) -> None:
    """(c)'s sizes ended at the time limit: in the pass, or in verifying its output."""
    unit = "instruction" if bench.unit == "instr" else bench.unit
    if bench.timed_out:
        print()
        ended = bench.units[bench.timed_out[0]]
        print(f"(c) The pass on {ended:,} {unit}s was ended after {bench.limit:.0f} s: its ratio is a lower")
        print(f"    bound, the limit per {unit} over the time per {unit} at {bench.units[bench.sizes[0]]:,}")
    if bench.unverified:
        sizes = ", ".join(f"{bench.units[n]:,}" for n in bench.unverified)
        print()
        print(f"(c) verify_module was still running {bench.limit:.0f} s after the pass on {sizes} {unit}s")
        print("    and was ended: the pass succeeded there, but its output is timed unverified.")


def print_pass_table(c: PassBench) -> None:
    """(c)'s figures per size: the pass, the time per unit, the parse's, and the record's fields
    (or, for the branching functions, whose record is the entry block's and does not grow, the
    time of verifying and printing the pass's output)."""
    runs = len(c.samples[(c.sizes[0], "pass")]) if c.sizes else 0
    u = c.unit
    print()
    print(f"(c) -differentiation on {c.label} functions, the median of {runs} round(s):")
    head = f"  {u + 's':>7} {'pass':>9} {'µs/' + u:>9} {'parse µs/' + u:>15}"
    print(head + (f" {'verify+print µs/' + u:>22}" if c.output else f" {'fields':>8} {'fields/' + u:>13}"))
    for n in c.sizes:
        seconds = statistics.median(c.samples[(n, "pass")])
        line = f"  {c.units[n]:>7,} {seconds:>8.2f}s {c.per_unit(n, 'pass') * 1e6:>9.1f}"
        line += f" {c.per_unit(n, 'parse') * 1e6:>15.2f}"
        if c.output:
            line += f" {c.per_unit(n, 'output') * 1e6:>22.1f}"
        else:
            line += f" {c.fields[n]:>8,} {c.fields[n] / c.units[n]:>13.3f}"
        print(line + ("  (not verified)" if n in c.unverified else ""))
    for n in c.timed_out:
        print(f"  {c.units[n]:>7,} {f'> {c.limit:.0f}s':>9}  ended: still running after the limit")


def scaling_figures(c: PassBench) -> list[Figure]:
    """(c)'s ratios: the pass's time per unit at the largest size over the smallest's (a lower
    bound when a size was ended at the limit), the record's fields per instruction likewise
    (straight-line code) or the time to verify and print the output (branching code), and the
    parse's (a linear baseline)."""
    figures: list[Figure] = []
    u = c.unit
    small, large = c.sizes[0], c.sizes[-1]
    k = f"{c.units[large] // 1000}k / {c.units[small] // 1000}k"
    if c.timed_out:
        # A run ended at the limit bounds the ratio from below: that pass took longer than the limit.
        n = c.timed_out[0]
        bound = [(c.limit / c.units[n]) / c.per_unit(small, "pass")]
        figures.append(
            Figure(
                f"(c) pass µs/{u}, {n // 1000}k / {small // 1000}k", bound, TARGET_LINEAR, lower_bound=True
            )
        )
        if large != small:
            figures.append(Figure(f"(c) pass µs/{u}, {k}", c.scaling("pass", large)))
    else:
        figures.append(Figure(f"(c) pass µs/{u}, {k}", c.scaling("pass", large), TARGET_LINEAR))
    if c.output:
        figures.append(Figure(f"(c) verify+print µs/{u}, {k}", c.scaling("output", large), TARGET_LINEAR))
    else:
        fields = [(c.fields[large] / c.units[large]) / (c.fields[small] / c.units[small])]
        figures.append(Figure(f"(c) record fields/{u}, {k}", fields, TARGET_LINEAR))
    figures.append(Figure(f"(c) parse µs/{u}, {k} (a linear baseline)", c.scaling("parse", large)))
    return figures


def pass_json(c: PassBench, units: str) -> list[dict[str, Any]]:
    """(c) by size, for the JSON output: every round's seconds of each phase."""
    return [
        {
            units: c.units[n],
            "record_fields": c.fields.get(n),
            "pass_seconds": c.samples.get((n, "pass")),
            "parse_seconds": c.samples.get((n, "parse")),
            "verify_print_seconds": c.samples.get((n, "output")),
            "ended_after_seconds": c.limit if n in c.timed_out else None,
            "verified": n in c.sizes and n not in c.unverified,
        }
        for n in [*c.sizes, *c.timed_out]
    ]


def run_json(setup: Setup, summary: dict[str, Any]) -> dict[str, Any]:
    """The figures of the run by workload, for the JSON output."""
    e = setup.e
    return {
        "workloads": common.benches_json(setup.benches),
        "gradient_errors": {a.bench.name: a.errors for a in setup.a},
        "mlp_blocked": setup.b.blocked,
        "loop_record_bytes_per_trip": setup.d.bytes_per_trip,
        "called_loop": {
            "trips": list(e.trips),
            "seconds_per_call": {name: statistics.median(e.per_call(name)) for name in Called.VARIANTS},
            "gradient_errors": e.errors,
            "steps_ratio": e.steps_ratio,
        },
        "mlp_missing": setup.b.missing,
        "mlp_peak_bytes": setup.b.peak_bytes,
        "pass": pass_json(setup.c, "instructions"),
        "pass_blocks": pass_json(setup.c_blocks, "blocks"),
        "ratios": summary,
    }


def main(argv: list[str] | None = None) -> int:
    ap = common.argument_parser(
        __doc__,
        quick="(c) up to 4k, one repetition: a smoke run",
        reps="timed rounds of (a) and (b) (default 9; 1 with --quick)",
        profile=("straight", "chain", "sequence", "mlp", "pass", "blocks", "loop", "called"),
        profile_help="instead of timing, run one workload under cProfile: an (a) gradient 500 times, (b) "
        "the MLP gradient at width 1024, (c) the pass on the largest size that "
        "finished (pass: straight-line, blocks: branching), (d) the loop's gradient, or (e) the loop "
        "calling a gradient",
    )
    ap.add_argument("--pass-reps", type=int, help="timed rounds of (c) (default 3; 1 with --quick)")
    ap.add_argument(
        "--pass-limit",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="(c): end a pass still running after this long, and report a lower bound (default 30)",
    )
    args = ap.parse_args(argv)
    backend = select_backend("numpy")
    reps = args.reps or (1 if args.quick else 9)
    pass_reps = args.pass_reps or (1 if args.quick else 3)
    started = time.perf_counter()
    setup = Setup(args.quick, backend, args.pass_limit)
    info = machine(backend)
    if args.profile:
        if args.profile not in setup.profiled:
            sys.exit(f"--profile {args.profile}: nothing to profile (is the workload blocked?)")
        common.print_profile(setup.profiled[args.profile], args.profile)
        return 0
    rounds = f"{reps} round(s) of (a) and (b), {pass_reps} of (c)"
    common.header("ad_bench", info, ("NumPy", "backend", "torch", "JAX"), rounds, args.quick)
    ready = time.perf_counter() - started
    sizes = sum(len(c.sizes) + len(c.timed_out) for c in (setup.c, setup.c_blocks))
    print(
        f"  generated, differentiated and checked {len(setup.benches)} workloads and "
        f"{sizes} pass sizes in {ready:.1f} s",
        flush=True,
    )
    measure(setup.benches, [setup.c, setup.c_blocks], reps, pass_reps)
    summary = report(setup, args.quick)
    print(f"\nTotal {time.perf_counter() - started:.1f} s.")
    doc = {"machine": info, "reps": reps, "pass_reps": pass_reps, "quick": args.quick}
    common.write_json(args.json, {**doc, **run_json(setup, summary)})
    sys.stdout.flush()  # before exit: a library forking at exit would print what is buffered again
    return 0


if __name__ == "__main__":
    sys.exit(main())
