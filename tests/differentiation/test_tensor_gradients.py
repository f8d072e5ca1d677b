"""Tensor derivatives checked numerically beyond --check-derivatives' random directions: the
golden tensor case, in Double, against central finite differences element by element, and the
dot-product identity between its JVP and VJP."""

from __future__ import annotations

import numpy as np

from accel.numpy_backend import NumpyBackend
from golden.harness import GOLDEN
from interp import Program
from sil import parse, verify_module
from sil.passes import PassManager, registered_passes
from silopt import driver  # noqa: F401  (registers the differentiation passes)
from tests.differentiation.tensor_checks import check


def differentiated_in_double() -> Program:
    text = (GOLDEN / "differentiation" / "tensors.sil").read_text(encoding="utf-8").replace("Float", "Double")
    module = parse(text, "tensors.sil")
    PassManager([registered_passes()["differentiation"]()]).run(module)
    assert verify_module(module) == []
    return Program(module, NumpyBackend())


def test_layer_mean_gradient_matches_finite_differences() -> None:
    program = differentiated_in_double()
    rng = np.random.default_rng(5)
    w, x, bias = rng.standard_normal((3, 4)) * 0.5, rng.standard_normal((2, 3)), 0.3
    _, pullback = program.run("@AD__layer_mean__vjp_src_0_wrt_0", w, x, bias)
    gradient = np.asarray(pullback(1.0))
    assert gradient.shape == w.shape
    h = 1e-6
    numeric = np.zeros_like(w)
    for index in np.ndindex(*w.shape):
        step = np.zeros_like(w)
        step[index] = h
        plus = program.run("@layer_mean", w + step, x, bias)
        minus = program.run("@layer_mean", w - step, x, bias)
        numeric[index] = (plus - minus) / (2 * h)
    assert np.allclose(gradient, numeric, rtol=1e-6, atol=1e-9)


def test_layer_mean_jvp_and_vjp_agree() -> None:
    program = differentiated_in_double()
    rng = np.random.default_rng(6)
    w, x, bias = rng.standard_normal((3, 4)) * 0.5, rng.standard_normal((2, 3)), -0.2
    v, seed = rng.standard_normal((3, 4)), 0.7
    _, differential = program.run("@AD__layer_mean__jvp_src_0_wrt_0", w, x, bias)
    _, pullback = program.run("@AD__layer_mean__vjp_src_0_wrt_0", w, x, bias)
    left = differential(v) * seed
    right = float(np.sum(v * np.asarray(pullback(seed))))
    assert np.isclose(left, right, rtol=1e-12)


def test_bias_add_gradients_match_finite_differences() -> None:
    """golden/differentiation/bias_add.sil in Double: the bias broadcast over the batch, explicitly
    and by fadd, with respect to the weights and the bias."""
    text = (
        (GOLDEN / "differentiation" / "bias_add.sil").read_text(encoding="utf-8").replace("Float", "Double")
    )
    rng = np.random.default_rng(7)
    w, b, x = rng.standard_normal((3, 4)) * 0.5, rng.standard_normal(4), rng.standard_normal((5, 3))
    for fn in ("dense", "dense_implicit"):
        check(text, fn, (0, 1), [w, b, x])
