"""Tensor builtins (SIL-SPEC §5) on Tensor<Float> (float32) and Tensor<Double> (float64), against NumPy.

Elementwise arithmetic broadcasts as NumPy does, also with a scalar operand on either side; each
elementwise builtin gives on a tensor what it gives on the same values as scalars; the tensor
builtins (matmul, transpose, sum, mean, sum_axis, broadcast_to, reshape, zeros, ones, fill, arange,
tensor_from_scalar, scalar_from_tensor, dim) compute what NumPy does, bit for bit, and keep the
element type (float32 for Float). Operands that do not fit are faults located at the builtin.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.interp.reference import BINARY, DTYPES, UNARY, VALUES, numpy_power_is_ambiguous
from tests.interp.support import (
    assert_located,
    assert_scalar,
    assert_tensor,
    builtin_function,
    check_all,
    fault,
    mismatch,
    run,
)

ELEMENTS = ("Float", "Double")
INF, NAN = float("inf"), float("nan")
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.5, -3.25, 0.1, 1e-40, 1e30, 100.0, INF, -INF, NAN]


def tensor(element: str) -> str:
    return f"Tensor<{element}>"


def data(element: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray[Any, Any]:
    """A deterministic array of ``shape``: the special values first, then random ones."""
    size = int(np.prod(shape, dtype=np.int64))
    values = np.random.default_rng(seed).normal(0.0, 3.0, size)
    values[: min(size, len(SPECIAL))] = SPECIAL[:size]
    return np.asarray(values.reshape(shape), dtype=DTYPES[element])


def numpy_ref(fn: Callable[..., Any], *args: Any) -> Any:
    with np.errstate(all="ignore"):
        return fn(*args)


# --- elementwise ------------------------------------------------------------------------------------

SHAPES = [(), (1,), (5,), (2, 3), (3, 2, 4)]


@pytest.mark.parametrize("element", ELEMENTS)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_elementwise(name: str, element: str) -> None:
    text = builtin_function(name, [tensor(element)], tensor(element))
    for shape in SHAPES:
        x = data(element, shape)
        assert_tensor(run(text, x), numpy_ref(lambda a: np.asarray(UNARY[name](a)), x), DTYPES[element])


BROADCAST_SHAPES = [
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((3,), (2, 3)),
    ((3, 1), (1, 4)),
    ((), (2,)),
    ((2, 1, 3), (4, 1)),
    ((1,), ()),
    ((0, 3), (1, 3)),
]


@pytest.mark.parametrize("element", ELEMENTS)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_elementwise_broadcasts(name: str, element: str) -> None:
    t = tensor(element)
    text = builtin_function(name, [t, t], t)
    for i, (sa, sb) in enumerate(BROADCAST_SHAPES):
        a, b = data(element, sa, seed=i), data(element, sb, seed=100 + i)
        if name == "pow":
            b = np.abs(b) if b.ndim else b  # keep some NaN-free results
        expected = numpy_ref(lambda x, y: np.asarray(BINARY[name](x, y)), a, b)
        assert_tensor(run(text, a, b), expected, DTYPES[element])


@pytest.mark.parametrize("element", ELEMENTS)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_elementwise_with_a_scalar_on_either_side(name: str, element: str) -> None:
    t, dtype = tensor(element), DTYPES[element]
    tensor_scalar = builtin_function(name, [t, element], t)
    scalar_tensor = builtin_function(name, [element, t], t)
    for shape in [(), (4,), (2, 3)]:
        x = data(element, shape, seed=7)
        for s in [0.1, -2.0, 0.5, float("inf")]:
            assert_tensor(run(tensor_scalar, x, s), numpy_ref(BINARY[name], x, dtype(s)), dtype)
            assert_tensor(run(scalar_tensor, s, x), numpy_ref(BINARY[name], dtype(s), x), dtype)


@pytest.mark.parametrize("element", ELEMENTS)
@pytest.mark.parametrize("name", [*UNARY, *BINARY])
def test_elementwise_tensor_agrees_with_scalar(name: str, element: str) -> None:
    """A builtin gives on each element of a tensor what it gives on that value as a scalar (within a
    few ulps for transcendentals, which the two compute with different kernels: see ``agreement``)."""
    values = VALUES[element]
    dtype = DTYPES[element]
    t = tensor(element)
    if name in UNARY:
        scalar = builtin_function(name, [element], element)
        on_tensor = run(builtin_function(name, [t], t), np.asarray(values, dtype=dtype))
        cases = [
            (f"{name}({x!r})", agreement(name, element, run(scalar, x), on_tensor[i]))
            for i, x in enumerate(values)
        ]
    else:
        scalar = builtin_function(name, [element, element], element)
        pairs = [
            (a, b) for a in values for b in values if not (name == "pow" and numpy_power_is_ambiguous(a, b))
        ]
        left = np.asarray([a for a, _ in pairs], dtype=dtype)
        right = np.asarray([b for _, b in pairs], dtype=dtype)
        on_tensor = run(builtin_function(name, [t, t], t), left, right)
        cases = [
            (f"{name}({a!r}, {b!r})", agreement(name, element, run(scalar, a, b), on_tensor[i]))
            for i, (a, b) in enumerate(pairs)
        ]
    check_all(cases)


TRANSCENDENTAL = ("exp", "log", "sin", "cos", "tanh", "pow")

# A transcendental builtin on a scalar and on a tensor element runs different code: Double scalars go
# through libm (Python's ``math``) and tensors through NumPy's float64 kernels; Float scalars through
# NumPy's one-value loop and tensors through its vectorized (AVX2, AVX-512) float32 kernels. None of
# these is correctly rounded, so the two may differ in the last bits: on AVX-512 CPUs ``pow(1.5, 0.5)``
# in Float is 1.2247449 vectorized and 1.2247448 on one value. Such cases agree within a few ulps of
# their type; the vectorized kernels are the looser ones, hence more room for Float. Every test that
# compares the interpreter with NumPy on the same path stays exact.
TRANSCENDENTAL_ULPS = {"Float": 4, "Double": 2}


def ulp(x: float, element: str) -> float:
    """The spacing of the element type at ``x``."""
    return float(np.spacing(DTYPES[element](abs(x))))


def agreement(name: str, element: str, scalar: Any, on_tensor: Any) -> str | None:
    """None when a scalar result and a tensor element agree: exactly, or within
    ``TRANSCENDENTAL_ULPS`` for a transcendental."""
    if name in TRANSCENDENTAL and math.isfinite(scalar):
        ulps = TRANSCENDENTAL_ULPS[element]
        close = abs(scalar - float(on_tensor)) <= ulps * ulp(scalar, element)
        return None if close else f"got {scalar!r}, tensor gives {float(on_tensor)!r} (more than {ulps} ulps)"
    return mismatch(scalar, on_tensor, element)


def test_agreement_allows_the_vectorized_kernels_their_ulps_and_no_more() -> None:
    """The AVX-512 case of Float ``pow(1.5, 0.5)`` (one ulp apart) agrees; five ulps do not, and
    non-transcendental builtins stay exact."""
    scalar, vectorized = 1.2247449159622192, float(np.float32(1.2247448))
    assert agreement("pow", "Float", scalar, vectorized) is None
    assert agreement("pow", "Float", scalar, scalar + 5 * ulp(scalar, "Float")) is not None
    assert agreement("fmul", "Float", scalar, vectorized) is not None
    assert agreement("exp", "Double", 1.0, 1.0 + 2 * ulp(1.0, "Double")) is None
    assert agreement("exp", "Double", 1.0, 1.0 + 3 * ulp(1.0, "Double")) is not None


@pytest.mark.parametrize("name", list(BINARY))
def test_shape_mismatch_faults_at_the_builtin(name: str) -> None:
    t = tensor("Float")
    text = builtin_function(name, [t, t], t)
    diagnostic = fault(text, np.zeros((2, 3), np.float32), np.zeros((4,), np.float32))
    assert_located(diagnostic, text, f'builtin "{name}"', f"shape mismatch in '{name}': ")
    assert diagnostic.message == f"shape mismatch in '{name}': cannot broadcast shapes (2, 3) and (4,)"


# --- tensor builtins ----------------------------------------------------------------------------------


@pytest.mark.parametrize("element", ELEMENTS)
def test_matmul(element: str) -> None:
    t, dtype = tensor(element), DTYPES[element]
    text = builtin_function("matmul", [t, t], t)
    for i, (sa, sb) in enumerate([((2, 3), (3, 4)), ((1, 1), (1, 5)), ((4, 2), (2, 1)), ((3, 0), (0, 2))]):
        finite = {"nan": 1.0, "posinf": 2.0, "neginf": -2.0}
        a = np.nan_to_num(data(element, sa, seed=i), **finite)
        b = np.nan_to_num(data(element, sb, seed=50 + i), **finite)
        assert_tensor(run(text, a, b), np.matmul(a, b), dtype)


@pytest.mark.parametrize(
    ("sa", "sb", "message"),
    [
        ((2, 3), (2, 3), "(2, 3) and (2, 3)"),
        ((3,), (3,), "(3,) and (3,)"),
        ((3,), (3, 2), "(3,) and (3, 2)"),
        ((2, 2, 2), (2, 2), "(2, 2, 2) and (2, 2)"),
    ],
)
def test_matmul_needs_matching_matrices(sa: tuple[int, ...], sb: tuple[int, ...], message: str) -> None:
    t = tensor("Double")
    text = builtin_function("matmul", [t, t], t)
    diagnostic = fault(text, np.ones(sa), np.ones(sb))
    assert_located(diagnostic, text, 'builtin "matmul"', "shape mismatch in 'matmul': ")
    assert message in diagnostic.message


@pytest.mark.parametrize("element", ELEMENTS)
def test_transpose_reverses_the_axes(element: str) -> None:
    t = tensor(element)
    text = builtin_function("transpose", [t], t)
    for shape in [(), (5,), (2, 3), (2, 3, 4)]:
        x = data(element, shape)
        assert_tensor(run(text, x), np.transpose(x), DTYPES[element])


@pytest.mark.parametrize("element", ELEMENTS)
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_reductions_to_a_scalar(name: str, element: str) -> None:
    text = builtin_function(name, [tensor(element)], element)
    fn = np.sum if name == "sum" else np.mean
    rng = np.random.default_rng(3)
    for shape in [(), (1,), (7,), (2, 3), (1000,), (17, 31)]:
        x = np.asarray(rng.normal(0.0, 1.0, shape) * 1e3, dtype=DTYPES[element])
        expected = fn(x)
        assert expected.dtype == DTYPES[element]
        assert_scalar(run(text, x), expected, element)
    assert_scalar(run(text, np.asarray([1.0, float("inf")], DTYPES[element])), float("inf"), element)


def test_sum_of_nothing_is_zero_and_mean_is_nan() -> None:
    for element in ELEMENTS:
        empty = np.zeros((0, 3), DTYPES[element])
        assert_scalar(run(builtin_function("sum", [tensor(element)], element), empty), 0.0, element)
        assert_scalar(run(builtin_function("mean", [tensor(element)], element), empty), float("nan"), element)


def test_a_float_reduction_stays_binary32_in_later_arithmetic() -> None:
    """``sum`` of a Tensor<Float> is a Float: adding a Float to it rounds to binary32."""
    text = (
        "sil @f : $@convention(thin) (Tensor<Float>, Float) -> Float {\n"
        "bb0(%t : $Tensor<Float>, %x : $Float):\n"
        '  %s = builtin "sum"(%t : $Tensor<Float>) : $Float\n'
        '  %m = builtin "scalar_from_tensor"(%t : $Tensor<Float>) : $Float\n'
        '  %a = builtin "fadd"(%s : $Float, %x : $Float) : $Float\n'
        '  %b = builtin "fadd"(%a : $Float, %m : $Float) : $Float\n'
        "  return %b : $Float\n"
        "}\n"
    )
    t = np.asarray([16777216.0], np.float32)
    expected = np.float32(16777216.0) + np.float32(1.0) + np.float32(16777216.0)
    assert_scalar(run(text, t, 1.0), expected, "Float")


@pytest.mark.parametrize("element", ELEMENTS)
def test_sum_axis(element: str) -> None:
    text = builtin_function("sum_axis", [tensor(element), "Int"], tensor(element))
    for shape, axes in [
        ((5,), [0, -1]),
        ((2, 3), [0, 1, -1, -2]),
        ((2, 3, 4), [0, 1, 2, -1]),
        ((0, 2), [0, 1]),
    ]:
        x = data(element, shape)
        for axis in axes:
            assert_tensor(run(text, x, axis), np.asarray(np.sum(x, axis=axis)), DTYPES[element])


@pytest.mark.parametrize(("shape", "axis"), [((2, 3), 2), ((2, 3), -3), ((), 0)])
def test_sum_axis_out_of_range_faults(shape: tuple[int, ...], axis: int) -> None:
    text = builtin_function("sum_axis", [tensor("Float"), "Int"], tensor("Float"))
    diagnostic = fault(text, np.zeros(shape, np.float32), axis)
    assert_located(diagnostic, text, 'builtin "sum_axis"', "shape mismatch in 'sum_axis': ")
    assert f"axis {axis}" in diagnostic.message


def shape_function(name: str, element: str, rank: int, source: bool = True, scalar: bool = False) -> str:
    operands = ([tensor(element)] if source else []) + ([element] if scalar else []) + ["Int"] * rank
    return builtin_function(name, operands, tensor(element))


@pytest.mark.parametrize("element", ELEMENTS)
def test_broadcast_to(element: str) -> None:
    dtype = DTYPES[element]
    for source, target in [((3,), (2, 3)), ((1,), (4,)), ((), (2, 2)), ((2, 1), (2, 5)), ((2, 3), (2, 3))]:
        x = data(element, source)
        result = run(shape_function("broadcast_to", element, len(target)), x, *target)
        assert_tensor(result, np.broadcast_to(x, target), dtype)


def test_broadcast_to_result_is_usable_by_later_builtins() -> None:
    text = (
        "sil @f : $@convention(thin) (Tensor<Float>, Int, Int) -> Tensor<Float> {\n"
        "bb0(%t : $Tensor<Float>, %m : $Int, %n : $Int):\n"
        '  %b = builtin "broadcast_to"(%t : $Tensor<Float>, %m : $Int, %n : $Int) : $Tensor<Float>\n'
        '  %s = builtin "fadd"(%b : $Tensor<Float>, %b : $Tensor<Float>) : $Tensor<Float>\n'
        '  %r = builtin "reshape"(%s : $Tensor<Float>, %n : $Int, %m : $Int) : $Tensor<Float>\n'
        "  return %r : $Tensor<Float>\n"
        "}\n"
    )
    x = np.asarray([1.0, 2.0, 3.0], np.float32)
    expected = (np.broadcast_to(x, (2, 3)) * np.float32(2)).reshape(3, 2)
    assert_tensor(run(text, x, 2, 3), expected, np.float32)
    assert np.array_equal(x, [1.0, 2.0, 3.0]), "the argument must not change"


@pytest.mark.parametrize(("source", "target"), [((3,), (2, 4)), ((2, 3), (3,)), ((2,), (-1,))])
def test_broadcast_to_a_shape_that_does_not_fit_faults(
    source: tuple[int, ...], target: tuple[int, ...]
) -> None:
    text = shape_function("broadcast_to", "Double", len(target))
    diagnostic = fault(text, np.zeros(source), *target)
    assert_located(diagnostic, text, 'builtin "broadcast_to"', "shape mismatch in 'broadcast_to': ")


@pytest.mark.parametrize("element", ELEMENTS)
def test_reshape(element: str) -> None:
    dtype = DTYPES[element]
    for source, target in [((2, 3), (3, 2)), ((6,), (1, 6, 1)), ((1,), ()), ((), (1, 1)), ((2, 3, 4), (24,))]:
        x = data(element, source)
        result = run(shape_function("reshape", element, len(target)), x, *target)
        assert_tensor(result, x.reshape(target), dtype)


@pytest.mark.parametrize(("source", "target"), [((2, 3), (4,)), ((6,), (-1,)), ((6,), (2, -1)), ((2,), ())])
def test_reshape_to_another_size_faults(source: tuple[int, ...], target: tuple[int, ...]) -> None:
    text = shape_function("reshape", "Float", len(target))
    diagnostic = fault(text, np.zeros(source, np.float32), *target)
    assert_located(diagnostic, text, 'builtin "reshape"', "shape mismatch in 'reshape': ")


@pytest.mark.parametrize("element", ELEMENTS)
@pytest.mark.parametrize("name", ["zeros", "ones"])
def test_zeros_and_ones(name: str, element: str) -> None:
    dtype = DTYPES[element]
    make = np.zeros if name == "zeros" else np.ones
    for shape in [(), (3,), (2, 3), (0, 4), (1, 2, 1)]:
        result = run(shape_function(name, element, len(shape), source=False), *shape)
        assert_tensor(result, make(shape, dtype), dtype)


@pytest.mark.parametrize("element", ELEMENTS)
def test_fill(element: str) -> None:
    dtype = DTYPES[element]
    for value in [0.1, -2.5, float("inf"), float("nan"), 1e-40]:
        for shape in [(), (3,), (2, 3)]:
            result = run(
                shape_function("fill", element, len(shape), source=False, scalar=True), value, *shape
            )
            assert_tensor(result, np.full(shape, dtype(value), dtype), dtype)


@pytest.mark.parametrize("element", ELEMENTS)
def test_arange(element: str) -> None:
    dtype = DTYPES[element]
    text = builtin_function("arange", ["Int"], tensor(element))
    for n in [0, 1, 5, 100]:
        assert_tensor(run(text, n), np.arange(n, dtype=dtype), dtype)


@pytest.mark.parametrize(
    ("name", "dims"), [("zeros", (2, -1)), ("ones", (-3,)), ("fill", (-1, 2)), ("arange", (-1,))]
)
def test_creation_with_a_negative_size_faults(name: str, dims: tuple[int, ...]) -> None:
    operands = (["Float"] if name == "fill" else []) + ["Int"] * len(dims)
    text = builtin_function(name, operands, tensor("Float"))
    args = ((1.0,) if name == "fill" else ()) + dims
    diagnostic = fault(text, *args)
    assert_located(diagnostic, text, f'builtin "{name}"', f"shape mismatch in '{name}': ")


HUGE = 1_000_000  # a million by a million Float: 3.64 TiB, more than any machine running this has


@pytest.mark.parametrize(
    ("name", "dims"),
    [("zeros", (HUGE, HUGE)), ("ones", (HUGE, HUGE)), ("fill", (HUGE, HUGE)), ("arange", (HUGE**2,))],
)
def test_creating_a_tensor_too_large_for_memory_faults_before_allocating(
    name: str, dims: tuple[int, ...]
) -> None:
    operands = (["Float"] if name == "fill" else []) + ["Int"] * len(dims)
    text = builtin_function(name, operands, tensor("Float"))
    diagnostic = fault(text, *((1.0,) if name == "fill" else ()), *dims)
    assert_located(diagnostic, text, f'builtin "{name}"', f"tensor too large in '{name}': ")
    shape = f"({HUGE}, {HUGE})" if len(dims) == 2 else f"({HUGE**2},)"
    assert re.fullmatch(
        rf"tensor too large in '{name}': shape {re.escape(shape)} of float32 needs 3\.64 TiB, "
        r"more than the [0-9.]+ [KMGT]iB of memory here",
        diagnostic.message,
    ), diagnostic.message


# Not elementwise arithmetic: NumPy's own MemoryError is caught there (a bound checked before each
# call would cost more than adding small tensors), but where the system overcommits memory an
# allocation of terabytes can succeed, and the test would fill the machine's memory.
@pytest.mark.parametrize("name", ["matmul", "broadcast_to"])
def test_a_result_too_large_for_memory_faults_before_allocating(name: str) -> None:
    t = tensor("Float")
    if name == "broadcast_to":
        text = builtin_function(name, [t, "Int", "Int"], t)
        args: tuple[Any, ...] = (np.ones((1, 1), np.float32), HUGE, HUGE)
    else:
        text = builtin_function(name, [t, t], t)
        args = (np.ones((HUGE, 1), np.float32), np.ones((1, HUGE), np.float32))
    diagnostic = fault(text, *args)
    assert_located(diagnostic, text, f'builtin "{name}"', f"tensor too large in '{name}': ")
    assert "3.64 TiB" in diagnostic.message


@pytest.mark.parametrize("element", ELEMENTS)
def test_tensor_from_scalar_is_rank_zero(element: str) -> None:
    dtype = DTYPES[element]
    text = builtin_function("tensor_from_scalar", [element], tensor(element))
    for value in [0.1, -0.0, float("inf"), float("nan"), 3.0]:
        assert_tensor(run(text, value), np.asarray(dtype(value)), dtype)


@pytest.mark.parametrize("element", ELEMENTS)
def test_scalar_from_tensor(element: str) -> None:
    dtype = DTYPES[element]
    text = builtin_function("scalar_from_tensor", [tensor(element)], element)
    for shape in [(), (1,), (1, 1), (1, 1, 1)]:
        for value in [0.1, -0.0, float("nan")]:
            assert_scalar(run(text, np.full(shape, value, dtype)), dtype(value), element)


@pytest.mark.parametrize("shape", [(2,), (0,), (1, 2)])
def test_scalar_from_tensor_needs_one_element(shape: tuple[int, ...]) -> None:
    text = builtin_function("scalar_from_tensor", [tensor("Double")], "Double")
    diagnostic = fault(text, np.zeros(shape))
    assert_located(
        diagnostic, text, 'builtin "scalar_from_tensor"', "shape mismatch in 'scalar_from_tensor': "
    )


@pytest.mark.parametrize("element", ELEMENTS)
def test_dim(element: str) -> None:
    text = builtin_function("dim", [tensor(element), "Int"], "Int")
    x = np.zeros((2, 3, 5), DTYPES[element])
    check_all(
        [
            (f"dim({axis})", mismatch(run(text, x, axis), x.shape[axis], "Int"))
            for axis in [0, 1, 2, -1, -2, -3]
        ]
    )
    assert run(text, np.zeros((0, 4), DTYPES[element]), 0) == 0


@pytest.mark.parametrize(("shape", "axis"), [((2, 3), 2), ((2, 3), -3), ((), 0)])
def test_dim_out_of_range_faults(shape: tuple[int, ...], axis: int) -> None:
    text = builtin_function("dim", [tensor("Float"), "Int"], "Int")
    diagnostic = fault(text, np.zeros(shape, np.float32), axis)
    assert_located(diagnostic, text, 'builtin "dim"', "shape mismatch in 'dim': ")


def test_tensor_arguments_are_converted_to_the_element_type() -> None:
    """A list or a float64 array passed for a Tensor<Float> runs as float32."""
    t = tensor("Float")
    text = builtin_function("fadd", [t, t], t)
    a = [0.1, 0.2]
    expected = np.asarray(a, np.float32) + np.asarray(a, np.float32)
    assert_tensor(run(text, a, np.asarray(a)), expected, np.float32)


# --- shapes as values (SIL-SPEC §2 TensorShape) ---------------------------------------------------


def shaped_function(name: str, element: str, *, with_scalar: bool = False) -> str:
    """``@f(x, y[, s])``: builtin ``name`` of ``x`` (and of ``s``) to ``shape(y)``; the makers
    (``zeros``, ``ones``, ``fill``) take no ``x``."""
    t = tensor(element)
    params = [f"%x : ${t}", f"%y : ${t}"] + ([f"%s : ${element}"] if with_scalar else [])
    operands = [] if name in ("zeros", "ones", "fill") else [f"%x : ${t}"]
    operands += [f"%s : ${element}"] if with_scalar else []
    operands.append("%s0 : $TensorShape")
    types = ", ".join(p.split("$")[1] for p in params)
    return (
        f"sil @f : $@convention(thin) ({types}) -> {t} {{\n"
        f"bb0({', '.join(params)}):\n"
        f'  %s0 = builtin "shape"(%y : ${t}) : $TensorShape\n'
        f'  %r = builtin "{name}"({", ".join(operands)}) : ${t}\n'
        f"  return %r : ${t}\n"
        "}\n"
    )


@pytest.mark.parametrize("element", ELEMENTS)
def test_shape_and_rank(element: str) -> None:
    t = tensor(element)
    for shape in [(), (0,), (3,), (2, 1, 4)]:
        x = np.zeros(shape, DTYPES[element])
        assert run(builtin_function("shape", [t], "TensorShape"), x) == shape
        assert_scalar(run(builtin_function("rank", [t], "Int"), x), len(shape), "Int")


@pytest.mark.parametrize("element", ELEMENTS)
@pytest.mark.parametrize("name", ["broadcast_to", "reshape", "zeros", "ones", "fill", "unbroadcast"])
def test_a_tensorshape_operand_gives_the_dimensions(name: str, element: str) -> None:
    """Each builtin to ``shape(y)`` gives what it gives to ``y``'s dimensions as Ints."""
    dtype = DTYPES[element]
    text = shaped_function(name, element, with_scalar=name == "fill")
    x = data(element, {"broadcast_to": (3,), "reshape": (3, 2), "unbroadcast": (4, 2, 3)}.get(name, (2,)))
    y = np.zeros((2, 3), dtype)
    expected = {
        "broadcast_to": lambda: np.broadcast_to(x, (2, 3)),
        "reshape": lambda: x.reshape(2, 3),
        "zeros": lambda: np.zeros((2, 3), dtype),
        "ones": lambda: np.ones((2, 3), dtype),
        "fill": lambda: np.full((2, 3), dtype(2.5), dtype),
        "unbroadcast": lambda: x.sum(axis=0, dtype=dtype),
    }[name]()
    args = (x, y, 2.5) if name == "fill" else (x, y)
    assert_tensor(run(text, *args), expected, dtype)


