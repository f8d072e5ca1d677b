"""Random points and directions of SIL types, and derivatives estimated by finite differences,
for ``silopt --check-derivatives``.

The estimate along a direction v is Richardson's extrapolation of central differences at steps
h, h/2 and h/4: R = (4 D(h/4) - D(h/2)) / 3, whose truncation error is O(h^4). It is trusted only
where the function shows itself smooth over the steps: the extrapolation from (h, h/2) must agree
with the one from (h/2, h/4), and the second differences (f(x+s) - 2 f(x) + f(x-s)) / s^2 must
agree across the steps (their disagreement, times the smallest step, is the error a kink or a
branch within the steps puts into the quotients). Where they do not, the step shrinks (by 4, up
to three times) while rounding allows; if the estimates still do not settle, the point is near
a kink (``fmax``, ``abs``, a branch) and the caller draws another. The kinks thus report
themselves through the function's own values, at the cost of seven runs per estimate.

Tolerances, as relative errors |a - b| / max(1, |a|, |b|) (absolute below 1, as derivatives near
zero have no relative scale):
- Double: 1e-6. An estimate's rounding error is about 6 u |f| / h with u = 2^-53 (1e-12 at
  h = 1e-3), its truncation error about h^4 |f^(5)| (1e-12 for unit derivatives): the tolerance
  leaves six orders for long computations and steep functions, and a wrong derivative (a missing
  term, a wrong factor) is off by far more.
- Float: 5e-3. Each Float operation rounds to binary32 (u = 2^-24 = 6e-8), so the function itself
  is only good to about k u for k operations, and the quotients divide that by the step:
  6 k u |f| / h is 2e-5 k |f| at h = 2e-2. The step grows where |f| is large against its
  derivative so that the rounding of a few operations (k = 4) stays below half the tolerance;
  past the largest step (0.25) the function cannot be checked in Float at that point. Rounding
  beyond that shows as quotients that disagree: the point is drawn again, never a false alarm.
- The dot-product identity <J v, w> = <v, J^T w> holds up to rounding of the two derivative
  computations alone: 1e-9 (Double) and 1e-4 (Float).
Dot products (the identity, and a VJP's <v, J^T w> against the differences' <D v, w>) are
measured relative to the sum of the magnitudes of their products, so that cancellation in a sum
raises no alarm.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from interp.values import struct_class
from sil.ir import Module, StructDecl
from sil.types import BOOL, DOUBLE, FLOAT, INT, ScalarType, TensorType, TupleType, Type

FD_TOLERANCE = {DOUBLE: 1e-6, FLOAT: 5e-3}
IDENTITY_TOLERANCE = {DOUBLE: 1e-9, FLOAT: 1e-4}
STEP = {DOUBLE: 1e-3, FLOAT: 2e-2}
UNIT_ROUNDOFF = {DOUBLE: 2.0**-53, FLOAT: 2.0**-24}
ROUNDINGS = 4  # the roundings a value is assumed to carry, for the choice of step
MAX_STEP = 0.25  # points are drawn in [0.3, 1.5]: a larger step leaves that range
SHRINKS = 3
TENSOR_SHAPE = (3, 3)  # square, so that elementwise operations and matmul both fit


class CannotDraw(Exception):
    """A type --check-derivatives cannot draw values of (an enum, a function, a shape)."""


class Draw:
    """Random points of SIL types and random tangents at them, as the Python values
    ``Program.run`` takes: Float and Double (uniform in [0.3, 1.5], away from the singularities of
    log, sqrt and pow at 0), tensors of them (``TENSOR_SHAPE``), tuples and structs of these; and,
    where not differentiated, Int (a small count: a loop's trips) and Bool."""

    def __init__(self, module: Module, seed: str) -> None:
        self.module = module
        self.r = random.Random(seed)
        self.np = np.random.default_rng(self.r.getrandbits(64))

    def kinds(self, t: Type) -> set[ScalarType]:
        """The float types ``t`` is made of; CannotDraw when it holds anything else."""
        if t in (FLOAT, DOUBLE):
            return {t}
        if isinstance(t, TensorType):
            return {t.element}
        parts = self._parts(t)
        if parts is None:
            raise CannotDraw(str(t))
        return set().union(*(self.kinds(e) for e in parts))

    def _parts(self, t: Type) -> tuple[Type, ...] | None:
        if isinstance(t, TupleType):
            return t.elements
        decl = self.module.struct(str(t))
        return tuple(f.type for f in decl.fields) if decl is not None else None

    def point(self, t: Type) -> Any:
        if t == INT:
            return self.r.randint(0, 5)
        if t == BOOL:
            return self.r.random() < 0.5
        if t in (FLOAT, DOUBLE):
            return _rounded(self.r.uniform(0.3, 1.5), t)
        if isinstance(t, TensorType):
            dtype = np.float32 if t.element == FLOAT else np.float64
            return self.np.uniform(0.3, 1.5, TENSOR_SHAPE).astype(dtype)
        parts = self._parts(t)
        if parts is None:
            raise CannotDraw(str(t))
        values = tuple(self.point(e) for e in parts)
        decl = self.module.struct(str(t))
        return values if decl is None else tuple.__new__(struct_class(decl), values)  # prints as one

    def tangent(self, t: Type, x: Any) -> Any:
        """A random tangent at ``x`` (a value of ``t``), of ``t``'s tangent type (None: none)."""
        return self._tangent_like(t, x, lambda shape: self.np.standard_normal(shape))

    def ones(self, t: Type, x: Any) -> Any:
        """The tangent at ``x`` whose every number is 1 (a gradient's seed, ``--ad-stats``)."""
        return self._tangent_like(t, x, np.ones)

    def _tangent_like(self, t: Type, x: Any, fill: Callable[[tuple[int, ...]], Any]) -> Any:
        if self.module.tangent_type(t) is None:
            return None
        if isinstance(t, ScalarType):
            return _rounded(float(fill(())), t)
        if isinstance(t, TensorType):
            return np.asarray(fill(np.shape(x)), dtype=np.float32 if t.element == FLOAT else np.float64)
        if isinstance(t, TupleType):
            parts = [self._tangent_like(e, a, fill) for e, a in zip(t.elements, x)]
            kept = [p for p, e in zip(parts, t.elements) if self.module.tangent_type(e) is not None]
            return kept[0] if len(kept) == 1 else tuple(kept)
        decl = self.module.struct(str(t))
        assert isinstance(decl, StructDecl)
        return tuple(
            self._tangent_like(f.type, a, fill)
            for f, a in zip(decl.fields, _fields(x, decl))
            if not f.no_derivative and self.module.tangent_type(f.type) is not None
        )

    def moved(self, t: Type, x: Any, v: Any, h: float) -> Any:
        """``x + h v`` for a point ``x`` of ``t`` and a tangent ``v`` at it (None: stay), unrounded:
        a run rounds it to its Float values, its Double shadow keeps it."""
        if v is None:
            return x
        if isinstance(t, ScalarType):
            return x + h * v
        if isinstance(t, TensorType):
            return np.asarray(x, dtype=np.float64) + h * v
        if isinstance(t, TupleType):
            diff = [self.module.tangent_type(e) is not None for e in t.elements]
            parts = iter((v,) if sum(diff) == 1 else v)
            return tuple(
                self.moved(e, a, next(parts) if d else None, h) for e, a, d in zip(t.elements, x, diff)
            )
        decl = self.module.struct(str(t))
        assert isinstance(decl, StructDecl)
        moving = [not f.no_derivative and self.module.tangent_type(f.type) is not None for f in decl.fields]
        parts = iter(v)
        return tuple(
            self.moved(f.type, a, next(parts) if m else None, h)
            for f, a, m in zip(decl.fields, _fields(x, decl), moving)
        )


def _fields(x: Any, decl: StructDecl) -> tuple[Any, ...]:
    return (x,) if len(decl.fields) == 1 and not isinstance(x, tuple) else tuple(x)


def _rounded(x: float, t: Type) -> float:
    return float(np.float32(x)) if t == FLOAT else x


def flat(value: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Every number in a value (scalars, tuples, structs, tensors), in order, as one host vector."""
    if isinstance(value, tuple):
        parts = [flat(v) for v in value]
        return np.concatenate(parts) if parts else np.zeros(0)
    get = getattr(value, "get", None)  # a CuPy array: copied to the host
    return np.asarray(get() if callable(get) else value, dtype=np.float64).ravel()


@attrs.frozen
class Estimate:
    """A derivative along a direction by finite differences (None: it did not settle)."""

    value: np.ndarray[Any, np.dtype[np.float64]] | None
    why: str = ""


def directional_derivative(f: Callable[[float], Any], kind: ScalarType, tolerance: float) -> Estimate:
    """The derivative at 0 of ``f(s)`` (the function at x + s v), by Richardson-extrapolated
    central differences, with the step controlled as the module docstring says."""
    f0 = flat(f(0.0))
    if not np.all(np.isfinite(f0)):
        return Estimate(None, "the function is not finite there")
    magnitude = float(np.max(np.abs(f0), initial=0.0))
    first = _quotients(f, f0, STEP[kind])
    slope = float(np.min(np.abs(first.richardson), initial=np.inf))
    slope = max(1.0, slope) if np.isfinite(slope) else 1.0
    floor = 6 * ROUNDINGS * UNIT_ROUNDOFF[kind] * magnitude / (tolerance / 2 * slope)
    h = max(STEP[kind], floor)
    if h > MAX_STEP:
        return Estimate(None, f"in {kind}, rounding swamps the differences (|f| = {magnitude:.3g})")
    quotients = first if h == STEP[kind] else _quotients(f, f0, h)
    for _ in range(SHRINKS):
        if quotients.settled(tolerance):
            return Estimate(quotients.richardson)
        h /= 4
        if h < floor:
            break
        quotients = _quotients(f, f0, h)
    if quotients.settled(tolerance):
        return Estimate(quotients.richardson)
    return Estimate(None, "the differences do not settle (a kink or a branch within the step)")


@attrs.frozen
class _Quotients:
    previous: np.ndarray[Any, np.dtype[np.float64]]  # Richardson from h and h/2
    richardson: np.ndarray[Any, np.dtype[np.float64]]  # from h/2 and h/4
    curvature_gap: np.ndarray[Any, np.dtype[np.float64]]

    def settled(self, tolerance: float) -> bool:
        if not (np.all(np.isfinite(self.richardson)) and np.all(np.isfinite(self.previous))):
            return False
        allowed = tolerance / 2 * np.maximum(1.0, np.abs(self.richardson))
        return bool(np.all(np.abs(self.previous - self.richardson) <= allowed)) and bool(
            np.all(self.curvature_gap <= allowed)
        )


def _quotients(f: Callable[[float], Any], f0: np.ndarray[Any, Any], h: float) -> _Quotients:
    central, curvature = [], []
    for s in (h, h / 2, h / 4):
        plus, minus = flat(f(s)), flat(f(-s))
        central.append((plus - minus) / (2 * s))
        curvature.append((plus - 2 * f0 + minus) / (s * s))
    previous = (4 * central[1] - central[0]) / 3
    richardson = (4 * central[2] - central[1]) / 3
    return _Quotients(previous, richardson, np.abs(curvature[0] - curvature[2]) * (h / 4))
