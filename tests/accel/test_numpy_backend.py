"""The NumPy backend: the shared conformance checks, and its silence about floating-point errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from accel.backend import Backend
from accel.numpy_backend import NumpyBackend
from tests.accel.conformance import BackendConformance

ROOT = Path(__file__).resolve().parent.parent.parent


class TestNumpyBackend(BackendConformance):
    @pytest.fixture
    def backend(self) -> Backend:
        return NumpyBackend()


def test_describe() -> None:
    assert NumpyBackend().describe() == "numpy"


def test_floating_point_errors_print_nothing() -> None:
    """Outside pytest's warning capture: what a user of ``silopt --run`` would see on stderr."""
    program = (
        "import numpy as np\n"
        "from accel.numpy_backend import NumpyBackend\n"
        "b = NumpyBackend()\n"
        "x = b.from_host(np.array([3e38, 0.0, -1.0]), np.float32)\n"
        "b.exp(b.fadd(x, x)); b.log(x); b.sqrt(x); b.fdiv(x, np.float32(0)); b.sum(b.fmul(x, x))\n"
        "b.mean(b.zeros(np.float32, 0)); b.from_host(np.array([1e300]), np.float32)\n"
        "b.step(b.sqrt(x)); b.sign(b.sqrt(x)); b.unbroadcast(b.fmul(x, x), 1)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