UNBROADCAST_CASES = [
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((2, 3), (1, 3)),
    ((2, 3), (2, 1)),
    ((2, 3), ()),
    ((4, 2, 3), (2, 1)),
    ((4, 1, 3), (1, 1)),
    ((0, 3), (3,)),
]


@pytest.mark.parametrize("element", ELEMENTS)
def test_unbroadcast_sums_what_broadcasting_added(element: str) -> None:
    """The sum over the axes that broadcasting ``shape`` to the tensor's adds or stretches: the
    adjoint of broadcasting, so ``unbroadcast(broadcast_to(x, s), shape(x))`` sums copies of x."""
    dtype = DTYPES[element]
    text = shaped_function("unbroadcast", element)
    for i, (source, target) in enumerate(UNBROADCAST_CASES):
        x = data(element, source, seed=i)
        leading = len(source) - len(target)
        axes = tuple(range(leading)) + tuple(
            a for a in range(leading, len(source)) if target[a - leading] == 1 and source[a] != 1
        )
        expected = np.add.reduce(x, axis=axes) if axes else x
        assert_tensor(run(text, x, np.zeros(target, dtype)), np.asarray(expected).reshape(target), dtype)


@pytest.mark.parametrize(("source", "target"), [((2, 3), (4,)), ((3,), (2, 3)), ((2, 3), (3, 3))])
def test_unbroadcast_to_a_shape_that_does_not_broadcast_faults(
    source: tuple[int, ...], target: tuple[int, ...]
) -> None:
    text = shaped_function("unbroadcast", "Float")
    diagnostic = fault(text, np.zeros(source, np.float32), np.zeros(target, np.float32))
    assert_located(diagnostic, text, 'builtin "unbroadcast"', "shape mismatch in 'unbroadcast': ")
    assert diagnostic.message.endswith(f"cannot unbroadcast a tensor of shape {source} to shape {target}")


