"""Tensor backends behind one interface: NumPy on the CPU, CuPy on a GPU."""

from __future__ import annotations

import os

from accel.backend import OPERATIONS, Backend, BackendUnavailable, ShapeError
from accel.cupy_backend import CupyBackend
from accel.numpy_backend import NumpyBackend

__all__ = [
    "BACKEND_NAMES",
    "ENVIRONMENT_VARIABLE",
    "OPERATIONS",
    "Backend",
    "BackendUnavailable",
    "ShapeError",
    "describe_selection",
    "select_backend",
]

BACKEND_NAMES = ("auto", "numpy", "cupy")
ENVIRONMENT_VARIABLE = "SIL_ACCEL"


def _requested(name: str | None) -> tuple[str, str]:
    """The backend name asked for and where it came from: the argument, SIL_ACCEL, or the default."""
    if name is not None:
        if name not in BACKEND_NAMES:
            raise ValueError(f"unknown tensor backend '{name}'; choose one of {', '.join(BACKEND_NAMES)}")
        return name, "auto" if name == "auto" else "requested"
    from_environment = os.environ.get(ENVIRONMENT_VARIABLE)
    if not from_environment:
        return "auto", "auto"
    if from_environment not in BACKEND_NAMES:
        raise ValueError(
            f"unknown tensor backend '{from_environment}' in {ENVIRONMENT_VARIABLE}; "
            f"choose one of {', '.join(BACKEND_NAMES)}"
        )
    return from_environment, f"{ENVIRONMENT_VARIABLE}={from_environment}"


def _construct(requested: str, source: str) -> tuple[Backend, str]:
    """The backend, and why it was chosen (with the reason CuPy was passed over, for auto)."""
    if requested == "numpy":
        return NumpyBackend(), source
    if requested == "cupy":
        return CupyBackend(), source
    try:
        return CupyBackend(), source
    except BackendUnavailable as exc:
        return NumpyBackend(), f"{source}: {exc}"


def select_backend(name: str | None = None) -> Backend:
    """The backend named ``name`` (one of ``BACKEND_NAMES``), or by ``SIL_ACCEL`` when ``name`` is None,
    else auto: CuPy when it imports and sees a GPU, NumPy otherwise.

    An explicit ``cupy`` that cannot run raises BackendUnavailable rather than falling back, so a
    request for the GPU never silently runs on the CPU. An unknown name raises ValueError.
    """
    return _construct(*_requested(name))[0]


def describe_selection(name: str | None = None) -> str:
    """One line for ``silopt --version``: ``accel: numpy (auto: CuPy is not installed)``.

    A backend that was asked for but cannot run is reported, not raised: the line is informational.
    """
    requested, source = _requested(name)
    try:
        backend, why = _construct(requested, source)
    except BackendUnavailable as exc:
        return f"accel: {requested} unavailable ({source}: {exc})"
    return f"accel: {backend.describe()} ({why})"
