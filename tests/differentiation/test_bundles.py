"""``differentiable_function`` bundles and the derivatives extracted from them, checked numerically:
the VJP's pullback against central finite differences of the original, the JVP's differential
against the pullback (the dot-product identity), in Double, for bundles of several parameter lists
(SIL-SPEC §4: ``[parameters 0 2]``)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import pytest

from accel.numpy_backend import NumpyBackend
from interp import Program
from sil import parse, verify_module
from sil.ir import Result
from sil.passes import PassManager, registered_passes
from silopt.run import lower_derivatives

F = "@convention(thin) (Double, Double, Double) -> Double"
BUNDLE = "@differentiable(reverse) @convention(thin) ({params}) -> Double"

ORIGINAL = f"""\
sil @f : ${F} {{
bb0(%x : $Double, %y : $Double, %z : $Double):
  %xy = builtin "fmul"(%x : $Double, %y : $Double) : $Double
  %s = builtin "sin"(%z : $Double) : $Double
  %e = builtin "exp"(%x : $Double) : $Double
  %t = builtin "fmul"(%s : $Double, %e : $Double) : $Double
  %q = builtin "fdiv"(%t : $Double, %y : $Double) : $Double
  %r = builtin "fadd"(%xy : $Double, %q : $Double) : $Double
  return %r : $Double
}}
"""


def _tangents(wrt: Sequence[int]) -> str:
    return ", ".join("Double" for _ in wrt)


def extracting(wrt: Sequence[int], kind: str) -> str:
    """A function returning the ``kind`` derivative of a bundle of ``@f`` for ``wrt``."""
    name = f"{kind}_{'_'.join(map(str, wrt))}"
    params = ", ".join("Double" if i in wrt else "@noDerivative Double" for i in range(3))
    tangents = _tangents(wrt)
    many = f"({tangents})" if len(wrt) > 1 else tangents
    linear = (
        f"@callee_guaranteed ({tangents}) -> Double"
        if kind == "jvp"
        else f"@callee_guaranteed (Double) -> {many}"
    )
    derivative = f"@convention(thin) (Double, Double, Double) -> (Double, {linear})"
    return f"""\
sil @{name} : $@convention(thin) () -> {derivative} {{
bb0:
  %f = function_ref @f : ${F}
  %d = differentiable_function [parameters {" ".join(map(str, wrt))}] %f : ${F}
  %e = differentiable_function_extract [{kind}] %d : ${BUNDLE.format(params=params)}
  return %e : ${derivative}
}}
"""


WRT_LISTS = [
    wrt for n in (1, 2, 3) for wrt in itertools.combinations(range(3), n)
]  # every non-empty parameter list


@pytest.fixture(scope="module")
def program() -> Program:
    text = ORIGINAL + "".join(extracting(wrt, kind) for wrt in WRT_LISTS for kind in ("jvp", "vjp"))
    module = parse(text, "bundles.sil")
    lower_derivatives(module)
    assert verify_module(module) == []
    return Program(module, NumpyBackend())


def f(x: float, y: float, z: float) -> float:
    return x * y + math.sin(z) * math.exp(x) / y


POINTS = [(0.3, 1.7, -0.4), (-1.2, 0.6, 2.5)]


@pytest.mark.parametrize("wrt", WRT_LISTS, ids=lambda w: "_".join(map(str, w)))
@pytest.mark.parametrize("point", POINTS)
def test_extracted_vjp_and_jvp_agree_with_finite_differences(
    program: Program, wrt: tuple[int, ...], point: tuple[float, float, float]
) -> None:
    config = "_".join(map(str, wrt))
    value, pullback = program.run(f"@vjp_{config}")(*point)
    assert value == pytest.approx(f(*point), rel=1e-15)
    gradient = pullback(1.0)
    gradient = list(gradient) if len(wrt) > 1 else [gradient]
    h = 1e-6
    for i, g in zip(wrt, gradient):
        plus, minus = list(point), list(point)
        plus[i] += h
        minus[i] -= h
        numeric = (f(*plus) - f(*minus)) / (2 * h)
        assert math.isclose(g, numeric, rel_tol=1e-6, abs_tol=1e-8), (wrt, point, i, g, numeric)
    jvp_value, differential = program.run(f"@jvp_{config}")(*point)
    assert jvp_value == value
    tangents = [0.5 - 0.75 * k for k in range(len(wrt))]
    pushed = differential(*tangents)
    expected = sum(t * g for t, g in zip(tangents, gradient))
    assert math.isclose(pushed, expected, rel_tol=1e-12, abs_tol=1e-15), (wrt, point, pushed, expected)


# --- @differentiable function values --------------------------------------------------------------

G = "@convention(thin) (Double, Double) -> Double"
G_BUNDLE = f"@differentiable(reverse) {G}"
USE = f"@convention(thin) ({G_BUNDLE}, Double, Double) -> Double"
USE_BUNDLE = (
    f"@differentiable(reverse) @convention(thin) (@noDerivative {G_BUNDLE}, Double, Double) -> Double"
)
USE_ARGUMENTS = f"@convention(thin) ({G_BUNDLE}, Double, Double)"
USE_JVP = f"{USE_ARGUMENTS} -> (Double, @callee_guaranteed (Double, Double) -> Double)"
USE_VJP = f"{USE_ARGUMENTS} -> (Double, @callee_guaranteed (Double) -> (Double, Double))"

FUNCTION_VALUES = f"""\
sil @g : ${G} {{
bb0(%x : $Double, %y : $Double):
  %s = builtin "sin"(%y : $Double) : $Double
  %r = builtin "fmul"(%x : $Double, %s : $Double) : $Double
  return %r : $Double
}}