@pytest.mark.parametrize(("name", "target"), [("broadcast_to", (3,)), ("reshape", (4, 2))])
def test_a_tensorshape_that_does_not_fit_faults(name: str, target: tuple[int, ...]) -> None:
    """``broadcast_to`` a shape of lower rank, ``reshape`` to another size: located faults."""
    text = shaped_function(name, "Float")
    diagnostic = fault(text, np.zeros((2, 3), np.float32), np.zeros(target, np.float32))
    assert_located(diagnostic, text, f'builtin "{name}"', f"shape mismatch in '{name}': ")


@pytest.mark.parametrize("element", ELEMENTS)
def test_expand_dims(element: str) -> None:
    text = builtin_function("expand_dims", [tensor(element), "Int"], tensor(element))
    x = data(element, (2, 3))
    for axis in [0, 1, 2, -1, -3]:
        assert_tensor(run(text, x, axis), np.expand_dims(x, axis), DTYPES[element])


@pytest.mark.parametrize("axis", [3, -4])
def test_expand_dims_out_of_range_faults(axis: int) -> None:
    text = builtin_function("expand_dims", [tensor("Float"), "Int"], tensor("Float"))
    diagnostic = fault(text, np.zeros((2, 3), np.float32), axis)
    assert_located(diagnostic, text, 'builtin "expand_dims"', "shape mismatch in 'expand_dims': ")


