"""The NumPy backend: tensors are host ``numpy.ndarray`` values and operations are NumPy calls.

An operation calls NumPy at once and looks at its operands only when NumPy refuses them: checking
shapes in Python before each call would cost more than NumPy's own work on a small tensor, and the
interpreter's MLP benchmark allows 10% over hand-written NumPy. NumPy's ``ValueError`` then becomes
a ``ShapeError`` whose message names the shapes. The functions that word those messages are shared
with the CuPy backend.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from accel.backend import AllocationError, Array, Backend, DType, Scalar, ShapeError

# --- shape errors, worded alike by every backend ---------------------------------------------------


def shape_text(shape: Sequence[int]) -> str:
    """``(2, 3)``, ``(4,)``, ``()``, whatever integer type the dimensions have."""
    return str(tuple(int(d) for d in shape))


def operand_shape(x: Any) -> tuple[int, ...]:
    """The shape of a tensor; a host scalar broadcasts as a rank-0 operand."""
    return tuple(getattr(x, "shape", ()))


def broadcast_error(a: Any, b: Any) -> ShapeError:
    return ShapeError(
        f"cannot broadcast shapes {shape_text(operand_shape(a))} and {shape_text(operand_shape(b))}"
    )


def matmul_error(a: Any, b: Any) -> ShapeError:
    return ShapeError(
        "matmul needs 2-D operands with matching inner dimensions, "
        f"got {shape_text(operand_shape(a))} and {shape_text(operand_shape(b))}"
    )


def matmul_fits(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are matrices whose product is defined."""
    ashape, bshape = operand_shape(a), operand_shape(b)
    return len(ashape) == 2 and len(bshape) == 2 and ashape[1] == bshape[0]


def axis_error(axis: int, rank: int) -> ShapeError:
    return ShapeError(f"axis {axis} is out of range for a tensor of rank {rank}")


def check_axis(axis: int, rank: int) -> None:
    if not -rank <= axis < rank:
        raise axis_error(axis, rank)


def negative_dimension_error(shape: Sequence[int]) -> ShapeError | None:
    """The error for a shape with a negative dimension; None when there is none."""
    if any(d < 0 for d in shape):
        return ShapeError(f"negative dimension in shape {shape_text(shape)}")
    return None


def check_dimensions(shape: Sequence[int]) -> None:
    error = negative_dimension_error(shape)
    if error is not None:
        raise error


def reshape_error(source: Sequence[int], target: Sequence[int]) -> ShapeError:
    return negative_dimension_error(target) or ShapeError(
        f"cannot reshape {shape_text(source)} ({math.prod(source)} elements) to {shape_text(target)}"
    )


def broadcast_to_error(source: Sequence[int], target: Sequence[int]) -> ShapeError:
    return negative_dimension_error(target) or ShapeError(
        f"cannot broadcast shape {shape_text(source)} to {shape_text(target)}"
    )


def unbroadcast_error(source: Sequence[int], target: Sequence[int]) -> ShapeError:
    return negative_dimension_error(target) or ShapeError(
        f"cannot unbroadcast a tensor of shape {shape_text(source)} to shape {shape_text(target)}"
    )


@functools.lru_cache(maxsize=1024)
def unbroadcast_axes(source: tuple[int, ...], target: tuple[int, ...]) -> tuple[int, ...] | None:
    """The axes of ``source`` that broadcasting ``target`` to it adds (leading) or stretches (1 in
    ``target``): those ``unbroadcast`` sums. None when ``target`` does not broadcast to ``source``.
    Cached: a program unbroadcasts the same few pairs of shapes again and again."""
    leading = len(source) - len(target)
    if leading < 0:
        return None
    axes = [*range(leading)]
    for axis in range(leading, len(source)):
        want = target[axis - leading]
        if want != source[axis]:
            if want != 1:
                return None
            axes.append(axis)
    return tuple(axes)


def expanded_shape(shape: Sequence[int], axis: int) -> tuple[int, ...]:
    """``shape`` with a 1 inserted at ``axis`` of the result, which must be in [-(rank+1), rank]."""
    rank = len(shape)
    if not -rank - 1 <= axis <= rank:
        raise axis_error(axis, rank)
    position = axis if axis >= 0 else axis + rank + 1
    return (*shape[:position], 1, *shape[position:])


