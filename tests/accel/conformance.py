"""The checks every tensor backend passes, against a direct NumPy reference (SIL-SPEC §5).

A backend's test module subclasses ``BackendConformance`` and supplies a ``backend`` fixture. The
checks reach the backend only through the ``Backend`` interface: host data goes in with
``from_host`` and comes back with ``to_host``, so they run unchanged on a GPU.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from accel.backend import (
    ELEMENTWISE_BINARY,
    ELEMENTWISE_UNARY,
    OPERATIONS,
    AllocationError,
    Backend,
    DType,
    ShapeError,
)

DTYPES: tuple[DType, ...] = (np.float32, np.float64)
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def _scalar_from_tensor(a: np.ndarray[Any, Any]) -> Any:
    return a.reshape(())[()]


def _unbroadcast(a: np.ndarray[Any, Any], *shape: int) -> np.ndarray[Any, Any]:
    """Unlike the backends, one axis at a time: the leading axes broadcasting added, then each it
    stretched."""
    while a.ndim > len(shape):
        a = np.sum(a, axis=0)
    for axis, dim in enumerate(shape):
        if dim == 1 and a.shape[axis] != 1:
            a = np.sum(a, axis=axis, keepdims=True)
    return np.asarray(a)


def _with_element(a: np.ndarray[Any, Any], value: Any, *indices: int) -> np.ndarray[Any, Any]:
    result = a.copy()
    result[indices] = value
    return result


# What each builtin computes, in NumPy, with the backend's calling convention.
REFERENCE: dict[str, Callable[..., Any]] = {
    "fneg": np.negative,
    "exp": np.exp,
    "log": np.log,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "relu": lambda a: np.maximum(a, 0),
    "step": lambda a: (a > 0).astype(a.dtype),
    "sign": np.sign,
    "fadd": np.add,
    "fsub": np.subtract,
    "fmul": np.multiply,
    "fdiv": np.divide,
    "fmin": np.minimum,
    "fmax": np.maximum,
    "pow": np.power,
    "matmul": np.matmul,
    "transpose": np.transpose,
    "sum": np.sum,
    "mean": np.mean,
    "sum_axis": lambda a, axis: np.sum(a, axis=axis),
    "broadcast_to": lambda a, *shape: np.broadcast_to(a, shape),
    "reshape": lambda a, *shape: np.reshape(a, shape),
    "zeros": lambda dtype, *shape: np.zeros(shape, dtype),
    "ones": lambda dtype, *shape: np.ones(shape, dtype),
    "fill": lambda dtype, value, *shape: np.full(shape, value, dtype),
    "arange": lambda dtype, n: np.arange(n, dtype=dtype),
    "tensor_from_scalar": lambda dtype, value: np.array(value, dtype),
    "scalar_from_tensor": _scalar_from_tensor,
    "dim": lambda a, axis: a.shape[axis],
    "shape": lambda a: a.shape,
    "rank": np.ndim,
    "unbroadcast": _unbroadcast,
    "expand_dims": np.expand_dims,
    "element": lambda a, *indices: a[indices],
    "with_element": _with_element,
}

# Operands of these are kept positive, inside the functions' domains.
POSITIVE_OPERANDS = ("log", "sqrt", "pow")


def sample(dtype: DType, *shape: int, positive: bool = False, seed: int = 0) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    low, high = (0.5, 2.0) if positive else (-2.0, 2.0)
    return rng.uniform(low, high, shape).astype(dtype)


def host_scalar(dtype: DType, value: float) -> Any:
    """A host scalar as the interpreter holds it: numpy.float32 for Float, float for Double."""
    return np.float32(value) if dtype is np.float32 else value


def run(backend: Backend, name: str, *args: Any) -> tuple[Any, Any]:
    """Builtin ``name`` on the backend (host arrays among ``args`` go in with ``from_host``) and on
    the reference."""
    backend_args = [backend.from_host(a, a.dtype.type) if isinstance(a, np.ndarray) else a for a in args]
    return backend.op(name)(*backend_args), REFERENCE[name](*args)


def assert_tensor(backend: Backend, actual: Any, expected: Any, dtype: DType) -> None:
    """``actual`` is a backend tensor of ``dtype`` holding ``expected``."""
    assert backend.is_tensor(actual), f"expected a {backend.name} tensor, got {type(actual).__name__}"
    host = backend.to_host(actual)
    expected = np.asarray(expected)
    assert host.dtype == dtype
    assert host.shape == expected.shape
    np.testing.assert_allclose(host, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


def assert_host_scalar(actual: Any, expected: Any, dtype: DType) -> None:
    """``actual`` is a host scalar of the element type: numpy.float32, or exactly ``float``."""
    assert type(actual) is (np.float32 if dtype is np.float32 else float)
    np.testing.assert_allclose(actual, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


class TransferCounter:
    """Wraps a backend's three transfer methods, counting the calls that go through each."""

    NAMES = ("from_host", "to_host", "to_host_scalar")

    def __init__(self, backend: Backend) -> None:
        self.counts = dict.fromkeys(self.NAMES, 0)
        for name in self.NAMES:
            setattr(backend, name, self._counting(name, getattr(backend, name)))

    def _counting(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            self.counts[name] += 1
            return method(*args)

        return counted


def tensor_program(call: Callable[..., Any], x: Any, dtype: DType) -> tuple[Any, int]:
    """A 100-operation program on a (4, 3) tensor, through ``call(name, *args)``; returns the result
    and the number of operations. tanh in each round keeps the values bounded."""
    count = 0

    def op(name: str, *args: Any) -> Any:
        nonlocal count
        count += 1
        return call(name, *args)

    bias = op("ones", dtype, 3)
    h = x
    for _ in range(9):
        h = op("fmul", h, host_scalar(dtype, 0.5))
        h = op("tanh", op("fadd", h, bias))
        gram = op("matmul", op("transpose", h), h)
        h = op("matmul", h, gram)
        row_sums = op("reshape", op("sum_axis", h, -1), 4, 1)
        h = op("fsub", h, op("broadcast_to", row_sums, op("dim", h, 0), 3))
    return h, count


def _tensor(backend: Backend, *shape: int) -> Any:
    return backend.from_host(np.ones(shape), np.float32)


# (what is called, the ShapeError message it must raise)
SHAPE_ERRORS: list[tuple[str, Callable[[Backend], Any], str]] = [
    (
        "matmul-inner",
        lambda b: b.matmul(_tensor(b, 2, 3), _tensor(b, 2, 3)),
        "matmul needs 2-D operands with matching inner dimensions, got (2, 3) and (2, 3)",
    ),
    (
        "matmul-vector",
        lambda b: b.matmul(_tensor(b, 2, 3), _tensor(b, 3)),
        "matmul needs 2-D operands with matching inner dimensions, got (2, 3) and (3,)",
    ),
    (
        "matmul-vectors",
        lambda b: b.matmul(_tensor(b, 3), _tensor(b, 3)),
        "matmul needs 2-D operands with matching inner dimensions, got (3,) and (3,)",
    ),
    (
        "matmul-stacked",
        lambda b: b.matmul(_tensor(b, 2, 2, 2), _tensor(b, 2, 2, 2)),
        "matmul needs 2-D operands with matching inner dimensions, got (2, 2, 2) and (2, 2, 2)",
    ),
    (
        "reshape-size",
        lambda b: b.reshape(_tensor(b, 2, 3), 4),
        "cannot reshape (2, 3) (6 elements) to (4,)",
    ),
    ("reshape-inferred", lambda b: b.reshape(_tensor(b, 2, 3), -1, 3), "negative dimension in shape (-1, 3)"),
    (
        "reshape-negative",
        lambda b: b.reshape(_tensor(b, 2, 3), -2, -3),
        "negative dimension in shape (-2, -3)",
    ),
    (
        "sum_axis",
        lambda b: b.sum_axis(_tensor(b, 2, 3), 2),
        "axis 2 is out of range for a tensor of rank 2",
    ),
    (
        "sum_axis-negative",
        lambda b: b.sum_axis(_tensor(b, 2, 3), -3),
        "axis -3 is out of range for a tensor of rank 2",
    ),
    ("sum_axis-rank-0", lambda b: b.sum_axis(_tensor(b), 0), "axis 0 is out of range for a tensor of rank 0"),
    ("dim", lambda b: b.dim(_tensor(b, 2, 3), 2), "axis 2 is out of range for a tensor of rank 2"),
    ("dim-negative", lambda b: b.dim(_tensor(b, 2, 3), -3), "axis -3 is out of range for a tensor of rank 2"),
    ("dim-rank-0", lambda b: b.dim(_tensor(b), 0), "axis 0 is out of range for a tensor of rank 0"),
    (
        "broadcast_to",
        lambda b: b.broadcast_to(_tensor(b, 2, 3), 4),
        "cannot broadcast shape (2, 3) to (4,)",
    ),
    (
        "broadcast_to-mismatch",
        lambda b: b.broadcast_to(_tensor(b, 3), 2, 4),
        "cannot broadcast shape (3,) to (2, 4)",
    ),
    (
        "broadcast_to-negative",
        lambda b: b.broadcast_to(_tensor(b, 3), -1, 3),
        "negative dimension in shape (-1, 3)",
    ),
    ("zeros", lambda b: b.zeros(np.float32, 2, -1), "negative dimension in shape (2, -1)"),
    ("ones", lambda b: b.ones(np.float64, -1), "negative dimension in shape (-1,)"),
    ("fill", lambda b: b.fill(np.float32, np.float32(1), -3), "negative dimension in shape (-3,)"),
    ("arange", lambda b: b.arange(np.float32, -1), "arange needs a non-negative length, got -1"),
    (
        "scalar_from_tensor",
        lambda b: b.scalar_from_tensor(_tensor(b, 2)),
        "scalar_from_tensor needs a one-element tensor, got shape (2,)",
    ),
    (
        "scalar_from_tensor-empty",
        lambda b: b.scalar_from_tensor(_tensor(b, 0)),
        "scalar_from_tensor needs a one-element tensor, got shape (0,)",
    ),
    (
        "to_host_scalar",
        lambda b: b.to_host_scalar(_tensor(b, 2, 2)),
        "to_host_scalar needs a one-element tensor, got shape (2, 2)",
    ),
    (
        "unbroadcast-mismatch",
        lambda b: b.unbroadcast(_tensor(b, 2, 3), 4),
        "cannot unbroadcast a tensor of shape (2, 3) to shape (4,)",
    ),
    (
        "unbroadcast-higher-rank",
        lambda b: b.unbroadcast(_tensor(b, 3), 2, 3),
        "cannot unbroadcast a tensor of shape (3,) to shape (2, 3)",
    ),
    (
        "unbroadcast-to-larger",
        lambda b: b.unbroadcast(_tensor(b, 2, 1), 2, 3),
        "cannot unbroadcast a tensor of shape (2, 1) to shape (2, 3)",
    ),
    (
        "unbroadcast-rank-0",
        lambda b: b.unbroadcast(_tensor(b), 1),
        "cannot unbroadcast a tensor of shape () to shape (1,)",
    ),
    (
        "unbroadcast-negative",
        lambda b: b.unbroadcast(_tensor(b, 2, 3), -1, 3),
        "negative dimension in shape (-1, 3)",
    ),
    (
        "expand_dims",
        lambda b: b.expand_dims(_tensor(b, 2, 3), 3),
        "axis 3 is out of range for a tensor of rank 2",
    ),
    (
        "expand_dims-negative",
        lambda b: b.expand_dims(_tensor(b, 2, 3), -4),
        "axis -4 is out of range for a tensor of rank 2",
    ),
    (
        "expand_dims-rank-0",
        lambda b: b.expand_dims(_tensor(b), 1),
        "axis 1 is out of range for a tensor of rank 0",
    ),
]


# Each operation that takes indices, called with a tensor of ``shape`` and ``indices``.
INDEXED: dict[str, Callable[[Backend, Any, tuple[int, ...]], Any]] = {
    "element": lambda b, t, i: b.element(t, *i),
    "with_element": lambda b, t, i: b.with_element(t, np.float32(5), *i),
    "with_element_in_place": lambda b, t, i: b.with_element_in_place(t, np.float32(5), *i),
}

# (case, shape, indices, the ShapeError message)
INDEX_ERRORS: list[tuple[str, tuple[int, ...], tuple[int, ...], str]] = [
    ("past-the-end", (2, 2), (3, 0), "index (3, 0) is out of bounds for a tensor of shape (2, 2)"),
    ("at-the-end", (2, 3), (1, 3), "index (1, 3) is out of bounds for a tensor of shape (2, 3)"),
    ("negative", (2, 2), (0, -1), "index (0, -1) is out of bounds for a tensor of shape (2, 2)"),
    ("empty-axis", (0, 2), (0, 0), "index (0, 0) is out of bounds for a tensor of shape (0, 2)"),
    ("too-few", (2, 2), (1,), "index (1,) has 1 component, not one per axis of a tensor of shape (2, 2)"),
    ("too-many", (2,), (0, 0), "index (0, 0) has 2 components, not one per axis of a tensor of shape (2,)"),
    ("rank-0", (), (0,), "index (0,) has 1 component, not one per axis of a tensor of shape ()"),
    ("none", (3,), (), "index () has 0 components, not one per axis of a tensor of shape (3,)"),
]


class BackendConformance:
    """Every builtin of SIL-SPEC §5 against NumPy, on float32 and float64 data. A subclass provides
    the ``backend`` fixture."""

    def test_reference_covers_every_operation(self) -> None:
        assert set(REFERENCE) == set(OPERATIONS)

    # --- elementwise ---------------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", [(2, 3), (5,), ()], ids=str)
    @pytest.mark.parametrize("name", ELEMENTWISE_UNARY)
    def test_unary(self, backend: Backend, name: str, shape: tuple[int, ...], dtype: DType) -> None:
        x = sample(dtype, *shape, positive=name in POSITIVE_OPERANDS)
        assert_tensor(backend, *run(backend, name, x), dtype)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize(
        ("left", "right"),
        [
            ((2, 3), (2, 3)),
            ((2, 3), (3,)),
            ((3,), (2, 3)),
            ((4, 1), (1, 3)),
            ((), (2, 3)),
            ((2, 3), ()),
            ((), ()),
        ],
        ids=str,
    )
    @pytest.mark.parametrize("name", ELEMENTWISE_BINARY)
    def test_binary(
        self, backend: Backend, name: str, left: tuple[int, ...], right: tuple[int, ...], dtype: DType
    ) -> None:
        positive = name in POSITIVE_OPERANDS
        a, b = sample(dtype, *left, positive=positive), sample(dtype, *right, positive=positive, seed=1)
        assert_tensor(backend, *run(backend, name, a, b), dtype)

    @pytest.mark.parametrize("scalar_first", [False, True], ids=["tensor-scalar", "scalar-tensor"])
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("name", ELEMENTWISE_BINARY)
    def test_binary_with_host_scalar(
        self, backend: Backend, name: str, dtype: DType, scalar_first: bool
    ) -> None:
        t = sample(dtype, 2, 3, positive=True)
        s = host_scalar(dtype, 1.5)
        args = (s, t) if scalar_first else (t, s)
        assert_tensor(backend, *run(backend, name, *args), dtype)

    @pytest.mark.parametrize("name", ELEMENTWISE_BINARY)
    def test_float32_stays_float32_with_a_python_float(self, backend: Backend, name: str) -> None:
        t = sample(np.float32, 3, positive=True)
        assert_tensor(backend, *run(backend, name, t, 1.5), np.float32)
        assert_tensor(backend, *run(backend, name, 1.5, t), np.float32)

    # --- tensor builtins ----------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_matmul(self, backend: Backend, dtype: DType) -> None:
        assert_tensor(
            backend, *run(backend, "matmul", sample(dtype, 2, 3), sample(dtype, 3, 4, seed=1)), dtype
        )

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (5,), ()], ids=str)
    def test_transpose(self, backend: Backend, shape: tuple[int, ...], dtype: DType) -> None:
        assert_tensor(backend, *run(backend, "transpose", sample(dtype, *shape)), dtype)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", [(2, 3), (7,), ()], ids=str)
    @pytest.mark.parametrize("name", ["sum", "mean"])
    def test_reductions_give_host_scalars(
        self, backend: Backend, name: str, shape: tuple[int, ...], dtype: DType
    ) -> None:
        assert_host_scalar(*run(backend, name, sample(dtype, *shape)), dtype)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize(
        ("shape", "axis"), [((2, 3), 0), ((2, 3), 1), ((2, 3), -1), ((2, 3), -2), ((2, 3, 4), 1), ((5,), 0)]
    )
    def test_sum_axis(self, backend: Backend, shape: tuple[int, ...], axis: int, dtype: DType) -> None:
        assert_tensor(backend, *run(backend, "sum_axis", sample(dtype, *shape), axis), dtype)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize(
        ("shape", "target"),
        [((3,), (2, 3)), ((1, 3), (4, 2, 3)), ((), (2, 2)), ((2, 1), (2, 5)), ((3,), (3,))],
    )
    def test_broadcast_to(
        self, backend: Backend, shape: tuple[int, ...], target: tuple[int, ...], dtype: DType
    ) -> None:
        assert_tensor(backend, *run(backend, "broadcast_to", sample(dtype, *shape), *target), dtype)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize(
        ("shape", "target"), [((2, 3), (3, 2)), ((2, 3), (6,)), ((2, 3), (1, 6, 1)), ((), (1, 1)), ((1,), ())]
    )
    def test_reshape(
        self, backend: Backend, shape: tuple[int, ...], target: tuple[int, ...], dtype: DType
    ) -> None:
        assert_tensor(backend, *run(backend, "reshape", sample(dtype, *shape), *target), dtype)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", [(2, 3), (4,), (0, 2), ()], ids=str)
    @pytest.mark.parametrize("name", ["zeros", "ones"])
    def test_zeros_ones(self, backend: Backend, name: str, shape: tuple[int, ...], dtype: DType) -> None:
        assert_tensor(backend, *run(backend, name, dtype, *shape), dtype)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", [(2, 3), ()], ids=str)
    def test_fill(self, backend: Backend, shape: tuple[int, ...], dtype: DType) -> None:
        assert_tensor(backend, *run(backend, "fill", dtype, host_scalar(dtype, 2.5), *shape), dtype)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("n", [5, 1, 0])
    def test_arange(self, backend: Backend, n: int, dtype: DType) -> None:
        actual, expected = run(backend, "arange", dtype, n)
        assert_tensor(backend, actual, expected, dtype)
        assert backend.to_host(actual).tolist() == list(range(n))

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_tensor_from_scalar_is_rank_0(self, backend: Backend, dtype: DType) -> None:
        actual, expected = run(backend, "tensor_from_scalar", dtype, host_scalar(dtype, 1.25))
        assert_tensor(backend, actual, expected, dtype)
        assert backend.to_host(actual).shape == ()

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", [(), (1,), (1, 1)], ids=str)
    def test_scalar_from_tensor(self, backend: Backend, shape: tuple[int, ...], dtype: DType) -> None:
        assert_host_scalar(*run(backend, "scalar_from_tensor", sample(dtype, *shape)), dtype)

    @pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
    def test_dim(self, backend: Backend, axis: int) -> None:
        actual, expected = run(backend, "dim", sample(np.float32, 2, 3, 4), axis)
        assert type(actual) is int
        assert actual == expected

    # --- shapes as values ---------------------------------------------------------------------
    @pytest.mark.parametrize("shape", [(2, 3), (5,), (), (0, 4), (1, 2, 1)], ids=str)
    def test_shape_and_rank_are_python_ints(self, backend: Backend, shape: tuple[int, ...]) -> None:
        x = sample(np.float32, *shape)
        actual_shape, expected_shape = run(backend, "shape", x)
        actual_rank, expected_rank = run(backend, "rank", x)
        assert type(actual_shape) is tuple
        assert [type(d) for d in actual_shape] == [int] * len(shape)
        assert actual_shape == expected_shape == shape
        assert type(actual_rank) is int
        assert actual_rank == expected_rank == len(shape)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize(
        ("shape", "target"),
        [
            ((2, 3), (3,)),  # a leading axis added
            ((4, 2, 3), (3,)),
            ((2, 3), (1, 3)),  # an axis stretched
            ((2, 3), (2, 1)),
            ((2, 3), (1, 1)),
            ((4, 2, 3), (2, 1)),  # both
            ((4, 2, 3), (1, 1, 3)),
            ((4, 2, 3), (1,)),
            ((2, 3), ()),  # to rank 0
            ((5,), ()),
            ((2, 0, 3), (2, 1, 3)),  # an empty axis stretched from 1: zeros
            ((0, 3), (3,)),
        ],
        ids=str,
    )
    def test_unbroadcast(
        self, backend: Backend, shape: tuple[int, ...], target: tuple[int, ...], dtype: DType
    ) -> None:
        actual, expected = run(backend, "unbroadcast", sample(dtype, *shape), *target)
        assert_tensor(backend, actual, expected, dtype)
        assert backend.shape(actual) == target

    @pytest.mark.parametrize("shape", [(2, 3), (1, 1), (4,), ()], ids=str)
    def test_unbroadcast_to_its_own_shape_is_the_operand_itself(
        self, backend: Backend, shape: tuple[int, ...]
    ) -> None:
        t = backend.from_host(sample(np.float32, *shape), np.float32)
        assert backend.unbroadcast(t, *shape) is t

    @pytest.mark.parametrize(
        ("shape", "target"),
        [((3,), (2, 3)), ((2, 1), (4, 2, 5)), ((), (3, 2)), ((1, 3), (1, 3)), ((3, 1, 2), (3, 4, 2))],
        ids=str,
    )
    def test_unbroadcast_is_the_adjoint_of_broadcast_to(
        self, backend: Backend, shape: tuple[int, ...], target: tuple[int, ...]
    ) -> None:
        """<broadcast_to(x, S), y> = <x, unbroadcast(y, shape(x))>, in Double."""
        x = backend.from_host(sample(np.float64, *shape), np.float64)
        y = backend.from_host(sample(np.float64, *target, seed=1), np.float64)
        forward = backend.sum(backend.fmul(backend.broadcast_to(x, *target), y))
        adjoint = backend.sum(backend.fmul(x, backend.unbroadcast(y, *backend.shape(x))))
        np.testing.assert_allclose(forward, adjoint, rtol=1e-12)

    def test_unbroadcast_of_a_broadcast_view(self, backend: Backend) -> None:
        x = sample(np.float32, 3)
        view = backend.broadcast_to(backend.from_host(x, np.float32), 4, 3)
        assert_tensor(backend, backend.unbroadcast(view, 1, 3), 4 * x.reshape(1, 3), np.float32)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize(
        ("shape", "axis"),
        [((2, 3), 0), ((2, 3), 1), ((2, 3), 2), ((2, 3), -1), ((2, 3), -3), ((), 0), ((), -1), ((5,), 1)],
        ids=str,
    )
    def test_expand_dims(self, backend: Backend, shape: tuple[int, ...], axis: int, dtype: DType) -> None:
        assert_tensor(backend, *run(backend, "expand_dims", sample(dtype, *shape), axis), dtype)

    # --- elements -----------------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize(
        ("shape", "indices"),
        [((2, 3), (1, 2)), ((2, 3), (0, 0)), ((5,), (4,)), ((), ()), ((2, 3, 4), (1, 0, 3))],
        ids=str,
    )
    def test_element(
        self, backend: Backend, shape: tuple[int, ...], indices: tuple[int, ...], dtype: DType
    ) -> None:
        actual, expected = run(backend, "element", sample(dtype, *shape), *indices)
        assert_host_scalar(actual, expected, dtype)
        assert actual == expected

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize(
        ("shape", "indices"),
        [((2, 3), (1, 2)), ((2, 3), (0, 0)), ((5,), (4,)), ((), ()), ((2, 3, 4), (1, 0, 3))],
        ids=str,
    )
    def test_with_element_leaves_its_operand_alone(
        self, backend: Backend, shape: tuple[int, ...], indices: tuple[int, ...], dtype: DType
    ) -> None:
        x = sample(dtype, *shape)
        t = backend.from_host(x, dtype)
        value = host_scalar(dtype, 7.25)
        actual = backend.with_element(t, value, *indices)
        assert actual is not t
        assert_tensor(backend, actual, REFERENCE["with_element"](x, value, *indices), dtype)
        assert backend.element(actual, *indices) == value
        assert backend.to_host(t).tolist() == x.tolist()

    def test_with_element_converts_the_value_to_the_element_type(self, backend: Backend) -> None:
        t = backend.with_element(backend.zeros(np.float32, 2), 0.1, 1)
        assert backend.to_host(t).dtype == np.float32
        assert backend.element(t, 1) == np.float32(0.1)

    def test_with_element_of_a_broadcast_view(self, backend: Backend) -> None:
        x = sample(np.float32, 3)
        view = backend.broadcast_to(backend.from_host(x, np.float32), 2, 3)
        actual = backend.with_element(view, np.float32(9), 1, 1)
        expected = np.broadcast_to(x, (2, 3)).copy()
        expected[1, 1] = 9
        assert backend.to_host(actual).tolist() == expected.tolist()
        assert backend.to_host(view).tolist() == np.broadcast_to(x, (2, 3)).tolist()

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_in_place_element_updates_write_into_their_operand(self, backend: Backend, dtype: DType) -> None:
        x = sample(dtype, 2, 3)
        t = backend.from_host(x, dtype)
        assert backend.with_element_in_place(t, host_scalar(dtype, 7.25), 1, 2) is t
        assert backend.with_element_in_place(t, host_scalar(dtype, 0.5), 0, 1) is t
        expected = x.copy()
        expected[1, 2] = 7.25
        expected[0, 1] = 0.5
        assert backend.to_host(t).tolist() == expected.tolist()

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_in_place_element_updates_of_rank_0(self, backend: Backend, dtype: DType) -> None:
        t = backend.tensor_from_scalar(dtype, host_scalar(dtype, 1.0))
        assert backend.with_element_in_place(t, host_scalar(dtype, -1.5)) is t
        assert backend.element(t) == -1.5

    # --- masks ----------------------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_step_and_sign_are_exact_on_special_values(self, backend: Backend, dtype: DType) -> None:
        info = np.finfo(dtype)
        subnormal = np.float32(1e-45) if dtype is np.float32 else info.smallest_subnormal
        specials = [np.nan, -np.nan, 0.0, -0.0, np.inf, -np.inf, subnormal, -subnormal, info.tiny, -info.tiny]
        x = np.array([*specials, info.max, -info.max, 2.5, -3.0], dtype)
        t = backend.from_host(x, dtype)
        step, sign = backend.to_host(backend.step(t)), backend.to_host(backend.sign(t))
        assert step.dtype == sign.dtype == dtype
        assert step.tolist() == [0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
        assert np.isnan(sign[:2]).all()
        assert sign[2:].tolist() == [0, 0, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1]
        assert not np.signbit(sign[2:4]).any(), "-0.0 gives +0"
        np.testing.assert_array_equal(step, REFERENCE["step"](x))
        np.testing.assert_array_equal(sign, REFERENCE["sign"](x))

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_step_and_sign_of_rank_0(self, backend: Backend, dtype: DType) -> None:
        subnormal = backend.from_host(np.array(np.finfo(dtype).smallest_subnormal), dtype)
        for result, expected in [(backend.step(subnormal), 1.0), (backend.sign(subnormal), 1.0)]:
            assert_tensor(backend, result, np.array(expected, dtype), dtype)

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_rank_0_operands_give_rank_0_tensors(self, backend: Backend, dtype: DType) -> None:
        t = backend.tensor_from_scalar(dtype, host_scalar(dtype, 4.0))
        for result in (backend.fadd(t, t), backend.fmul(t, host_scalar(dtype, 2.0)), backend.sqrt(t)):
            assert backend.is_tensor(result)
            assert backend.to_host(result).shape == ()
            assert backend.to_host(result).dtype == dtype

    # --- transfers ----------------------------------------------------------------------------
    def test_from_host_copies_and_converts(self, backend: Backend) -> None:
        host = np.arange(6).reshape(2, 3)
        t = backend.from_host(host, np.float32)
        host[0, 0] = 100
        back = backend.to_host(t)
        assert back.dtype == np.float32
        assert back.tolist() == [[0, 1, 2], [3, 4, 5]]

    def test_to_host_copies(self, backend: Backend) -> None:
        t = backend.from_host(np.zeros(3), np.float64)
        backend.to_host(t)[0] = 7.0
        assert backend.to_host(t).tolist() == [0.0, 0.0, 0.0]

    def test_host_scalars_are_not_tensors(self, backend: Backend) -> None:
        assert backend.is_tensor(backend.zeros(np.float32, 2))
        assert not backend.is_tensor(1.5)
        assert not backend.is_tensor(np.float32(1.5))

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_a_program_transfers_once_each_way(self, backend: Backend, dtype: DType) -> None:
        counter = TransferCounter(backend)
        x = sample(dtype, 4, 3)
        result, operations = tensor_program(
            lambda name, *args: backend.op(name)(*args), backend.from_host(x, dtype), dtype
        )
        host = backend.to_host(result)
        assert operations == 100
        assert counter.counts == {"from_host": 1, "to_host": 1, "to_host_scalar": 0}
        expected, _ = tensor_program(lambda name, *args: REFERENCE[name](*args), x, dtype)
        assert host.dtype == dtype
        np.testing.assert_allclose(host, expected, rtol=1e-4, atol=1e-4)

    @pytest.mark.parametrize(
        ("name", "indices"), [("sum", ()), ("mean", ()), ("scalar_from_tensor", ()), ("element", (0,))]
    )
    def test_scalar_results_go_through_to_host_scalar(
        self, backend: Backend, name: str, indices: tuple[int, ...]
    ) -> None:
        t = backend.ones(np.float32, 1)
        counter = TransferCounter(backend)
        backend.op(name)(t, *indices)
        assert counter.counts == {"from_host": 0, "to_host": 0, "to_host_scalar": 1}

    def test_shapes_masks_and_element_updates_transfer_nothing(self, backend: Backend) -> None:
        t = backend.ones(np.float32, 2, 3)
        counter = TransferCounter(backend)
        assert backend.shape(t) == (2, 3)
        assert backend.rank(t) == 2
        backend.unbroadcast(t, 1, 3)
        backend.expand_dims(t, 0)
        backend.step(t)
        backend.sign(t)
        backend.with_element(t, np.float32(2), 1, 1)
        backend.with_element_in_place(t, np.float32(2), 1, 1)
        assert counter.counts == {"from_host": 0, "to_host": 0, "to_host_scalar": 0}

    # --- errors -------------------------------------------------------------------------------
    @pytest.mark.parametrize("scalar_first", [False, True])
    @pytest.mark.parametrize("name", ELEMENTWISE_BINARY)
    def test_binary_operands_that_do_not_broadcast(
        self, backend: Backend, name: str, scalar_first: bool
    ) -> None:
        a, b = _tensor(backend, 2, 3), _tensor(backend, 4)
        args, message = ((b, a), "(4,) and (2, 3)") if scalar_first else ((a, b), "(2, 3) and (4,)")
        with pytest.raises(ShapeError, match=re.escape(f"cannot broadcast shapes {message}")):
            backend.op(name)(*args)

    @pytest.mark.parametrize(
        ("call", "message"), [case[1:] for case in SHAPE_ERRORS], ids=[c[0] for c in SHAPE_ERRORS]
    )
    def test_shape_errors(self, backend: Backend, call: Callable[[Backend], Any], message: str) -> None:
        with pytest.raises(ShapeError) as caught:
            call(backend)
        assert str(caught.value) == message

    @pytest.mark.parametrize(
        ("shape", "indices", "message"), [case[1:] for case in INDEX_ERRORS], ids=[c[0] for c in INDEX_ERRORS]
    )
    @pytest.mark.parametrize("name", INDEXED)
    def test_index_errors(
        self, backend: Backend, name: str, shape: tuple[int, ...], indices: tuple[int, ...], message: str
    ) -> None:
        x = sample(np.float32, *shape)
        t = backend.from_host(x, np.float32)
        with pytest.raises(ShapeError) as caught:
            INDEXED[name](backend, t, indices)
        assert str(caught.value) == message
        assert backend.to_host(t).tolist() == x.tolist(), "a refused update changes nothing"

    @pytest.mark.parametrize(
        ("call", "shape"),
        [
            (lambda b, n: b.zeros(np.float32, 16, n), (16, 17)),
            (lambda b, n: b.ones(np.float32, n, 16), (17, 16)),
            (lambda b, n: b.fill(np.float32, np.float32(2), 4, 4, n), (4, 4, 17)),
            (lambda b, n: b.arange(np.float32, 16 * n), (272,)),
            (lambda b, n: b.matmul(_tensor(b, 16, 1), _tensor(b, 1, n)), (16, 17)),
            (lambda b, n: b.broadcast_to(_tensor(b, 1), n, 16), (17, 16)),
        ],
        ids=["zeros", "ones", "fill", "arange", "matmul", "broadcast_to"],
    )
    def test_a_tensor_larger_than_memory_is_refused(
        self, backend: Backend, call: Callable[[Backend, int], Any], shape: tuple[int, ...]
    ) -> None:
        backend.memory = 1024  # 256 float32s, on this backend object only
        assert backend.to_host(call(backend, 16)).size == 256  # as much as fits
        with pytest.raises(AllocationError) as caught:
            call(backend, 17)
        assert re.fullmatch(
            rf"shape {re.escape(str(shape))} of float32 needs 1\.06 KiB, more than the 1 KiB of .*memory.*",
            str(caught.value),
        ), str(caught.value)

    def test_the_memory_a_backend_has_is_known(self, backend: Backend) -> None:
        assert backend.memory is None or backend.memory > 2**20

    def test_floating_point_errors_give_ieee_results_without_warnings(self, backend: Backend) -> None:
        big = backend.from_host(np.array([3e38, -3e38]), np.float32)
        with warnings.catch_warnings(record=True) as caught:
            # A control: a warning raised here, outside the backend, is recorded.
            warnings.filterwarnings("always", category=RuntimeWarning, module=re.escape(__name__))
            np.log(np.zeros(1))
            results = {
                "exp": backend.exp(backend.from_host(np.array([1000.0]), np.float32)),
                "log": backend.log(backend.zeros(np.float32, 1)),
                "sqrt": backend.sqrt(backend.fill(np.float64, -1.0, 1)),
                "fdiv": backend.fdiv(backend.ones(np.float32, 1), np.float32(0)),
                "fadd": backend.fadd(big, big),
                "fmul": backend.fmul(big, np.float32(10)),
                "pow": backend.pow(big, np.float32(2)),
                "matmul": backend.matmul(backend.reshape(big, 1, 2), backend.reshape(big, 2, 1)),
                "from_host": backend.from_host(np.array([1e300]), np.float32),
            }
            total = backend.sum(backend.fill(np.float32, np.float32(3e38), 2))
            empty_mean = backend.mean(backend.zeros(np.float32, 0))
        assert [str(w.message) for w in caught] == ["divide by zero encountered in log"]
        host = {name: backend.to_host(t) for name, t in results.items()}
        assert host["exp"].tolist() == [np.inf]
        assert host["log"].tolist() == [-np.inf]
        assert np.isnan(host["sqrt"]).all()
        assert host["fdiv"].tolist() == [np.inf]
        assert host["fadd"].tolist() == [np.inf, -np.inf]
        assert host["from_host"].tolist() == [np.inf]
        assert np.isinf(host["matmul"]).all()
        assert total == np.inf
        assert np.isnan(empty_mean)