# --- one element ----------------------------------------------------------------------------------


@pytest.mark.parametrize("element", ELEMENTS)
def test_element_reads_one_value(element: str) -> None:
    t = tensor(element)
    x = data(element, (2, 3))
    text = builtin_function("element", [t, "Int", "Int"], element)
    for i in range(2):
        for j in range(3):
            assert_scalar(run(text, x, i, j), x[i, j], element)
    assert_scalar(run(builtin_function("element", [t], element), np.asarray(x[1, 2])), x[1, 2], element)


@pytest.mark.parametrize("element", ELEMENTS)
def test_with_element_replaces_one_value_in_a_new_tensor(element: str) -> None:
    t, dtype = tensor(element), DTYPES[element]
    text = builtin_function("with_element", [t, element, "Int", "Int"], t)
    x = data(element, (2, 3))
    before = x.copy()
    expected = x.copy()
    expected[1, 0] = dtype(7.25)
    assert_tensor(run(text, x, 7.25, 1, 0), expected, dtype)
    assert_tensor(x, before, dtype)  # the operand is a value: it is not changed


@pytest.mark.parametrize("name", ["element", "with_element"])
@pytest.mark.parametrize("indices", [(2, 0), (0, 3), (-1, 0), (0,), (0, 0, 0)])
def test_an_index_outside_the_tensor_faults(name: str, indices: tuple[int, ...]) -> None:
    t = tensor("Double")
    ints = ["Int"] * len(indices)
    text = (
        builtin_function("element", [t, *ints], "Double")
        if name == "element"
        else builtin_function("with_element", [t, "Double", *ints], t)
    )
    args = (0.5,) if name == "with_element" else ()
    diagnostic = fault(text, np.zeros((2, 3)), *args, *indices)
    assert_located(diagnostic, text, f'builtin "{name}"', f"shape mismatch in '{name}': index ")


COVERED_BUILTINS = frozenset(
    [
        *UNARY,
        *BINARY,
        "matmul",
        "transpose",
        "sum",
        "mean",
        "sum_axis",
        "broadcast_to",
        "reshape",
        "zeros",
        "ones",
        "fill",
        "arange",
        "tensor_from_scalar",
        "scalar_from_tensor",
        "dim",
        "shape",
        "rank",
        "unbroadcast",
        "expand_dims",
        "element",
        "with_element",
    ]
)
"""The builtins this module runs on tensors (see ``test_builtin_coverage``)."""
