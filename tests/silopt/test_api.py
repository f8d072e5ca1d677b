"""The workbench from Python (``silopt.load``): each method checked numerically (gradients against
finite differences in Float64, VJPs against JVPs by the dot-product identity), derivatives made
once per request, the loaded module left as loaded, and located errors for what a user gets wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import silopt
from differentiation.differentiator import Differentiator
from sil.diagnostics import SILError
from silopt import GradientCheckError, Workbench, load
from silopt.driver import main

ROOT = Path(__file__).resolve().parents[2]
REGRESSION = ROOT / "examples" / "regression.sil"

TENSORS = """sil_stage canonical

// tanh(x W) summed: a tensor function of two tensors, and its scalar loss.
sil @layer : $@convention(thin) (Tensor<Double>, Tensor<Double>) -> Tensor<Double> {
bb0(%x : $Tensor<Double>, %w : $Tensor<Double>):
  %xw = builtin "matmul"(%x : $Tensor<Double>, %w : $Tensor<Double>) : $Tensor<Double>
  %a = builtin "tanh"(%xw : $Tensor<Double>) : $Tensor<Double>
  return %a : $Tensor<Double>
}

sil @loss : $@convention(thin) (Tensor<Double>, Tensor<Double>) -> Double {
bb0(%x : $Tensor<Double>, %w : $Tensor<Double>):
  %f = function_ref @layer : $@convention(thin) (Tensor<Double>, Tensor<Double>) -> Tensor<Double>
  %a = apply %f(%x, %w) : $@convention(thin) (Tensor<Double>, Tensor<Double>) -> Tensor<Double>
  %s = builtin "sum"(%a : $Tensor<Double>) : $Double
  return %s : $Double
}
"""


def central_differences(f: Any, args: list[Any], i: int, h: float = 1e-6) -> Any:
    """The gradient of the scalar ``f`` in argument ``i`` (a float or an array), in Float64."""
    x = np.asarray(args[i], dtype=np.float64)
    grad = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[k] = h
        plus = [*args[:i], x + step if x.shape else float(x + step), *args[i + 1 :]]
        minus = [*args[:i], x - step if x.shape else float(x - step), *args[i + 1 :]]
        grad[k] = (f(*plus) - f(*minus)) / (2 * h)
    return grad


def test_loading_a_path_a_str_path_or_text_gives_the_same_module() -> None:
    text = REGRESSION.read_text(encoding="utf-8")
    printed = [load(REGRESSION).text(), load(str(REGRESSION)).text(), load(text).text()]
    assert printed[0] == printed[1] == printed[2]
    assert "sil [differentiable source 0 wrt 0, 1] @loss" in printed[0]
    assert load(REGRESSION).functions == ["loss", "step"]


def test_text_prints_what_silopt_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(REGRESSION)]) == 0
    assert load(REGRESSION).text() == capsys.readouterr().out


def test_run_takes_and_gives_python_values_and_lowers_what_it_reaches() -> None:
    wb = load(REGRESSION)
    before = wb.text()
    w, b, loss = wb.run("@step", 0.5, 0.0)  # @step holds a gradient: lowered on demand
    dw, db = wb.grad("loss")(0.5, 0.0)
    assert (w, b) == pytest.approx((0.5 - 0.5 * dw, 0.0 - 0.5 * db))
    assert loss == pytest.approx(wb.run("loss", 0.5, 0.0))
    assert wb.text() == before  # what was lowered and made is the private copy's
    assert "gradient [wrt 0, 1]" in wb.text()
    made = wb.text(derivatives=True)
    assert "@AD__loss__grad_src_0_wrt_0_1" in made and "gradient [" not in made


@pytest.mark.parametrize("wrt", [None, (0, 1), 0, 1, (1,)])
def test_grad_agrees_with_finite_differences(wrt: Any) -> None:
    wb = load(REGRESSION)
    at = [0.5, -0.25]
    grad = wb.grad("loss", wrt=wrt)(*at)
    loss = wb.run
    chosen = [0, 1] if wrt is None else [wrt] if isinstance(wrt, int) else list(wrt)
    expected = [central_differences(lambda *a: loss("loss", *a), at, i) for i in chosen]
    if len(chosen) == 1:
        assert isinstance(grad, float)
        assert grad == pytest.approx(float(expected[0]), rel=1e-7)
    else:
        assert isinstance(grad, tuple)
        assert grad == pytest.approx(tuple(map(float, expected)), rel=1e-7)


def test_value_and_grad_gives_the_value_too() -> None:
    wb = load(REGRESSION)
    value, grad = wb.value_and_grad("loss")(0.5, -0.25)
    assert value == wb.run("loss", 0.5, -0.25)
    assert grad == wb.grad("loss")(0.5, -0.25)
    assert wb.value_and_grad("loss", wrt=1)(0.5, -0.25) == (value, grad[1])


def test_tensors_in_and_out_and_the_gradient_of_a_tensor_parameter() -> None:
    wb = load(TENSORS)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    out = wb.run("layer", x, w)
    assert isinstance(out, np.ndarray) and out.shape == (4, 2)
    np.testing.assert_allclose(out, np.tanh(x @ w))
    dw = wb.grad("loss", wrt=1)(x, w)
    assert isinstance(dw, np.ndarray) and dw.shape == w.shape
    expected = central_differences(lambda *a: wb.run("loss", *a), [x, w], 1)
    np.testing.assert_allclose(dw, expected, rtol=1e-6, atol=1e-8)


def test_vjp_and_jvp_satisfy_the_dot_product_identity() -> None:
    wb = load(TENSORS)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    v = (rng.standard_normal(x.shape), rng.standard_normal(w.shape))
    ct = rng.standard_normal((4, 2))
    value, tangent = wb.jvp("layer", (x, w), v)
    value2, pullback = wb.vjp("layer", x, w)
    np.testing.assert_array_equal(value, value2)
    cx, cw = pullback(ct)
    left = float(np.sum(tangent * ct))
    right = float(np.sum(v[0] * cx) + np.sum(v[1] * cw))
    assert left == pytest.approx(right, rel=1e-12)
    # and the JVP is the derivative: against central differences along v
    h = 1e-6
    plus, minus = wb.run("layer", x + h * v[0], w + h * v[1]), wb.run("layer", x - h * v[0], w - h * v[1])
    np.testing.assert_allclose(tangent, (plus - minus) / (2 * h), rtol=1e-6, atol=1e-8)


def test_one_wrt_gives_a_bare_tangent_and_jvp_takes_one_tangent_per_wrt() -> None:
    wb = load(REGRESSION)
    _, pullback = wb.vjp("loss", 0.5, -0.25, wrt=1)
    db = pullback(1.0)
    assert isinstance(db, float) and db == pytest.approx(wb.grad("loss")(0.5, -0.25)[1])
    _, tangent = wb.jvp("loss", (0.5, -0.25), (1.0,), wrt=(1,))
    assert tangent == pytest.approx(db)


def test_check_grads_passes_on_right_derivatives_and_returns_the_outcome() -> None:
    outcome = load(REGRESSION).check_grads("loss", at=(0.5, -0.25))
    assert outcome.passed
    assert outcome.line().startswith("@loss (source 0 wrt 0, 1): JVP vs finite differences")
    assert load(TENSORS).check_grads("loss").passed  # at points drawn, tensors 3x3


def test_check_grads_raises_with_the_values_when_they_disagree() -> None:
    wb = load(ROOT / "golden" / "differentiation" / "check_wrong_vjp.sil")
    with pytest.raises(GradientCheckError) as failure:
        wb.check_grads("cube", at=(1.5,))
    message = str(failure.value)
    assert isinstance(failure.value, AssertionError)
    assert "check_wrong_vjp.sil:23:57: error: the derivatives of @cube (source 0 wrt 0) disagree" in message
    assert "JVP vs VJP: at @cube(1.5) along" in message and "<v, Jᵀ·w> = " in message
    assert not failure.value.outcome.passed


def test_a_derivative_is_made_once_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    contexts: list[Differentiator] = []
    original_init = Differentiator.__init__

    def counting(self: Differentiator, *args: Any) -> None:
        contexts.append(self)
        original_init(self, *args)

    monkeypatch.setattr(Differentiator, "__init__", counting)
    wb = load(REGRESSION)
    first = wb.grad("loss")(0.5, 0.0)
    made = len(contexts)
    assert made > 0
    assert wb.grad("@loss")(0.5, 0.0) == first  # the same request, with or without '@'
    wb.grad("loss", wrt=(0, 1))(0.25, 0.0)
    _, pullback = wb.vjp("loss", 0.5, 0.0)
    pullback(1.0)
    after_vjp = len(contexts)
    assert made == len(contexts) - (after_vjp - made)
    wb.vjp("loss", 0.25, 0.0)
    assert len(contexts) == after_vjp
    wb.grad("loss", wrt=0)  # another request: made once more
    assert len(contexts) > after_vjp


def test_apply_passes_gives_a_new_workbench_and_leaves_this_one() -> None:
    wb = load(ROOT / "examples" / "polynomial.sil")
    grad = wb.grad("poly")
    optimized = wb.apply_passes(["dce"])
    assert isinstance(optimized, Workbench)
    assert '"sin"' in wb.text() and '"sin"' not in optimized.text()
    assert grad(2.0, 0.5) == optimized.grad("poly")(2.0, 0.5) == pytest.approx((2.0, 4.0))
    differentiated = optimized.apply_passes(["differentiation", "lower-gradient"])
    assert "AD__poly__vjp_src_0_wrt_0_1" in differentiated.functions
    assert differentiated.run("@AD__poly__jvp_src_0_wrt_0_1", 2.0, 0.5)[1](1.0, 0.0) == pytest.approx(2.0)


def test_an_unknown_pass_gets_did_you_mean() -> None:
    with pytest.raises(SILError, match="no pass is named 'lower-gradiant'; did you mean 'lower-gradient'"):
        load(REGRESSION).apply_passes(["dce", "lower-gradiant"])


def test_an_unknown_function_gets_did_you_mean() -> None:
    wb = load(REGRESSION)
    for call in (lambda: wb.run("los", 1.0, 2.0), lambda: wb.grad("@los"), lambda: wb.vjp("los")):
        with pytest.raises(SILError, match="has no function '@los'; did you mean '@loss'"):
            call()


def test_wrong_arity_is_located_at_the_function() -> None:
    wb = load(REGRESSION)
    for call in (lambda: wb.run("loss", 1.0), lambda: wb.grad("loss")(1.0), lambda: wb.vjp("loss", 1.0)):
        with pytest.raises(SILError) as error:
            call()
        header = (
            "sil [differentiable source 0 wrt 0, 1] @loss : $@convention(thin) (Double, Double) -> Double {"
        )
        column = header.index("@loss") + 1
        assert str(error.value) == (
            f"{REGRESSION}:8:{column}: error: '@loss' takes 2 arguments (Double, Double), but is given 1\n"
            f"{header}\n{' ' * (column - 1)}^"
        )
    with pytest.raises(SILError, match=r"with respect to 2 parameters \(wrt\), but jvp is given 1 tangents"):
        wb.jvp("loss", (1.0, 2.0), (1.0,))


def test_bad_source_raises_the_located_diagnostics() -> None:
    with pytest.raises(SILError) as error:
        load(
            "sil_stage canonical\n\nsil @f : $@convention(thin) (Double) -> Double {\nbb0(%x : $Double):\n"
            "  return %y : $Double\n}\n",
            name="broken.sil",
        )
    assert str(error.value).startswith("broken.sil:5:")
    assert "%y" in str(error.value) and "\n" + " " * 9 + "^" in str(error.value)


def test_a_missing_file_raises_os_error() -> None:
    with pytest.raises(FileNotFoundError):
        load("no/such/model.sil")


def test_what_cannot_be_differentiated_is_reported_where_it_is() -> None:
    source = (
        "sil_stage canonical\n\n"
        "sil @f : $@convention(thin) (Double) -> Double {\n"
        "bb0(%x : $Double):\n"
        '  %i = builtin "fptosi"(%x : $Double) : $Int\n'
        '  %r = builtin "sitofp"(%i : $Int) : $Double\n'
        "  return %r : $Double\n}\n"
    )
    wb = load(source, name="truncate.sil")
    for call in (lambda: wb.grad("f"), lambda: wb.vjp("f", 1.0), lambda: wb.jvp("f", (1.0,), (1.0,))):
        with pytest.raises(SILError) as error:
            call()
        assert str(error.value).startswith("truncate.sil:5:")
        assert "not differentiable" in str(error.value)
    assert wb.run("f", 1.5) == 1.0  # the failed requests left nothing behind that stops a run
    with pytest.raises(SILError) as error:
        wb.grad("f", wrt=3)
    assert str(error.value).startswith(
        "truncate.sil:3:5: error: cannot differentiate '@f': 'wrt' index 3 is out"
    )


def test_grad_of_a_tensor_result_asks_for_vjp() -> None:
    with pytest.raises(
        SILError, match="grad needs a function of one Float or Double result, and '@layer' gives"
    ):
        load(TENSORS).grad("layer")


def test_the_package_exports_the_api() -> None:
    assert silopt.load is load and silopt.Workbench is Workbench
    assert {"load", "Workbench", "GradientCheckError"} <= set(silopt.__all__)