// g(g(x, y), x) + g(x, y), calling the original of the value %d.
sil @use : ${USE} {{
bb0(%d : ${G_BUNDLE}, %x : $Double, %y : $Double):
  %o = differentiable_function_extract [original] %d : ${G_BUNDLE}
  %a = apply %o(%x, %y) : ${G}
  %b = apply %o(%a, %x) : ${G}
  %r = builtin "fadd"(%a : $Double, %b : $Double) : $Double
  return %r : $Double
}}

sil @g_bundle : $@convention(thin) () -> {G_BUNDLE} {{
bb0:
  %g = function_ref @g : ${G}
  %d = differentiable_function [parameters 0 1] %g : ${G}
  return %d : ${G_BUNDLE}
}}

sil @use_derivatives : $@convention(thin) () -> ({USE_JVP}, {USE_VJP}) {{
bb0:
  %u = function_ref @use : ${USE}
  %d = differentiable_function [parameters 1 2] %u : ${USE}
  %j = differentiable_function_extract [jvp] %d : ${USE_BUNDLE}
  %v = differentiable_function_extract [vjp] %d : ${USE_BUNDLE}
  %r = tuple (%j : ${USE_JVP}, %v : ${USE_VJP})
  return %r : $({USE_JVP}, {USE_VJP})
}}
"""


def use(x: float, y: float) -> float:
    a = x * math.sin(y)
    return a + a * math.sin(x)


@pytest.mark.parametrize("point", [(0.7, -1.3), (2.1, 0.4)])
def test_calls_of_a_function_values_original_differentiate_through_its_derivatives(
    point: tuple[float, float],
) -> None:
    """Differentiating @use differentiates its calls of %d's original with %d's own [vjp] (reverse)
    and [jvp] (forward), passed in at run time."""
    module = parse(FUNCTION_VALUES, "function_values.sil")
    lower_derivatives(module)
    assert verify_module(module) == []
    program = Program(module, NumpyBackend())
    bundle = program.run("@g_bundle")
    x, y = point
    assert bundle(x, y) == pytest.approx(x * math.sin(y), rel=1e-15)
    _, g_pullback = bundle.extract("vjp")(x, y)
    assert g_pullback(1.0) == pytest.approx((math.sin(y), x * math.cos(y)), rel=1e-15)
    jvp, vjp = program.run("@use_derivatives")
    value, pullback = vjp(bundle, *point)
    assert value == pytest.approx(use(*point), rel=1e-15)
    gradient = pullback(1.0)
    h = 1e-6
    for i, g in enumerate(gradient):
        plus, minus = list(point), list(point)
        plus[i] += h
        minus[i] -= h
        numeric = (use(*plus) - use(*minus)) / (2 * h)
        assert math.isclose(g, numeric, rel_tol=1e-6, abs_tol=1e-8), (point, i, g, numeric)
    jvp_value, differential = jvp(bundle, *point)
    assert jvp_value == value
    tangents = (0.5, -0.25)
    expected = sum(t * g for t, g in zip(tangents, gradient))
    assert math.isclose(differential(*tangents), expected, rel_tol=1e-12, abs_tol=1e-15)


# --- registered derivatives for more parameters than a bundle asks for ---------------------------

H = "@convention(thin) (Double, Double) -> Double"
H_JVP = "@convention(thin) (Double, Double) -> (Double, @callee_guaranteed (Double, Double) -> Double)"
H_VJP = "@convention(thin) (Double, Double) -> (Double, @callee_guaranteed (Double) -> (Double, Double))"
H_DIFFERENTIAL = "@convention(thin) (Double, Double, Double, Double) -> Double"
H_PULLBACK = "@convention(thin) (Double, Double, Double) -> (Double, Double)"

# h(x, y) = x sin(y), with no body: its registered JVP and VJP, for both parameters, say so.
REGISTERED = f"""\
sil [differentiable wrt 0, 1 jvp @h_jvp vjp @h_vjp] @h : ${H}

sil @h_differential : ${H_DIFFERENTIAL} {{
bb0(%dx : $Double, %dy : $Double, %x : $Double, %y : $Double):
  %s = builtin "sin"(%y : $Double) : $Double
  %c = builtin "cos"(%y : $Double) : $Double
  %a = builtin "fmul"(%dx : $Double, %s : $Double) : $Double
  %xc = builtin "fmul"(%x : $Double, %c : $Double) : $Double
  %b = builtin "fmul"(%dy : $Double, %xc : $Double) : $Double
  %r = builtin "fadd"(%a : $Double, %b : $Double) : $Double
  return %r : $Double
}}

