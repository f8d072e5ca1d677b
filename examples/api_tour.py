"""A tour of the workbench from Python, notebook style: load a model, differentiate it, check the
derivatives, train it a little, apply a pass and print what came of it.

    python3 examples/api_tour.py
"""

from __future__ import annotations

from pathlib import Path

import silopt

HERE = Path(__file__).resolve().parent

# %% Load the one-neuron regression of examples/regression.sil (a Path is always read as a file).
wb = silopt.load(HERE / "regression.sil")
print(wb)
print("loss at (0.5, 0):", wb.run("loss", 0.5, 0.0))

# %% Its gradient, as jax.grad gives it: one tangent per parameter differentiated.
grad = wb.grad("loss")
dw, db = grad(0.5, 0.0)
print("gradient:", dw, db)

# %% The pullback and the differential: the dot-product identity <J v, w> = <v, J^T w>.
value, pullback = wb.vjp("loss", 0.5, 0.0)
_, jv = wb.jvp("loss", (0.5, 0.0), (0.3, -0.7))
cw, cb = pullback(2.0)
print("<J v, w> =", jv * 2.0, " <v, J^T w> =", 0.3 * cw - 0.7 * cb)

# %% Checked as silopt --check-derivatives checks: finite differences, and JVP against VJP.
print(wb.check_grads("loss", at=(0.5, 0.0)).line())
print(wb.check_grads("loss").line())

# %% Train: twenty steps of gradient descent (rate 0.2) from Python, with value_and_grad.
step = wb.value_and_grad("loss")
w, b = 0.5, 0.0
for _ in range(20):
    loss, (gw, gb) = step(w, b)
    w, b = w - 0.2 * gw, b - 0.2 * gb
print(f"after 20 steps: w = {w:.4f}, b = {b:.4f}, loss = {wb.run('loss', w, b):.3e}")

# %% A pass gives a new workbench; the module it prints is canonical SIL.
polynomial = silopt.load(HERE / "polynomial.sil").apply_passes(["dce"])
print(polynomial.text())
print("d poly / d(x, y) at (2, 0.5):", polynomial.grad("poly")(2.0, 0.5))
