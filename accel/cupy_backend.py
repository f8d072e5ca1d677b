"""The CuPy backend: tensors live in GPU memory from ``from_host`` to ``to_host``.

CuPy is imported when a backend is constructed, not when this module is, so that ``import accel``
stays cheap and works without CuPy. Data crosses the bus only in ``from_host``, ``to_host`` and
``to_host_scalar``: host scalar operands and fill values travel as kernel arguments, not copies.

Operand checks that cost a few integer comparisons run before the kernel launch, which dwarfs them;
broadcasting is left to CuPy, whose ``ValueError`` becomes a ``ShapeError`` as in the NumPy backend.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np

from accel.backend import Array, Backend, BackendUnavailable, DType, Scalar
from accel.numpy_backend import (
    arange_error,
    broadcast_error,
    broadcast_to_error,
    check_allocation,
    check_axis,
    check_dimensions,
    check_indices,
    expanded_shape,
    matmul_error,
    matmul_fits,
    one_element_error,
    operand_shape,
    out_of_memory,
    reshape_error,
    unbroadcast_axes,
    unbroadcast_error,
)

MEMORY = "GPU memory"  # what the CuPy backend's tensors are measured against, in messages

# ``step`` and ``sign`` read each element's bits: CuPy compiles every kernel with -ftz=true, under
# which a float32 comparison reads a subnormal as 0, so ``x > 0`` (and ``cupy.sign``) would give 0
# for 1e-45; ``cupy.sign`` also gives 0 for NaN (cupy/cupy#8327). A positive finite or infinite
# number is one whose bits, as a signed integer, are above 0 and at most those of +inf.
_MASKS = r"""
__device__ float sil_step_of(float x) {
    int bits = __float_as_int(x);
    return bits > 0 && bits <= 0x7f800000 ? 1.0f : 0.0f;
}
__device__ double sil_step_of(double x) {
    long long bits = __double_as_longlong(x);
    return bits > 0 && bits <= 0x7ff0000000000000LL ? 1.0 : 0.0;
}
__device__ float sil_sign_of(float x) {
    int bits = __float_as_int(x);
    int magnitude = bits & 0x7fffffff;
    if (magnitude > 0x7f800000) return x;
    return magnitude == 0 ? 0.0f : bits < 0 ? -1.0f : 1.0f;
}
__device__ double sil_sign_of(double x) {
    long long bits = __double_as_longlong(x);
    long long magnitude = bits & 0x7fffffffffffffffLL;
    if (magnitude > 0x7ff0000000000000LL) return x;
    return magnitude == 0 ? 0.0 : bits < 0 ? -1.0 : 1.0;
}
"""


def load_cupy() -> Any:
    """The ``cupy`` module, once it has shown that it sees a GPU; BackendUnavailable says why not."""
    try:
        cupy = importlib.import_module("cupy")
    except ModuleNotFoundError as exc:
        if exc.name != "cupy":
            raise BackendUnavailable(f"CuPy failed to import: {exc}") from exc
        raise BackendUnavailable("CuPy is not installed") from exc
    except Exception as exc:  # a CUDA installation with missing parts: ImportError, OSError, CUDA errors
        raise BackendUnavailable(f"CuPy failed to import: {exc}") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # cupy.cuda.runtime.CUDARuntimeError: no driver, or no device
        raise BackendUnavailable(f"CuPy sees no GPU ({exc})") from exc
    if count == 0:
        raise BackendUnavailable("CuPy sees no GPU")
    return cupy


class CupyBackend(Backend):
    """Tensors on the current CUDA device. Tensor<Float> is float32, Tensor<Double> float64."""

    name = "cupy"

    def __init__(self) -> None:
        self._cp: Any = load_cupy()
        runtime = self._cp.cuda.runtime
        self.memory = int(runtime.getDeviceProperties(runtime.getDevice())["totalGlobalMem"])
        # Compiled on first use.
        self._step = self._cp.ElementwiseKernel(
            "T x", "T y", "y = sil_step_of(x)", "sil_step", preamble=_MASKS
        )
        self._sign = self._cp.ElementwiseKernel(
            "T x", "T y", "y = sil_sign_of(x)", "sil_sign", preamble=_MASKS
        )

    def describe(self) -> str:
        runtime = self._cp.cuda.runtime
        device_name: str = runtime.getDeviceProperties(runtime.getDevice())["name"].decode()
        return f"cupy on {device_name}"

    # --- transfers ---------------------------------------------------------------------------
    def from_host(self, array: np.ndarray[Any, Any], dtype: DType) -> Array:
        # Converting to float32 on the host may overflow to inf: no warning, as in the NumPy backend.
        with np.errstate(all="ignore"):
            host = np.asarray(array, dtype=dtype)
        return self._cp.asarray(host)

    def to_host(self, t: Array) -> np.ndarray[Any, Any]:
        host: np.ndarray[Any, Any] = self._cp.asnumpy(t)
        return host

    def to_host_scalar(self, t: Array, *indices: int) -> Scalar:
        """``numpy.float32`` for float32 data, ``float`` for float64."""
        if indices:
            t = t[indices]
        if t.size != 1:
            raise one_element_error("to_host_scalar", t.shape)
        value = t.item()
        return value if t.dtype.type is np.float64 else t.dtype.type(value)

    def is_tensor(self, value: object) -> bool:
        return isinstance(value, self._cp.ndarray)

    # --- elementwise -------------------------------------------------------------------------
    def fneg(self, a: Array) -> Array:
        return self._cp.negative(a)

    def exp(self, a: Array) -> Array:
        return self._cp.exp(a)

    def log(self, a: Array) -> Array:
        return self._cp.log(a)

    def sin(self, a: Array) -> Array:
        return self._cp.sin(a)

    def cos(self, a: Array) -> Array:
        return self._cp.cos(a)

    def tanh(self, a: Array) -> Array:
        return self._cp.tanh(a)

    def sqrt(self, a: Array) -> Array:
        return self._cp.sqrt(a)

    def abs(self, a: Array) -> Array:
        return self._cp.abs(a)

    def relu(self, a: Array) -> Array:
        return self._cp.maximum(a, 0)

    def step(self, a: Array) -> Array:
        return self._step(a)

    def sign(self, a: Array) -> Array:
        return self._sign(a)

    def _binary(self, ufunc: Any, a: Array | Scalar, b: Array | Scalar) -> Array:
        try:
            return ufunc(a, b)
        except ValueError:
            raise broadcast_error(a, b) from None
        except MemoryError as exc:  # cupy.cuda.memory.OutOfMemoryError
            raise out_of_memory(exc) from None

    def fadd(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        return self._binary(self._cp.add, a, b)

    def fsub(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        return self._binary(self._cp.subtract, a, b)

    def fmul(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        return self._binary(self._cp.multiply, a, b)

    def fdiv(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        return self._binary(self._cp.divide, a, b)

    def fmin(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        return self._binary(self._cp.minimum, a, b)

    def fmax(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        return self._binary(self._cp.maximum, a, b)

    def pow(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        return self._binary(self._cp.power, a, b)

    # --- tensor builtins ---------------------------------------------------------------------
    def matmul(self, a: Array, b: Array) -> Array:
        if not matmul_fits(a, b):
            raise matmul_error(a, b)
        check_allocation((a.shape[0], b.shape[1]), self._cp.result_type(a, b), self.memory, MEMORY)
        try:
            return self._cp.matmul(a, b)
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def transpose(self, a: Array) -> Array:
        return a.transpose()

    def sum(self, a: Array) -> Scalar:
        return self.to_host_scalar(self._cp.sum(a))

    def mean(self, a: Array) -> Scalar:
        # The sum over the element count, as the NumPy backend computes it; the division runs on the GPU.
        return self.to_host_scalar(self._cp.sum(a) / a.size)

    def sum_axis(self, a: Array, axis: int) -> Array:
        check_axis(axis, a.ndim)
        return self._cp.sum(a, axis=axis)

    def broadcast_to(self, a: Array, *shape: int) -> Array:
        check_dimensions(shape)
        check_allocation(shape, a.dtype, self.memory, MEMORY)  # a view, but read as a tensor of its size
        try:
            return self._cp.broadcast_to(a, shape)
        except ValueError:
            raise broadcast_to_error(operand_shape(a), shape) from None

    def reshape(self, a: Array, *shape: int) -> Array:
        check_dimensions(shape)
        if math.prod(shape) != a.size:
            raise reshape_error(a.shape, shape)
        return a.reshape(shape)

    def zeros(self, dtype: DType, *shape: int) -> Array:
        check_dimensions(shape)
        check_allocation(shape, dtype, self.memory, MEMORY)
        try:
            return self._cp.zeros(shape, dtype=dtype)
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def ones(self, dtype: DType, *shape: int) -> Array:
        check_dimensions(shape)
        check_allocation(shape, dtype, self.memory, MEMORY)
        try:
            return self._cp.ones(shape, dtype=dtype)
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def fill(self, dtype: DType, value: Scalar, *shape: int) -> Array:
        check_dimensions(shape)
        check_allocation(shape, dtype, self.memory, MEMORY)
        try:
            return self._cp.full(shape, value, dtype=dtype)
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def arange(self, dtype: DType, n: int) -> Array:
        if n < 0:
            raise arange_error(n)
        check_allocation((n,), dtype, self.memory, MEMORY)
        try:
            return self._cp.arange(n, dtype=dtype)
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def tensor_from_scalar(self, dtype: DType, value: Scalar) -> Array:
        # A fill kernel takes the value as an argument; cupy.array(value) would copy it from the host.
        return self._cp.full((), value, dtype=dtype)

    def scalar_from_tensor(self, a: Array) -> Scalar:
        if a.size != 1:
            raise one_element_error("scalar_from_tensor", a.shape)
        return self.to_host_scalar(a)

    def dim(self, a: Array, axis: int) -> int:
        check_axis(axis, a.ndim)
        return int(a.shape[axis])

    # --- shapes as values --------------------------------------------------------------------
    def shape(self, a: Array) -> tuple[int, ...]:
        shape: tuple[int, ...] = a.shape
        return shape

    def rank(self, a: Array) -> int:
        rank: int = a.ndim
        return rank

    def unbroadcast(self, a: Array, *shape: int) -> Array:
        if a.shape == shape:
            return a
        axes = unbroadcast_axes(a.shape, shape)
        if axes is None:
            raise unbroadcast_error(a.shape, shape)
        # One reduction over every summed axis; a reshape puts back the stretched ones as 1s.
        result = self._cp.sum(a, axis=axes)
        return result if len(axes) == a.ndim - len(shape) else result.reshape(shape)

    def expand_dims(self, a: Array, axis: int) -> Array:
        return a.reshape(expanded_shape(a.shape, axis))

    # --- elements: indices are host ints, checked before any kernel runs ---------------------
    def element(self, a: Array, *indices: int) -> Scalar:
        check_indices(indices, a.shape)
        return self.to_host_scalar(a, *indices)

    def with_element(self, a: Array, value: Scalar, *indices: int) -> Array:
        check_indices(indices, a.shape)
        return self.with_element_in_place(a.copy(), value, *indices)

    def with_element_in_place(self, a: Array, value: Scalar, *indices: int) -> Array:
        check_indices(indices, a.shape)
        a[indices] = value  # a fill kernel, the value its argument
        return a
