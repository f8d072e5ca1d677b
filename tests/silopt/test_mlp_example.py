"""examples/mlp_train.sil, as the README runs it: an MLP trained by SGD written in SIL, on two
moons it makes itself, prints a loss that falls and a good accuracy on points it never saw."""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from accel import BackendUnavailable
from accel.cupy_backend import load_cupy
from silopt.driver import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mlp_train.sil"
REPORT = re.compile(
    r"Report\(loss_every_25_epochs: Tensor<Float>\(shape: \[8\], dtype: float32, \[(?P<losses>[^\]]*)\]\), "
    r"train_accuracy: (?P<train>[0-9.e-]+), test_accuracy: (?P<test>[0-9.e-]+)\)\n"
)


def silopt(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), io.StringIO(""), out, err)
    return status, out.getvalue(), err.getvalue()


def backends() -> list[Any]:
    """NumPy, and CuPy where it runs (``benchmarks/gpu_check.sh`` runs this test on a GPU)."""
    try:
        load_cupy()
    except BackendUnavailable as exc:
        return ["numpy", pytest.param("cupy", marks=pytest.mark.skip(reason=f"CuPy: {exc}"))]
    return ["numpy", "cupy"]


@pytest.mark.parametrize("accel", backends())
def test_training_lowers_the_loss_and_classifies_unseen_points(accel: str) -> None:
    status, out, err = silopt(str(EXAMPLE), "--run", "@train", "--accel", accel)
    assert (status, err) == (0, "")
    report = REPORT.fullmatch(out)
    assert report is not None, out
    losses = [float(x) for x in report["losses"].split(",")]
    assert all(later < earlier for earlier, later in itertools.pairwise(losses)), losses
    assert losses[-1] < losses[0] / 10, losses
    assert float(report["train"]) >= 0.95 and float(report["test"]) >= 0.95, out


def test_its_gradient_checks_out() -> None:
    status, out, err = silopt(str(EXAMPLE), "-differentiation", "--check-derivatives")
    assert (status, err) == (0, ""), err
    assert out.startswith("gradient of @loss") and out.endswith(": ok\n"), out
