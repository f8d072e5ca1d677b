"""The CuPy backend: the shared conformance checks, on a GPU. Skipped without CuPy or without a GPU."""

from __future__ import annotations

import pytest

from accel.backend import Backend, BackendUnavailable
from accel.cupy_backend import CupyBackend, load_cupy
from tests.accel.conformance import BackendConformance

pytest.importorskip("cupy", reason="CuPy is not installed (pip install '.[gpu]' on a machine with a GPU)")
try:
    load_cupy()
except BackendUnavailable as exc:
    pytest.skip(f"CuPy is installed but cannot run here: {exc}", allow_module_level=True)


class TestCupyBackend(BackendConformance):
    @pytest.fixture
    def backend(self) -> Backend:
        return CupyBackend()


def test_describe_names_the_gpu() -> None:
    description = CupyBackend().describe()
    assert description.startswith("cupy on ")
    assert len(description) > len("cupy on ")
