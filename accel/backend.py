"""The tensor backend interface: every tensor builtin of SIL-SPEC §5 and elementwise arithmetic.

The interpreter resolves a builtin to a backend method once, when it compiles a function
(``backend.op("fadd")``), and calls it with backend arrays and host scalars. Tensors stay backend
arrays from creation to the end of a run: the only host transfers are ``from_host`` (arguments in),
``to_host`` (results out) and ``to_host_scalar`` (``scalar_from_tensor``, and the reductions
``sum`` and ``mean``, whose results are scalars). Every implementation routes each transfer through
those three methods, so that wrapping them counts every transfer.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

# A backend array (numpy.ndarray, cupy.ndarray). Host scalars are numpy.float32 for Float, float for
# Double, int for Int.
Array = Any
Scalar = Any
DType = type[np.floating[Any]]

# Every operation, by builtin name (the method that implements it), with how it is called:
# "unary" and "binary" are elementwise (a host scalar broadcasts); "tensor" takes its operands as
# the builtin does, a ``TensorShape`` operand (a tuple of ints) splatted into trailing ints as for
# ``broadcast_to(a, *shape)``; "creation" takes the element type first, ``zeros(np.float32, 2, 3)``.
# A backend also has an operation that is no builtin (``with_element_in_place``): the interpreter
# calls it where its own analysis allows (``interp/ownership.py``).
OPERATIONS: dict[str, str] = {
    "fneg": "unary",
    "exp": "unary",
    "log": "unary",
    "sin": "unary",
    "cos": "unary",
    "tanh": "unary",
    "sqrt": "unary",
    "abs": "unary",
    "relu": "unary",
    "step": "unary",
    "sign": "unary",
    "fadd": "binary",
    "fsub": "binary",
    "fmul": "binary",
    "fdiv": "binary",
    "fmin": "binary",
    "fmax": "binary",
    "pow": "binary",
    "matmul": "tensor",
    "transpose": "tensor",
    "sum": "tensor",
    "mean": "tensor",
    "sum_axis": "tensor",
    "broadcast_to": "tensor",
    "reshape": "tensor",
    "zeros": "creation",
    "ones": "creation",
    "fill": "creation",
    "arange": "creation",
    "tensor_from_scalar": "creation",
    "scalar_from_tensor": "tensor",
    "dim": "tensor",
    "shape": "tensor",
    "rank": "tensor",
    "unbroadcast": "tensor",
    "expand_dims": "tensor",
    "element": "tensor",
    "with_element": "tensor",
}
ELEMENTWISE_UNARY = tuple(name for name, kind in OPERATIONS.items() if kind == "unary")
ELEMENTWISE_BINARY = tuple(name for name, kind in OPERATIONS.items() if kind == "binary")
CREATION_BUILTINS = tuple(name for name, kind in OPERATIONS.items() if kind == "creation")


class ShapeError(Exception):
    """An operation's operands do not fit: shapes that do not broadcast, a bad axis, a reshape to a
    different size. The message names the shapes, e.g. ``cannot broadcast shapes (2, 3) and (4,)``."""


class AllocationError(ShapeError):
    """A tensor would not fit in the memory its backend has: refused before allocating it (or when
    the allocation itself fails), e.g. ``shape (1000000, 1000000) of float32 needs 3.64 TiB, more
    than the 23.5 GiB of memory here``."""


class BackendUnavailable(Exception):
    """The requested backend cannot be used here (CuPy not installed, or no GPU)."""


class Backend(abc.ABC):
    """One implementation of every tensor operation. Methods are named after the builtins."""

    name: ClassVar[str]
    memory: int | None = None
    """Bytes a tensor may take at most (the memory the backend has), None when it is not known:
    creating a tensor past it is an ``AllocationError``, not an allocation that fails or thrashes."""

    def op(self, name: str) -> Callable[..., Any]:
        """The method implementing builtin ``name`` (one of ``OPERATIONS``)."""
        if name not in OPERATIONS:
            raise KeyError(f"no tensor operation '{name}'")
        method: Callable[..., Any] = getattr(self, name)
        return method

    def describe(self) -> str:
        """A short line for ``silopt --version``: the backend and the device it runs on."""
        return self.name

    # --- transfers: the only places data crosses between host and device -------------------
    @abc.abstractmethod
    def from_host(self, array: np.ndarray[Any, Any], dtype: DType) -> Array:
        """A backend array holding a copy of a host array, converted to ``dtype``."""

    @abc.abstractmethod
    def to_host(self, t: Array) -> np.ndarray[Any, Any]:
        """A host (NumPy) copy of a backend array."""

    @abc.abstractmethod
    def to_host_scalar(self, t: Array, *indices: int) -> Scalar:
        """The one element of a one-element array, or the element at ``indices`` (checked by the
        caller, one per axis, none negative), as a host scalar of its element type."""

    @abc.abstractmethod
    def is_tensor(self, value: object) -> bool:
        """Whether ``value`` is an array of this backend."""

    # --- elementwise: tensors broadcast as NumPy does; a host scalar broadcasts ------------
    @abc.abstractmethod
    def fneg(self, a: Array) -> Array: ...
    @abc.abstractmethod
    def exp(self, a: Array) -> Array: ...
    @abc.abstractmethod
    def log(self, a: Array) -> Array: ...
    @abc.abstractmethod
    def sin(self, a: Array) -> Array: ...
    @abc.abstractmethod
    def cos(self, a: Array) -> Array: ...
    @abc.abstractmethod
    def tanh(self, a: Array) -> Array: ...
    @abc.abstractmethod
    def sqrt(self, a: Array) -> Array: ...
    @abc.abstractmethod
    def abs(self, a: Array) -> Array: ...
    @abc.abstractmethod
    def relu(self, a: Array) -> Array: ...
    @abc.abstractmethod
    def step(self, a: Array) -> Array:
        """1 where ``a`` > 0, else 0 (NaN gives 0), by an exact comparison: the mask of ``relu``,
        right for subnormals, where saturating arithmetic (``min(a * huge, 1)``) is not."""

    @abc.abstractmethod
    def sign(self, a: Array) -> Array:
        """-1, 0 or 1 (NaN stays NaN, -0.0 gives 0), by exact comparisons: the mask of ``abs``."""

    @abc.abstractmethod
    def fadd(self, a: Array | Scalar, b: Array | Scalar) -> Array: ...
    @abc.abstractmethod
    def fsub(self, a: Array | Scalar, b: Array | Scalar) -> Array: ...
    @abc.abstractmethod
    def fmul(self, a: Array | Scalar, b: Array | Scalar) -> Array: ...
    @abc.abstractmethod
    def fdiv(self, a: Array | Scalar, b: Array | Scalar) -> Array: ...
    @abc.abstractmethod
    def fmin(self, a: Array | Scalar, b: Array | Scalar) -> Array: ...
    @abc.abstractmethod
    def fmax(self, a: Array | Scalar, b: Array | Scalar) -> Array: ...
    @abc.abstractmethod
    def pow(self, a: Array | Scalar, b: Array | Scalar) -> Array: ...

    # --- tensor builtins -------------------------------------------------------------------
    @abc.abstractmethod
    def matmul(self, a: Array, b: Array) -> Array:
        """2-D matrix product; ShapeError unless both are 2-D with matching inner dimensions."""

    @abc.abstractmethod
    def transpose(self, a: Array) -> Array:
        """The axes reversed."""

    @abc.abstractmethod
    def sum(self, a: Array) -> Scalar:
        """The sum of every element, as a host scalar (through ``to_host_scalar``)."""

    @abc.abstractmethod
    def mean(self, a: Array) -> Scalar:
        """The mean of every element, as a host scalar (through ``to_host_scalar``)."""

    @abc.abstractmethod
    def sum_axis(self, a: Array, axis: int) -> Array:
        """The sum along one axis, which is removed; a negative axis counts from the end."""

    @abc.abstractmethod
    def broadcast_to(self, a: Array, *shape: int) -> Array: ...
    @abc.abstractmethod
    def reshape(self, a: Array, *shape: int) -> Array: ...
    @abc.abstractmethod
    def zeros(self, dtype: DType, *shape: int) -> Array: ...
    @abc.abstractmethod
    def ones(self, dtype: DType, *shape: int) -> Array: ...
    @abc.abstractmethod
    def fill(self, dtype: DType, value: Scalar, *shape: int) -> Array: ...
    @abc.abstractmethod
    def arange(self, dtype: DType, n: int) -> Array: ...
    @abc.abstractmethod
    def tensor_from_scalar(self, dtype: DType, value: Scalar) -> Array:
        """A rank-0 tensor."""

    @abc.abstractmethod
    def scalar_from_tensor(self, a: Array) -> Scalar:
        """The element of a rank-0 or one-element tensor (through ``to_host_scalar``)."""

    @abc.abstractmethod
    def dim(self, a: Array, axis: int) -> int:
        """The size of one axis; a negative axis counts from the end."""

    # --- shapes as values --------------------------------------------------------------------
    @abc.abstractmethod
    def shape(self, a: Array) -> tuple[int, ...]:
        """The shape, as Python ints: metadata, no transfer of data."""

    @abc.abstractmethod
    def rank(self, a: Array) -> int:
        """The number of axes."""

    @abc.abstractmethod
    def unbroadcast(self, a: Array, *shape: int) -> Array:
        """``a`` summed over the axes that broadcasting ``shape`` to ``a``'s shape added (leading) or
        stretched (1 in ``shape``), giving a tensor of ``shape``: the adjoint of ``broadcast_to``.
        ``a`` itself when ``shape`` is its shape; ShapeError when ``shape`` does not broadcast to it."""

    @abc.abstractmethod
    def expand_dims(self, a: Array, axis: int) -> Array:
        """``a`` with an axis of size 1 inserted at ``axis`` of the result, in [-(rank+1), rank]."""

    # --- elements ----------------------------------------------------------------------------
    @abc.abstractmethod
    def element(self, a: Array, *indices: int) -> Scalar:
        """The element at ``indices``, one per axis, each in [0, dim) (no wrap-around of negative
        indices), as a host scalar (through ``to_host_scalar``); ShapeError otherwise."""

    @abc.abstractmethod
    def with_element(self, a: Array, value: Scalar, *indices: int) -> Array:
        """A new tensor equal to ``a`` except at ``indices`` (checked as by ``element``), where it
        holds ``value`` converted to ``a``'s element type; ``a`` is left as it was."""

    def owns_buffer(self, a: Array) -> bool:
        """Whether ``a`` owns its memory and may be written (not a view of another tensor's): with
        no other reference to it, ``with_element_in_place`` may write into it."""
        flags = a.flags
        return bool(flags.owndata and getattr(flags, "writeable", True))

    @abc.abstractmethod
    def with_element_in_place(self, a: Array, value: Scalar, *indices: int) -> Array:
        """``with_element`` by writing into ``a``, which it returns: no copy, for the interpreter to
        call only where ``a``'s buffer is uniquely owned, no other live value being ``a`` or a view
        of its data (``reshape``, ``transpose``, ``expand_dims``, ``broadcast_to`` and an identity
        ``unbroadcast`` may return views or ``a`` itself). Not a builtin."""
