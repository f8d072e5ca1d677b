"""Second derivatives: a gradient is an ordinary function, and both modes differentiate it
again. Forward over reverse (the JVP of the gradient: Hessian-vector products) and reverse over
reverse (the VJP of the gradient) give the same Hessian, which is symmetric and matches central
differences of the first derivatives.

With ``-O`` in between, the gradient is straight-line code when it is differentiated again;
without, it applies its pullback, a closure over the point, which the second -differentiation
defunctionalizes first (``golden/differentiation/second_order/gradient_of_gradient_unoptimized``).
The four compositions on the golden cases are ``test_higher_order.py``'s."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from silopt.api import Workbench, load
from silopt.driver import main

ROOT = Path(__file__).resolve().parents[2]

SOURCE = """
sil @f : $@convention(thin) (Double, Double, Double) -> Double {
bb0(%x : $Double, %y : $Double, %z : $Double):
  %s = builtin "sin"(%y : $Double) : $Double
  %a = builtin "fmul"(%x : $Double, %s : $Double) : $Double
  %xy = builtin "fmul"(%x : $Double, %y : $Double) : $Double
  %e = builtin "exp"(%xy : $Double) : $Double
  %b = builtin "fdiv"(%e : $Double, %z : $Double) : $Double
  %l = builtin "log"(%z : $Double) : $Double
  %c = builtin "fmul"(%l : $Double, %x : $Double) : $Double
  %t = builtin "fadd"(%a : $Double, %b : $Double) : $Double
  %r = builtin "fsub"(%t : $Double, %c : $Double) : $Double
  return %r : $Double
}

sil @main : $@convention(thin) (Double, Double, Double) -> (Double, Double, Double) {
bb0(%x : $Double, %y : $Double, %z : $Double):
  %f = function_ref @f : $@convention(thin) (Double, Double, Double) -> Double
  %g = gradient [wrt 0, 1, 2] %f : $@convention(thin) (Double, Double, Double) -> Double
  %r = apply %g(%x, %y, %z) : $@convention(thin) (Double, Double, Double) -> (Double, Double, Double)
  return %r : $(Double, Double, Double)
}
"""
POINTS = [(0.7, 0.4, 1.3), (-0.5, 1.1, 0.6), (1.2, -0.8, 2.0)]


@pytest.fixture(scope="module")
def gradient() -> Workbench:
    """``@main``, the gradient of ``@f``, lowered and optimized into straight-line code."""
    return load(SOURCE).apply_passes(["differentiation", "lower-gradient", "O"])


def hessian_forward_over_reverse(gradient: Workbench, point: tuple[float, ...]) -> Any:
    columns = [gradient.jvp("main", point, tuple(np.eye(3)[j]))[1] for j in range(3)]
    return np.array(columns).T


def hessian_reverse_over_reverse(gradient: Workbench, point: tuple[float, ...]) -> Any:
    _, pullback = gradient.vjp("main", *point)
    return np.array([pullback(tuple(np.eye(3)[i])) for i in range(3)])


def hessian_by_differences(gradient: Workbench, point: tuple[float, ...], h: float = 1e-5) -> Any:
    columns = []
    for j in range(3):
        step = h * np.eye(3)[j]
        plus = np.array(gradient.run("main", *(np.array(point) + step)))
        minus = np.array(gradient.run("main", *(np.array(point) - step)))
        columns.append((plus - minus) / (2 * h))
    return np.array(columns).T


def test_the_gradient_is_straight_line_code(gradient: Workbench) -> None:
    text = gradient.text()
    assert "partial_apply" not in text and "AD__" not in text
    assert "\nbb1" not in text  # each function one block


@pytest.mark.parametrize("point", POINTS)
def test_both_compositions_give_the_symmetric_hessian_of_finite_differences(
    gradient: Workbench, point: tuple[float, ...]
) -> None:
    forward = hessian_forward_over_reverse(gradient, point)
    reverse = hessian_reverse_over_reverse(gradient, point)
    numeric = hessian_by_differences(gradient, point)
    np.testing.assert_allclose(forward, reverse, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(forward, forward.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(forward, numeric, rtol=1e-6, atol=1e-8)


def _silopt(argv: list[str]) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    status = main(argv, io.StringIO(""), stdout, stderr)
    return status, stdout.getvalue(), stderr.getvalue()


UNOPTIMIZED = str(
    ROOT / "golden" / "differentiation" / "second_order" / "gradient_of_gradient_unoptimized.sil"
)


def test_a_gradient_of_a_gradient_is_right_with_or_without_O_in_between() -> None:
    """Without -O, the second -differentiation defunctionalizes the gradient (its VJP returns the
    pullback's record, which the gradient passes to the pullback) and differentiates that; with
    -O, the closure is gone before. Both give (x sin x)'' exactly as written by hand."""
    x = 0.5
    for between in ([], ["-O"]):
        twice = ["-differentiation", "-lower-gradient", *between, "-differentiation", "-lower-gradient"]
        status, out, error = _silopt([UNOPTIMIZED, *twice, "--run", "@main", "--args", str(x)])
        assert (status, error) == (0, "")
        assert math.isclose(float(out), 2 * math.cos(x) - x * math.sin(x), rel_tol=1e-12)


CLOSURE_O_REMOVES = """
sil @scale : $@convention(thin) (Double, Double) -> Double {
bb0(%k : $Double, %x : $Double):
  %r = builtin "fmul"(%k : $Double, %x : $Double) : $Double
  return %r : $Double
}

sil @make : $@convention(thin) (Double) -> @callee_guaranteed (Double) -> Double {
bb0(%x : $Double):
  %s = function_ref @scale : $@convention(thin) (Double, Double) -> Double
  %c = partial_apply [callee_guaranteed] %s(%x) : $@convention(thin) (Double, Double) -> Double
  return %c : $@callee_guaranteed (Double) -> Double
}

sil @f : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %m = function_ref @make : $@convention(thin) (Double) -> @callee_guaranteed (Double) -> Double
  %c = apply %m(%x) : $@convention(thin) (Double) -> @callee_guaranteed (Double) -> Double
  %three = float_literal $Double, 3.0
  %r = apply %c(%three) : $@callee_guaranteed (Double) -> Double
  return %r : $Double
}

