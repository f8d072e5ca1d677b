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
from sil.types import BOOL, DOUBLE, FLOAT, INT, ScalarType, TupleType, Type

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


class _Values:
    """Random points and tangents of the types --check-derivatives can draw: Float and Double,
    tuples of them, and structs of them (whose tangent leaves out ``@noDerivative`` fields); and,
    for the parameters not differentiated, Int (a small count: a loop's trips) and Bool."""

    def __init__(self, module: Module, r: random.Random) -> None:
        self.module = module
        self.r = r

    def kind(self, t: Type) -> ScalarType | None:
        """The one float type ``t`` is made of, or None when it cannot be drawn."""
        if isinstance(t, ScalarType):
            return t if t in (FLOAT, DOUBLE) else None
        kinds = {self.kind(e) for e in self._parts(t)} if self._parts(t) else {None}
        return kinds.pop() if len(kinds) == 1 else None

    def _parts(self, t: Type) -> tuple[Type, ...]:
        if isinstance(t, TupleType):
            return t.elements
        decl = self.module.struct(str(t))
        return tuple(f.type for f in decl.fields) if decl is not None else ()

    def point(self, t: Type) -> Any:
        if t == INT:
            return self.r.randint(0, 5)
        if t == BOOL:
            return self.r.random() < 0.5
        if isinstance(t, ScalarType):
            return self.r.uniform(0.3, 1.5)
        return tuple(self.point(e) for e in self._parts(t))

    def tangent(self, t: Type) -> Any:
        """A random tangent of ``t`` (a value of its tangent type)."""
        tangent = self.module.tangent_type(t)
        assert tangent is not None
        if isinstance(tangent, ScalarType):
            return self.r.gauss(0.0, 1.0)
        return tuple(self.tangent(e) for e in self._parts(tangent))

    def zero(self, t: Type) -> Any:
        tangent = self.module.tangent_type(t)
        assert tangent is not None
        return 0.0 if isinstance(tangent, ScalarType) else tuple(self.zero(e) for e in self._parts(tangent))

    def moved(self, x: Any, v: Any, h: float, t: Type) -> Any:
        """``x + h v`` for a point ``x`` of ``t`` and a tangent ``v`` (None: ``t`` has none)."""
        if v is None:
            return x
        if isinstance(t, ScalarType):
            return x + h * v
        if isinstance(t, TupleType):
            return tuple(self.moved(a, d, h, e) for a, d, e in zip(x, v, t.elements))
        decl = self.module.struct(str(t))
        tangent_decl = self.module.struct(str(self.module.tangent_type(t)))
        assert decl is not None and tangent_decl is not None
        by_name = {f.name: d for f, d in zip(tangent_decl.fields, v)}
        return tuple(
            self.moved(a, by_name[f.name], h, f.type) if f.name in by_name and not f.no_derivative else a
            for a, f in zip(x, decl.fields)
        )


def _flat(value: Any) -> list[float]:
    if isinstance(value, tuple):
        return [x for v in value for x in _flat(v)]
    return [float(value)]


def _dot(x: Any, y: Any) -> float:
    return sum(a * b for a, b in zip(_flat(x), _flat(y)))


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
    values = _Values(program.module, random.Random(f"{seed}:{d.describe()}"))
    result_type = (
        d.original.type.results[d.source] if len(d.original.type.results) > 1 else d.original.type.result
    )
    fixed = [i for i, t in enumerate(params) if i not in d.wrt and t in (INT, BOOL)]
    kinds = {values.kind(t) for i, t in enumerate((*params, result_type)) if i not in fixed}
    if None in kinds or len(kinds) != 1:
        return Outcome(
            d,
            None,
            None,
            "only Float and Double scalars, and tuples and structs of them, can be drawn "
            "(and Int and Bool, where not differentiated)",
        )
    kind = kinds.pop()
    assert kind is not None
    fd_tolerance, identity_tolerance = TOLERANCES[kind]
    h = STEPS[kind]
    worst_fd = worst_identity = 0.0
    for _ in range(POINTS):
        x = [values.point(t) for t in params]
        v = [
            values.tangent(t) if i in d.wrt else None if i in fixed else values.zero(t)
            for i, t in enumerate(params)
        ]
        plus = program.run(
            "@" + d.original.name, *[values.moved(a, b, h, t) for a, b, t in zip(x, v, params)]
        )
        minus = program.run(
            "@" + d.original.name, *[values.moved(a, b, -h, t) for a, b, t in zip(x, v, params)]
        )
        numeric = [(p - m) / (2 * h) for p, m in zip(_flat(_source(plus, d)), _flat(_source(minus, d)))]
        _, differential = program.run("@" + d.jvp.name, *x)
        jv = differential(*[v[i] for i in d.wrt])
        w = values.tangent(result_type)
        _, pullback = program.run("@" + d.vjp.name, *x)
        cotangents = pullback(w)
        cotangents = cotangents if len(d.wrt) > 1 else (cotangents,)
        for a, b in zip(_flat(jv), numeric):
            worst_fd = max(worst_fd, abs(a - b) / max(1.0, abs(a), abs(b)))
        left, right = _dot(jv, w), sum(_dot(v[i], c) for i, c in zip(d.wrt, cotangents))
        worst_identity = max(worst_identity, abs(left - right) / max(1.0, abs(left), abs(right)))
    passed = worst_fd <= fd_tolerance and worst_identity <= identity_tolerance
    return Outcome(d, worst_fd, worst_identity, passed=passed)


def check_module(module: Module, backend: Backend, seed: int = 0) -> list[Outcome]:
    """The outcome for every function with derivatives in ``module``."""
    program = Program(module, backend)
    return [check(program, d, seed) for d in derivatives_in(module)]
