"""Choosing a backend (``--accel``, ``SIL_ACCEL``), and the interface every backend implements.

CuPy is simulated: ``sys.modules["cupy"] = None`` makes its import fail, and a stand-in module with
a CUDA runtime that reports GPUs lets auto pick CuPy without one.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from accel import (
    BACKEND_NAMES,
    OPERATIONS,
    Backend,
    BackendUnavailable,
    describe_selection,
    select_backend,
)
from accel.cupy_backend import CupyBackend
from accel.numpy_backend import NumpyBackend

ROOT = Path(__file__).resolve().parent.parent.parent


class FakeRuntime:
    def __init__(self, devices: int | Exception) -> None:
        self.devices = devices

    def getDeviceCount(self) -> int:
        if isinstance(self.devices, Exception):
            raise self.devices
        return self.devices

    def getDevice(self) -> int:
        return 0

    def getDeviceProperties(self, device: int) -> dict[str, Any]:
        return {"name": b"Fake GPU", "totalGlobalMem": 16 * 2**30}


class FakeElementwiseKernel:
    """CuPy's kernel definition, which compiles nothing until the kernel is first called."""

    def __init__(self, in_params: str, out_params: str, operation: str, name: str, preamble: str) -> None:
        self.name = name


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIL_ACCEL", raising=False)


@pytest.fixture
def no_cupy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)


def fake_cupy(monkeypatch: pytest.MonkeyPatch, devices: int | Exception) -> None:
    module = types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=FakeRuntime(devices)), ElementwiseKernel=FakeElementwiseKernel
    )
    monkeypatch.setitem(sys.modules, "cupy", module)


def test_backend_names() -> None:
    assert BACKEND_NAMES == ("auto", "numpy", "cupy")


def test_explicit_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cupy(monkeypatch, devices=1)
    assert isinstance(select_backend("numpy"), NumpyBackend)
    assert describe_selection("numpy") == "accel: numpy (requested)"


@pytest.mark.usefixtures("no_cupy")
@pytest.mark.parametrize("name", [None, "auto"])
def test_auto_falls_back_to_numpy_without_cupy(name: str | None) -> None:
    assert isinstance(select_backend(name), NumpyBackend)
    assert describe_selection(name) == "accel: numpy (auto: CuPy is not installed)"


@pytest.mark.parametrize(
    ("devices", "reason"),
    [(0, "CuPy sees no GPU"), (RuntimeError("cudaErrorNoDevice"), "CuPy sees no GPU (cudaErrorNoDevice)")],
)
def test_auto_falls_back_to_numpy_without_a_gpu(
    monkeypatch: pytest.MonkeyPatch, devices: int | Exception, reason: str
) -> None:
    fake_cupy(monkeypatch, devices)
    assert isinstance(select_backend(), NumpyBackend)
    assert describe_selection() == f"accel: numpy (auto: {reason})"
    with pytest.raises(BackendUnavailable, match="no GPU"):
        select_backend("cupy")


def test_auto_takes_cupy_when_it_sees_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cupy(monkeypatch, devices=1)
    backend = select_backend()
    assert isinstance(backend, CupyBackend)
    assert backend.memory == 16 * 2**30  # tensors are measured against the device's memory
    assert describe_selection() == "accel: cupy on Fake GPU (auto)"
    assert describe_selection("cupy") == "accel: cupy on Fake GPU (requested)"


@pytest.mark.usefixtures("no_cupy")
def test_explicit_cupy_without_cupy_raises() -> None:
    with pytest.raises(BackendUnavailable, match="CuPy is not installed"):
        select_backend("cupy")
    assert describe_selection("cupy") == "accel: cupy unavailable (requested: CuPy is not installed)"


class BrokenCupyFinder:
    """Finds a CuPy whose import fails, as one does when a CUDA library is missing."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "cupy":
            raise ImportError("libcudart.so.12: cannot open shared object file")


def test_a_broken_cupy_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    monkeypatch.setattr(sys, "meta_path", [BrokenCupyFinder(), *sys.meta_path])
    with pytest.raises(BackendUnavailable) as caught:
        select_backend("cupy")
    assert str(caught.value) == "CuPy failed to import: libcudart.so.12: cannot open shared object file"
    assert describe_selection().startswith("accel: numpy (auto: CuPy failed to import: libcudart.so.12")


def test_sil_accel_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cupy(monkeypatch, devices=1)
    monkeypatch.setenv("SIL_ACCEL", "numpy")
    assert isinstance(select_backend(), NumpyBackend)
    assert describe_selection() == "accel: numpy (SIL_ACCEL=numpy)"
    monkeypatch.setenv("SIL_ACCEL", "cupy")
    assert isinstance(select_backend(), CupyBackend)
    assert isinstance(select_backend("numpy"), NumpyBackend), "an explicit name overrides SIL_ACCEL"


@pytest.mark.usefixtures("no_cupy")
def test_sil_accel_auto_and_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIL_ACCEL", "auto")
    assert describe_selection() == "accel: numpy (SIL_ACCEL=auto: CuPy is not installed)"
    monkeypatch.setenv("SIL_ACCEL", "")
    assert describe_selection() == "accel: numpy (auto: CuPy is not installed)"


@pytest.mark.usefixtures("no_cupy")
def test_sil_accel_cupy_without_cupy_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIL_ACCEL", "cupy")
    with pytest.raises(BackendUnavailable, match="CuPy is not installed"):
        select_backend()


@pytest.mark.parametrize("name", ["gpu", "NumPy", ""])
def test_unknown_names_raise(name: str) -> None:
    with pytest.raises(ValueError, match=f"unknown tensor backend '{name}'; choose one of auto, numpy, cupy"):
        select_backend(name)
    with pytest.raises(ValueError, match="choose one of"):
        describe_selection(name)


def test_unknown_sil_accel_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIL_ACCEL", "tpu")
    with pytest.raises(ValueError, match="unknown tensor backend 'tpu' in SIL_ACCEL; choose one of auto"):
        select_backend()


def test_importing_accel_does_not_import_cupy() -> None:
    check = "import sys, accel; accel.select_backend('numpy'); assert 'cupy' not in sys.modules"
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("backend_class", [NumpyBackend, CupyBackend], ids=lambda c: c.name)
def test_every_operation_is_implemented(backend_class: type[Backend]) -> None:
    assert not backend_class.__abstractmethods__
    for name in OPERATIONS:
        method = getattr(backend_class, name)
        assert callable(method)
        assert not getattr(method, "__isabstractmethod__", False), name
        assert method is not getattr(Backend, name), name


def test_op_resolves_every_operation_and_rejects_others() -> None:
    backend = NumpyBackend()
    for name in OPERATIONS:
        assert backend.op(name) == getattr(backend, name)
    with pytest.raises(KeyError, match="no tensor operation 'fcmp_olt'"):
        backend.op("fcmp_olt")