sil @g : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %f = function_ref @f : $@convention(thin) (Double) -> Double
  %grad = gradient [wrt 0] %f : $@convention(thin) (Double) -> Double
  %d = apply %grad(%x) : $@convention(thin) (Double) -> Double
  return %d : $Double
}
"""


def test_a_closure_a_callee_returns_is_differentiated_as_it_is_or_after_O(tmp_path: Path) -> None:
    """A closure over the differentiated parameter, made by a callee and applied by the caller:
    -O removes it before differentiation; without, -differentiation makes @make return what the
    closure binds and @f call @scale with it. The gradient of 3x is 3 either way."""
    source = tmp_path / "closure.sil"
    source.write_text(CLOSURE_O_REMOVES, encoding="utf-8")
    for passes in (["-O"], ["-differentiation", "-lower-gradient"]):
        status, out, error = _silopt([str(source), *passes, "--run", "@g", "--args", "2.0"])
        assert (status, error, float(out)) == (0, "", 3.0)


NEWTON = str(ROOT / "examples" / "newton_hessian.sil")
SECOND_ORDER = ["-differentiation", "-lower-gradient", "-differentiation", "-lower-gradient"]
OPTIMIZED_BETWEEN = ["-differentiation", "-lower-gradient", "-O", "-differentiation", "-lower-gradient"]


def _rosenbrock_newton(point: tuple[float, float]) -> tuple[float, float]:
    """One Newton step on Rosenbrock's function with its gradient and Hessian written by hand."""
    x, y = point
    g = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
    h = np.array([[2 - 400 * (y - 3 * x * x), -400 * x], [-400 * x, 200.0]])
    step = np.linalg.solve(h, -g)
    return float(x + step[0]), float(y + step[1])


@pytest.mark.parametrize("passes", [SECOND_ORDER, OPTIMIZED_BETWEEN], ids=["as made", "-O between"])
def test_newton_with_hessian_vector_products_converges_as_newton_does(passes: list[str]) -> None:
    """``examples/newton_hessian.sil``: each step, conjugate gradients on exact Hessian-vector
    products (the JVP of the gradient), is the Newton step of the hand-written Hessian; from
    (-1.2, 1) the iterates are Newton's, and the error squares in the last steps."""
    expected = [(-1.2, 1.0)]
    for _ in range(7):
        expected.append(_rosenbrock_newton(expected[-1]))
    errors = []
    for n in range(1, 8):
        status, out, err = _silopt([NEWTON, *passes, "--run", "@newton", "--args", "-1.2", "1.0", str(n)])
        assert (status, err) == (0, "")
        got = tuple(float(v) for v in out.strip("()\n").split(", "))
        np.testing.assert_allclose(got, expected[n], rtol=1e-9, atol=1e-12)
        errors.append(math.hypot(got[0] - 1.0, got[1] - 1.0))
    assert errors[-1] == 0.0  # (1, 1) to the last bit after seven steps
    # Quadratic from step 4 on: errors 5.6e-2, 9.6e-6, 1.9e-11, each below the square of the last.
    assert errors[3] > 1e-2 and errors[5] < 1e-10
    assert errors[4] < errors[3] ** 2 and errors[5] < errors[4] ** 2


def test_newton_s_derivatives_verify() -> None:
    status, _, err = _silopt([NEWTON, *SECOND_ORDER, "--verify-derivatives"])
    assert (status, err) == (0, "")
