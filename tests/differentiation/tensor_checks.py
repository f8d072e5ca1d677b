"""Numerical checks of tensor derivatives in Double: the VJP against central finite differences,
element by element, and the JVP against the VJP (the dot-product identity)."""

from __future__ import annotations

from typing import Any

import numpy as np

from accel.numpy_backend import NumpyBackend
from interp import Program
from sil import parse, print_module, verify_module
from sil.passes import PassManager, registered_passes


def differentiated(text: str) -> Program:
    module = parse(text, "cf.sil")
    PassManager([registered_passes()["differentiation"]()]).run(module)
    assert verify_module(module) == [], print_module(module)
    return Program(module, NumpyBackend())


def inner(a: Any, b: Any) -> float:
    return float(np.sum(np.asarray(a) * np.asarray(b)))


def check(text: str, fn: str, wrt: tuple[int, ...], args: list[Any], seed: int = 0) -> None:
    """The VJP against central differences of ``<ct, f>``, element by element, and the JVP
    against the VJP: ``<J v, ct> == <v, J^T ct>``."""
    program = differentiated(text)
    rng = np.random.default_rng(seed)
    suffix = f"src_0_wrt_{'_'.join(map(str, wrt))}"
    value, pullback = program.run(f"@AD__{fn}__vjp_{suffix}", *args)
    ct = rng.standard_normal(np.shape(value)) if np.ndim(value) else 1.0
    grads = pullback(ct)
    grads = grads if len(wrt) > 1 else (grads,)
    h = 1e-6
    for k, i in enumerate(wrt):
        numeric = np.zeros_like(args[i])
        for index in np.ndindex(*np.shape(args[i])):
            step = np.zeros_like(args[i])
            step[index] = h
            plus = program.run(f"@{fn}", *[a + step if j == i else a for j, a in enumerate(args)])
            minus = program.run(f"@{fn}", *[a - step if j == i else a for j, a in enumerate(args)])
            numeric[index] = (inner(ct, plus) - inner(ct, minus)) / (2 * h)
        assert np.shape(grads[k]) == np.shape(args[i])
        assert np.allclose(grads[k], numeric, rtol=1e-6, atol=1e-8), (k, grads[k], numeric)
    directions = [rng.standard_normal(np.shape(args[i])) for i in wrt]
    _, differential = program.run(f"@AD__{fn}__jvp_{suffix}", *args)
    left = inner(differential(*directions), ct)
    right = sum(inner(v, g) for v, g in zip(directions, grads))
    assert np.isclose(left, right, rtol=1e-10, atol=1e-12)