def index_error(indices: Sequence[int], shape: Sequence[int]) -> ShapeError:
    if len(indices) != len(shape):
        components = f"{len(indices)} component{'' if len(indices) == 1 else 's'}"
        return ShapeError(
            f"index {shape_text(indices)} has {components}, "
            f"not one per axis of a tensor of shape {shape_text(shape)}"
        )
    return ShapeError(
        f"index {shape_text(indices)} is out of bounds for a tensor of shape {shape_text(shape)}"
    )


def check_indices(indices: Sequence[int], shape: Sequence[int]) -> None:
    """One index per axis, each in [0, dim): a negative index does not count from the end."""
    if len(indices) != len(shape):
        raise index_error(indices, shape)
    for index, dim in zip(indices, shape, strict=True):
        if not 0 <= index < dim:
            raise index_error(indices, shape)


def creation_error(shape: Sequence[int], reason: str) -> ShapeError:
    return negative_dimension_error(shape) or ShapeError(
        f"cannot create a tensor of shape {shape_text(shape)}: {reason}"
    )


def arange_error(n: int) -> ShapeError:
    return ShapeError(f"arange needs a non-negative length, got {n}")


def one_element_error(operation: str, shape: Sequence[int]) -> ShapeError:
    return ShapeError(f"{operation} needs a one-element tensor, got shape {shape_text(shape)}")