sil @h_pullback : ${H_PULLBACK} {{
bb0(%v : $Double, %x : $Double, %y : $Double):
  %s = builtin "sin"(%y : $Double) : $Double
  %c = builtin "cos"(%y : $Double) : $Double
  %dx = builtin "fmul"(%v : $Double, %s : $Double) : $Double
  %xc = builtin "fmul"(%x : $Double, %c : $Double) : $Double
  %dy = builtin "fmul"(%v : $Double, %xc : $Double) : $Double
  %r = tuple (%dx : $Double, %dy : $Double)
  return %r : $(Double, Double)
}}

sil @h_jvp : ${H_JVP} {{
bb0(%x : $Double, %y : $Double):
  %s = builtin "sin"(%y : $Double) : $Double
  %h = builtin "fmul"(%x : $Double, %s : $Double) : $Double
  %f = function_ref @h_differential : ${H_DIFFERENTIAL}
  %df = partial_apply [callee_guaranteed] %f(%x, %y) : ${H_DIFFERENTIAL}
  %r = tuple (%h : $Double, %df : $@callee_guaranteed (Double, Double) -> Double)
  return %r : $(Double, @callee_guaranteed (Double, Double) -> Double)
}}

sil @h_vjp : ${H_VJP} {{
bb0(%x : $Double, %y : $Double):
  %s = builtin "sin"(%y : $Double) : $Double
  %h = builtin "fmul"(%x : $Double, %s : $Double) : $Double
  %f = function_ref @h_pullback : ${H_PULLBACK}
  %pb = partial_apply [callee_guaranteed] %f(%x, %y) : ${H_PULLBACK}
  %r = tuple (%h : $Double, %pb : $@callee_guaranteed (Double) -> (Double, Double))
  return %r : $(Double, @callee_guaranteed (Double) -> (Double, Double))
}}
"""


def bundle_of_h(parameter: int) -> str:
    params = ", ".join("Double" if i == parameter else "@noDerivative Double" for i in range(2))
    bundle = f"@differentiable(reverse) @convention(thin) ({params}) -> Double"
    return f"""
sil @bundle_{parameter} : $@convention(thin) () -> {bundle} {{
bb0:
  %h = function_ref @h : ${H}
  %d = differentiable_function [parameters {parameter}] %h : ${H}
  return %d : ${bundle}
}}
"""


@pytest.mark.parametrize("parameter", [0, 1])
@pytest.mark.parametrize("point", [(0.7, -1.3), (2.1, 0.4)])
def test_a_registered_derivative_for_more_parameters_answers_a_bundle(
    parameter: int, point: tuple[float, float]
) -> None:
    """The bundle's JVP and VJP are thunks over @h's registered ones: the pullback keeps the
    tangent of the parameter asked for, the differential passes a zero tangent for the other."""
    module = parse(REGISTERED + bundle_of_h(parameter), "registered.sil")
    lower_derivatives(module)
    assert verify_module(module) == []
    bundle = Program(module, NumpyBackend()).run(f"@bundle_{parameter}")
    x, y = point
    value, pullback = bundle.extract("vjp")(x, y)
    assert value == pytest.approx(x * math.sin(y), rel=1e-15)
    slope = pullback(1.0)
    h = 1e-6
    plus, minus = list(point), list(point)
    plus[parameter] += h
    minus[parameter] -= h
    numeric = (plus[0] * math.sin(plus[1]) - minus[0] * math.sin(minus[1])) / (2 * h)
    assert math.isclose(slope, numeric, rel_tol=1e-6, abs_tol=1e-8), (parameter, point, slope, numeric)
    jvp_value, differential = bundle.extract("jvp")(x, y)
    assert jvp_value == value
    assert math.isclose(differential(0.5), 0.5 * slope, rel_tol=1e-12, abs_tol=1e-15)


def test_the_answered_bundle_stands_where_the_request_was() -> None:
    """-differentiation replaces a bundle of a function_ref with one naming its derivatives; the
    replacement and its references keep the request's place in the source, so what reports on them
    (--check-derivatives, a fault) points at the line the user wrote."""
    module = parse(ORIGINAL + extracting((0, 1), "vjp"), "bundles.sil")
    (request,) = [
        i for i in module.functions["vjp_0_1"].instructions() if i.opname == "differentiable_function"
    ]
    assert request.span is not None
    start = request.span.start
    PassManager([registered_passes()["differentiation"]()]).run(module)
    (bundle,) = [
        i for i in module.functions["vjp_0_1"].instructions() if i.opname == "differentiable_function"
    ]
    derivatives = [op.owner for op in bundle.operands[1:] if isinstance(op, Result) and op.owner is not None]
    assert len(derivatives) == 2
    assert [i.span.start if i.span else None for i in (bundle, *derivatives)] == [start] * 3
