"""``silopt --check-derivatives``: every function with a JVP and a VJP, checked on the interpreter.

At seeded random points x, for random tangents v and seeds w: the differential's J·v against
central finite differences of the original (the quotient computed in Double), and the
dot-product identity <J·v, w> = <v, Jᵀ·w> between the differential and the pullback. It reports
the worst relative error of each over the points, per function and configuration.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import attrs

from accel import Backend
from interp import Program
from sil.instructions import DifferentiableFunctionInst, FunctionRefInst
from sil.ir import DifferentiableAttr, Function, Module, Result
from sil.types import DOUBLE, FLOAT, ScalarType, TupleType, Type

POINTS = 3
# (finite differences, the identity) per element type: Float code rounds every step to binary32.
TOLERANCES = {DOUBLE: (1e-6, 1e-9), FLOAT: (5e-3, 1e-4)}
STEPS = {DOUBLE: 1e-5, FLOAT: 1e-2}


@attrs.frozen
class Derivatives:
    """A function, what it is differentiated for, and its JVP and VJP."""

    original: Function
    source: int
    wrt: tuple[int, ...]
    jvp: Function
    vjp: Function

    def describe(self) -> str:
        return f"@{self.original.name} (source {self.source} wrt {', '.join(map(str, self.wrt))})"


def derivatives_in(module: Module) -> Iterator[Derivatives]:
    """Each function with both derivatives: from ``[differentiable]`` attributes naming them, and
    from ``differentiable_function`` bundles of ``function_ref``s."""
    seen: set[tuple[str, int, tuple[int, ...]]] = set()
    functions = module.functions

    def found(
        original: Function, source: int, wrt: tuple[int, ...], jvp: str, vjp: str
    ) -> Iterator[Derivatives]:
        key = (original.name, source, wrt)
        if key not in seen and jvp in functions and vjp in functions and not original.is_declaration:
            seen.add(key)
            yield Derivatives(original, source, wrt, functions[jvp], functions[vjp])

    for fn in list(functions.values()):
        for attr in fn.attributes:
            if isinstance(attr, DifferentiableAttr) and attr.jvp is not None and attr.vjp is not None:
                wrt = attr.wrt if attr.wrt is not None else tuple(range(len(fn.type.params)))
                yield from found(fn, attr.source, wrt, attr.jvp, attr.vjp)
    for fn in list(functions.values()):
        for inst in fn.instructions():
            if isinstance(inst, DifferentiableFunctionInst) and len(inst.operands) == 3:
                names = [_referenced(op) for op in inst.operands]
                if all(names) and names[0] in functions:
                    yield from found(functions[names[0]], 0, inst.parameters, names[1], names[2])  # type: ignore[arg-type]


def _referenced(value: Any) -> str | None:
    if isinstance(value, Result) and isinstance(value.owner, FunctionRefInst):
        return value.owner.function_name
    return None


def _element_type(t: Type) -> ScalarType | None:
    """The one float type of a parameter made of Float or Double scalars (None otherwise)."""
    if isinstance(t, ScalarType) and t in (FLOAT, DOUBLE):
        return t
    if isinstance(t, TupleType) and t.elements:
        kinds = {_element_type(e) for e in t.elements}
        return kinds.pop() if len(kinds) == 1 else None
    return None


def _random(t: Type, r: random.Random) -> Any:
    if isinstance(t, TupleType):
        return tuple(_random(e, r) for e in t.elements)
    return r.uniform(0.3, 1.5)


def _gauss(t: Type, r: random.Random) -> Any:
    if isinstance(t, TupleType):
        return tuple(_gauss(e, r) for e in t.elements)
    return r.gauss(0.0, 1.0)


def _axpy(a: float, x: Any, y: Any) -> Any:
    if isinstance(y, tuple):
        return tuple(_axpy(a, xi, yi) for xi, yi in zip(x, y))
    return y + a * x


def _dot(x: Any, y: Any) -> float:
    if isinstance(x, tuple):
        return sum(_dot(a, b) for a, b in zip(x, y))
    return float(x) * float(y)


def _source(value: Any, d: Derivatives) -> Any:
    results = d.original.type.results if isinstance(d.original.type.result, TupleType) else ()
    return value[d.source] if len(results) > 1 else value


@attrs.frozen
class Outcome:
    derivatives: Derivatives
    finite_differences: float | None  # worst relative error; None: not checked
    identity: float | None
    note: str = ""
    passed: bool = True

    def line(self) -> str:
        if self.finite_differences is None or self.identity is None:
            return f"{self.derivatives.describe()}: not checked: {self.note}"
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"{self.derivatives.describe()}: JVP vs finite differences {self.finite_differences:.1e}, "
            f"JVP vs VJP {self.identity:.1e}: {verdict}"
        )


def check(program: Program, d: Derivatives, seed: int) -> Outcome:
    """The worst relative errors of ``d`` over ``POINTS`` random points."""
    params = d.original.type.params
    kinds = {_element_type(t) for t in params}
    if None in kinds or len(kinds) != 1:
        return Outcome(
            d, None, None, "only Float or Double scalar (and tuple) parameters can be drawn at random"
        )
    kind = kinds.pop()
    assert kind is not None
    fd_tolerance, identity_tolerance = TOLERANCES[kind]
    h = STEPS[kind]
    r = random.Random(f"{seed}:{d.describe()}")
    worst_fd = worst_identity = 0.0
    for _ in range(POINTS):
        x = [_random(t, r) for t in params]
        v = [_gauss(t, r) if i in d.wrt else _scale(_random(t, r), 0.0) for i, t in enumerate(params)]
        plus = program.run("@" + d.original.name, *[_axpy(h, vi, xi) for xi, vi in zip(x, v)])
        minus = program.run("@" + d.original.name, *[_axpy(-h, vi, xi) for xi, vi in zip(x, v)])
        numeric = _axpy(-1.0, _source(minus, d), _source(plus, d))
        numeric = _scale(numeric, 1.0 / (2 * h))
        _, differential = program.run("@" + d.jvp.name, *x)
        jv = differential(*[v[i] for i in d.wrt])
        w = _gauss(_type_of(jv), r)
        _, pullback = program.run("@" + d.vjp.name, *x)
        cotangents = pullback(w)
        cotangents = cotangents if len(d.wrt) > 1 else (cotangents,)
        worst_fd = max(worst_fd, _relative(jv, numeric))
        left, right = _dot(jv, w), sum(_dot(v[i], c) for i, c in zip(d.wrt, cotangents))
        worst_identity = max(worst_identity, abs(left - right) / max(1.0, abs(left), abs(right)))
    passed = worst_fd <= fd_tolerance and worst_identity <= identity_tolerance
    return Outcome(d, worst_fd, worst_identity, passed=passed)


def _scale(x: Any, a: float) -> Any:
    return tuple(_scale(e, a) for e in x) if isinstance(x, tuple) else float(x) * a


def _type_of(value: Any) -> Type:
    return TupleType(tuple(_type_of(e) for e in value)) if isinstance(value, tuple) else DOUBLE


def _relative(x: Any, y: Any) -> float:
    if isinstance(x, tuple):
        return max((_relative(a, b) for a, b in zip(x, y)), default=0.0)
    return abs(float(x) - float(y)) / max(1.0, abs(float(x)), abs(float(y)))


def check_module(module: Module, backend: Backend, seed: int = 0) -> list[Outcome]:
    """The outcome for every function with derivatives in ``module``."""
    program = Program(module, backend)
    return [check(program, d, seed) for d in derivatives_in(module)]