def bytes_text(n: int) -> str:
    """``3.64 TiB``, ``512 B``: three significant digits in binary units, as NumPy words sizes."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{n} B" if unit == "B" else f"{size:.3g} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def check_allocation(shape: Sequence[int], dtype: Any, memory: int | None, where: str) -> None:
    """Refuse a tensor of ``shape`` and ``dtype`` larger than ``memory`` bytes (``where``: the
    memory's name in the message), before anything is allocated."""
    if memory is None:
        return
    need = math.prod(shape) * np.dtype(dtype).itemsize
    if need > memory and negative_dimension_error(shape) is None:  # a negative size is said otherwise
        raise AllocationError(
            f"shape {shape_text(shape)} of {np.dtype(dtype).name} needs {bytes_text(need)}, "
            f"more than the {bytes_text(memory)} of {where}"
        )


def out_of_memory(exc: MemoryError) -> AllocationError:
    """NumPy's or CuPy's failed allocation (``Unable to allocate 3.64 TiB for an array with
    shape …``), as a tensor too large for the memory left."""
    return AllocationError(str(exc) or "out of memory")


def host_memory() -> int | None:
    """The bytes a host array can take at most: the machine's physical memory, or the process's
    address-space or data limit when lower; None when none of them is known."""
    limits = []
    with contextlib.suppress(AttributeError, ValueError, OSError):  # not a POSIX system
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    try:
        import resource
    except ImportError:
        return min(limits, default=None)
    for kind in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
        soft, _ = resource.getrlimit(kind)
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append(soft)
    return min(limits, default=None)


MEMORY = "memory here"  # what the NumPy backend's tensors are measured against, in messages

# --- floating-point warnings ------------------------------------------------------------------------

_FLOATING_POINT_WARNING = r"(overflow|underflow|divide by zero|invalid value) encountered in "


def _silence_floating_point_warnings() -> None:
    """Overflow, division by zero and invalid operations give inf and NaN as IEEE 754 says; NumPy's
    RuntimeWarning about them would only print noise.

    ``np.errstate`` around each operation costs about 2 µs, more than adding two small tensors, so
    instead ignore those warnings when NumPy raises them from this module. NumPy attributes a
    warning to the Python frame that called it, which is why every computing operation here calls a
    ufunc or an array method directly, never a Python-level wrapper such as ``np.full`` or
    ``np.sum``. Each backend installs the filter when it is made, not once at import, because
    ``warnings.catch_warnings`` (pytest runs every test inside one) drops filters added within it.
    A caller may still set ``np.errstate`` around a whole run; then no warning is raised at all.
    """
    warnings.filterwarnings(
        "ignore",
        message=_FLOATING_POINT_WARNING,
        category=RuntimeWarning,
        module=re.escape(__name__) + r"\Z",
    )


def _tensor(result: Any) -> np.ndarray[Any, Any]:
    """NumPy gives a scalar, not a rank-0 array, when every operand is rank 0; a tensor result stays a
    tensor."""
    return result if type(result) is np.ndarray else np.asarray(result)


class NumpyBackend(Backend):
    """Tensors on the host. Tensor<Float> is float32, Tensor<Double> float64."""

    name = "numpy"

    def __init__(self) -> None:
        _silence_floating_point_warnings()
        self.memory = host_memory()

    # --- transfers ---------------------------------------------------------------------------
    def from_host(self, array: np.ndarray[Any, Any], dtype: DType) -> Array:
        return np.array(array, dtype=dtype, copy=True)

    def to_host(self, t: Array) -> np.ndarray[Any, Any]:
        return np.array(t, copy=True)

    def to_host_scalar(self, t: Array, *indices: int) -> Scalar:
        """``numpy.float32`` for float32 data, ``float`` for float64. ``ndarray.item`` reads the
        element without making a NumPy scalar first (a quarter of the time of
        ``t[indices].item()``); given one index it would read a flat index, hence the caller's
        check of their count."""
        try:
            value = t.item(*indices)
        except ValueError:
            raise one_element_error("to_host_scalar", t.shape) from None
        return value if t.dtype.type is np.float64 else t.dtype.type(value)

    def is_tensor(self, value: object) -> bool:
        return isinstance(value, np.ndarray)

    # --- elementwise -------------------------------------------------------------------------
    def fneg(self, a: Array) -> Array:
        return _tensor(np.negative(a))

    def exp(self, a: Array) -> Array:
        return _tensor(np.exp(a))

    def log(self, a: Array) -> Array:
        return _tensor(np.log(a))

    def sin(self, a: Array) -> Array:
        return _tensor(np.sin(a))

    def cos(self, a: Array) -> Array:
        return _tensor(np.cos(a))

    def tanh(self, a: Array) -> Array:
        return _tensor(np.tanh(a))

    def sqrt(self, a: Array) -> Array:
        return _tensor(np.sqrt(a))

    def abs(self, a: Array) -> Array:
        return _tensor(np.abs(a))

    def relu(self, a: Array) -> Array:
        return _tensor(np.maximum(a, 0))

    def step(self, a: Array) -> Array:
        return _tensor(np.greater(a, 0)).astype(a.dtype)

    def sign(self, a: Array) -> Array:
        return _tensor(np.sign(a))

    def fadd(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        try:
            return _tensor(np.add(a, b))
        except ValueError:
            raise broadcast_error(a, b) from None
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def fsub(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        try:
            return _tensor(np.subtract(a, b))
        except ValueError:
            raise broadcast_error(a, b) from None
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def fmul(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        try:
            return _tensor(np.multiply(a, b))
        except ValueError:
            raise broadcast_error(a, b) from None
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def fdiv(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        try:
            return _tensor(np.divide(a, b))
        except ValueError:
            raise broadcast_error(a, b) from None
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def fmin(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        try:
            return _tensor(np.minimum(a, b))
        except ValueError:
            raise broadcast_error(a, b) from None
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def fmax(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        try:
            return _tensor(np.maximum(a, b))
        except ValueError:
            raise broadcast_error(a, b) from None
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def pow(self, a: Array | Scalar, b: Array | Scalar) -> Array:
        try:
            return _tensor(np.power(a, b))
        except ValueError:
            raise broadcast_error(a, b) from None
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    # --- tensor builtins ---------------------------------------------------------------------
    def matmul(self, a: Array, b: Array) -> Array:
        if matmul_fits(a, b):
            check_allocation((a.shape[0], b.shape[1]), np.result_type(a, b), self.memory, MEMORY)
        try:
            product = np.matmul(a, b)
        except ValueError:
            raise matmul_error(a, b) from None
        except MemoryError as exc:
            raise out_of_memory(exc) from None
        # np.matmul also takes vectors and stacks of matrices; only a 2-D by 2-D product is 2-D.
        if product.ndim != 2:
            raise matmul_error(a, b)
        return product

    def transpose(self, a: Array) -> Array:
        return a.transpose()

    def sum(self, a: Array) -> Scalar:
        return self.to_host_scalar(np.add.reduce(a, axis=None))

    def mean(self, a: Array) -> Scalar:
        # What np.mean computes, without its Python wrapper (see _silence_floating_point_warnings).
        return self.to_host_scalar(np.add.reduce(a, axis=None) / a.size)

    def sum_axis(self, a: Array, axis: int) -> Array:
        # Checked first: NumPy reduces a rank-0 array along axis 0 or -1.
        check_axis(axis, a.ndim)
        return _tensor(np.add.reduce(a, axis=axis))

    def broadcast_to(self, a: Array, *shape: int) -> Array:
        # A view, but whatever reads it makes a tensor of its size.
        check_allocation(shape, a.dtype, self.memory, MEMORY)
        try:
            return np.broadcast_to(a, shape)
        except ValueError:
            raise broadcast_to_error(operand_shape(a), shape) from None

    def reshape(self, a: Array, *shape: int) -> Array:
        try:
            result = a.reshape(shape)
        except ValueError:
            raise reshape_error(a.shape, shape) from None
        # NumPy infers a dimension given as -1; SIL shapes are explicit.
        if result.shape != shape:
            raise reshape_error(a.shape, shape)
        return result

    def zeros(self, dtype: DType, *shape: int) -> Array:
        check_allocation(shape, dtype, self.memory, MEMORY)
        try:
            return np.zeros(shape, dtype=dtype)
        except ValueError as exc:
            raise creation_error(shape, str(exc)) from None
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def ones(self, dtype: DType, *shape: int) -> Array:
        check_allocation(shape, dtype, self.memory, MEMORY)
        try:
            return np.ones(shape, dtype=dtype)
        except ValueError as exc:
            raise creation_error(shape, str(exc)) from None
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def fill(self, dtype: DType, value: Scalar, *shape: int) -> Array:
        check_allocation(shape, dtype, self.memory, MEMORY)
        try:
            result = np.empty(shape, dtype=dtype)
        except ValueError as exc:
            raise creation_error(shape, str(exc)) from None
        except MemoryError as exc:
            raise out_of_memory(exc) from None
        result.fill(value)
        return result

    def arange(self, dtype: DType, n: int) -> Array:
        if n < 0:
            raise arange_error(n)
        check_allocation((n,), dtype, self.memory, MEMORY)
        try:
            return np.arange(n, dtype=dtype)
        except MemoryError as exc:
            raise out_of_memory(exc) from None

    def tensor_from_scalar(self, dtype: DType, value: Scalar) -> Array:
        return np.array(value, dtype=dtype)

    def scalar_from_tensor(self, a: Array) -> Scalar:
        if a.size != 1:
            raise one_element_error("scalar_from_tensor", a.shape)
        return self.to_host_scalar(a)

    def dim(self, a: Array, axis: int) -> int:
        try:
            return int(a.shape[axis])
        except IndexError:
            raise axis_error(axis, a.ndim) from None

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
        result = _tensor(np.add.reduce(a, axis=axes))
        return result if len(axes) == a.ndim - len(shape) else result.reshape(shape)

    def expand_dims(self, a: Array, axis: int) -> Array:
        return a.reshape(expanded_shape(a.shape, axis))

    # --- elements ----------------------------------------------------------------------------
    def _fitting_indices(self, a: Array, indices: tuple[int, ...]) -> tuple[int, ...]:
        """``indices``, checked: NumPy takes fewer indices (a sub-array) and negative ones (counting
        from the end) but refuses one past the end, which costs nothing to leave to it."""
        if len(indices) != a.ndim or (indices and min(indices) < 0):
            raise index_error(indices, a.shape)
        return indices

    def element(self, a: Array, *indices: int) -> Scalar:
        if len(indices) != a.ndim or (indices and min(indices) < 0):  # _fitting_indices, inlined
            raise index_error(indices, a.shape)
        try:
            return self.to_host_scalar(a, *indices)
        except IndexError:
            raise index_error(indices, a.shape) from None

    def with_element(self, a: Array, value: Scalar, *indices: int) -> Array:
        return self.with_element_in_place(a.copy(), value, *indices)

    def with_element_in_place(self, a: Array, value: Scalar, *indices: int) -> Array:
        try:
            a[self._fitting_indices(a, indices)] = value
        except IndexError:
            raise index_error(indices, a.shape) from None
        return a
