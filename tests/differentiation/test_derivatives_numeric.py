"""Every JVP and VJP that -differentiation synthesizes for the golden cases, checked numerically:
for random points x, tangent directions v and seeds w, the differential's J v must match central
finite differences (f(x + h v) - f(x - h v)) / 2h, and the dot-product identity
<J v, w> = <v, pullback(w)> must hold between JVP and VJP. Finite differences run in Double; Float
cases get a wider step and a looser tolerance."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from accel.numpy_backend import NumpyBackend
from golden.harness import GOLDEN, read_run_line
from interp import Program
from sil import parse, verify_module
from sil.ir import DifferentiableAttr, Function, Module
from sil.passes import PassManager, registered_passes
from sil.types import DOUBLE, FLOAT, ScalarType, TupleType, Type
from silopt import driver  # noqa: F401  (registers the analysis and differentiation passes)

CASES = sorted(
    p
    for p in (GOLDEN / "differentiation").glob("*.sil")
    if "-differentiation" in read_run_line(p).argv and not read_run_line(p).expect_failure
)


def differentiated(case: Path) -> Module:
    module = parse(case.read_text(encoding="utf-8"), str(case))
    passes = registered_passes()
    PassManager([passes["differentiation"]()]).run(module)
    assert verify_module(module) == []
    return module


def flatten(value: Any) -> list[float]:
    if isinstance(value, tuple):
        return [x for v in value for x in flatten(v)]
    return [float(value)]


def random_value(t: Type, r: random.Random) -> Any:
    if isinstance(t, TupleType):
        return tuple(random_value(e, r) for e in t.elements)
    assert isinstance(t, ScalarType) and t in (FLOAT, DOUBLE), f"numeric check of {t} not supported"
    return r.uniform(0.3, 1.5)


def shifted(x: list[Any], v: list[Any], h: float) -> list[Any]:
    return [a + h * d for a, d in zip(x, v)]


def check(
    program: Program, fn: Function, attr: DifferentiableAttr, r: random.Random, h: float
) -> tuple[float, float]:
    """The relative errors, at one random point, of the JVP against finite differences and of the
    dot-product identity between JVP and VJP."""
    assert attr.vjp is not None and attr.jvp is not None
    wrt = attr.wrt if attr.wrt is not None else tuple(range(len(fn.type.params)))
    x = [random_value(t, r) for t in fn.type.params]
    v = [r.gauss(0, 1) if i in wrt else 0.0 for i in range(len(x))]
    w = r.gauss(0, 1)
    plus = flatten(program.run("@" + fn.name, *shifted(x, v, h)))
    minus = flatten(program.run("@" + fn.name, *shifted(x, v, -h)))
    numeric = (plus[attr.source] - minus[attr.source]) / (2 * h)
    _, differential = program.run("@" + attr.jvp, *x)
    jv = float(differential(*[v[i] for i in wrt]))
    _, pullback = program.run("@" + attr.vjp, *x)
    cotangents = pullback(w)
    cotangents = cotangents if isinstance(cotangents, tuple) else (cotangents,)
    vjw = sum(v[i] * c for i, c in zip(wrt, cotangents))

    def relative(a: float, b: float) -> float:
        return abs(a - b) / max(1.0, abs(a), abs(b))

    return relative(jv, numeric), relative(jv * w, vjw)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_synthesized_derivatives_agree_with_finite_differences_and_each_other(case: Path) -> None:
    module = differentiated(case)
    program = Program(module, NumpyBackend())
    r = random.Random(case.name)
    checked = 0
    for fn in list(module.functions.values()):
        for attr in fn.attributes:
            if (
                not isinstance(attr, DifferentiableAttr)
                or attr.jvp is None
                or attr.vjp is None
                or fn.is_declaration
            ):
                continue
            # Float code rounds every step to binary32: a wider step keeps rounding out of the difference.
            floats = any(t == FLOAT for t in fn.type.params)
            h, tolerance = (1e-2, 5e-3) if floats else (1e-5, 1e-6)
            for _ in range(3):
                against_differences, identity = check(program, fn, attr, r, h)
                assert against_differences < tolerance, (
                    f"@{fn.name}: JVP vs finite differences {against_differences:.1e}"
                )
                assert identity < 1e-5, f"@{fn.name}: <Jv, w> vs <v, J^T w> {identity:.1e}"
            checked += 1
    assert checked > 0


def test_there_are_cases() -> None:
    assert len(CASES) >= 3
