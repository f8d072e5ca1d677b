"""Properties on random operands: Double, Float and Int builtins agree with the NumPy reference.

Double builtins equal NumPy's float64 ufuncs bit for bit, Float builtins NumPy's float32 ones; Int
arithmetic wraps like NumPy's int64 and divides like C; ``sitofp`` equals NumPy's int64 cast. The
examples are derandomized, so a run is reproducible and a failure names its operands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.interp.reference import (
    BINARY,
    COMPARISONS,
    INT_BINARY,
    INT_COMPARISONS,
    UNARY,
    numpy_power_is_ambiguous,
    reference,
)
from tests.interp.support import assert_scalar, builtin_function, run

INT_MIN, INT_MAX = -(2**63), 2**63 - 1

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

doubles = st.floats(allow_nan=True, allow_infinity=True)
floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
ints = st.one_of(st.integers(INT_MIN, INT_MAX), st.integers(-100, 100))
# Integers next to a point halfway between two binary32 values, with more than 53 significant bits:
# where rounding through a binary64 first would round twice.
near_float32_ties = st.builds(
    lambda m, k, d, s: s * ((((2 * m + 1) << k) + d) & INT_MAX),
    m=st.integers(2**23, 2**24 - 1),
    k=st.integers(29, 37),
    d=st.integers(-2, 2),
    s=st.sampled_from([1, -1]),
)


def tuple_function(names: list[str], operands: list[str], results: list[str]) -> str:
    """``@f`` applying each builtin of ``names`` to the parameters, returning their results as a tuple."""
    params = ", ".join(f"%a{i} : ${t}" for i, t in enumerate(operands))
    signature = f"({', '.join(operands)}) -> ({', '.join(results)})"
    lines = [f"sil @f : $@convention(thin) {signature} {{", f"bb0({params}):"]
    for k, (name, result) in enumerate(zip(names, results)):
        lines.append(f'  %r{k} = builtin "{name}"({params}) : ${result}')
    elements = ", ".join(f"%r{k} : ${t}" for k, t in enumerate(results))
    lines += [f"  %t = tuple ({elements})", f"  return %t : $({', '.join(results)})", "}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", list(UNARY))
def test_double_unary(name: str) -> None:
    text = builtin_function(name, ["Double"], "Double")

    @PROPERTY
    @given(x=doubles)
    def prop(x: float) -> None:
        assert_scalar(run(text, x), reference(UNARY[name], "Double", x), "Double")

    prop()


DOUBLE_BINARY = tuple_function(list(BINARY), ["Double", "Double"], ["Double"] * len(BINARY))
FLOAT_BINARY = tuple_function(list(BINARY), ["Float", "Float"], ["Float"] * len(BINARY))


@pytest.mark.parametrize(
    ("type_name", "text", "values"),
    [("Double", DOUBLE_BINARY, doubles), ("Float", FLOAT_BINARY, floats32)],
    ids=["Double", "Float"],
)
def test_binary(type_name: str, text: str, values: st.SearchStrategy[float]) -> None:
    @PROPERTY
    @given(a=values, b=values)
    def prop(a: float, b: float) -> None:
        for name, actual in zip(BINARY, run(text, a, b)):
            if not (name == "pow" and numpy_power_is_ambiguous(a, b)):
                assert_scalar(actual, reference(BINARY[name], type_name, a, b), type_name)

    prop()


@PROPERTY
@given(a=doubles, b=doubles)
def test_double_comparisons(a: float, b: float) -> None:
    text = tuple_function(list(COMPARISONS), ["Double", "Double"], ["Bool"] * len(COMPARISONS))
    for name, actual in zip(COMPARISONS, run(text, a, b)):
        assert_scalar(actual, bool(reference(COMPARISONS[name], "Double", a, b)), "Bool")


INT_RESULTS = ["Int"] * len(INT_BINARY) + ["Bool"] * len(INT_COMPARISONS)
INT_TEXT = tuple_function([*INT_BINARY, *INT_COMPARISONS], ["Int", "Int"], INT_RESULTS)


@PROPERTY
@given(a=ints, b=ints.filter(lambda v: v != 0))
def test_int_arithmetic(a: int, b: int) -> None:
    references: dict[str, Callable[[int, int], Any]] = {**INT_BINARY, **INT_COMPARISONS}
    results = run(INT_TEXT, a, b)
    for (name, fn), actual in zip(references.items(), results):
        assert_scalar(actual, fn(a, b), "Bool" if name in INT_COMPARISONS else "Int")


@PROPERTY
@given(a=ints, b=ints.filter(lambda v: v != 0))
def test_int_division_identity(a: int, b: int) -> None:
    """``sdiv`` and ``srem`` satisfy a == (a sdiv b) * b + (a srem b) in wrapping arithmetic, and the
    remainder is smaller than the divisor and has the sign of the dividend."""
    q = run(builtin_function("sdiv", ["Int", "Int"], "Int"), a, b)
    r = run(builtin_function("srem", ["Int", "Int"], "Int"), a, b)
    assert (q * b + r - a) % 2**64 == 0
    assert abs(r) < abs(b)
    assert r == 0 or (r < 0) == (a < 0)


@pytest.mark.parametrize("type_name", ["Float", "Double"])
def test_sitofp(type_name: str) -> None:
    text = builtin_function("sitofp", ["Int"], type_name)
    dtype = np.float32 if type_name == "Float" else np.float64

    @PROPERTY
    @given(x=st.one_of(ints, near_float32_ties))
    def prop(x: int) -> None:
        assert_scalar(run(text, x), np.array([x], dtype=np.int64).astype(dtype)[0], type_name)

    prop()


@PROPERTY
@given(x=doubles)
def test_fptrunc_then_fpext(x: float) -> None:
    trunc = run(builtin_function("fptrunc", ["Double"], "Float"), x)
    assert_scalar(trunc, reference(lambda v: v.astype(np.float32), "Double", x), "Float")
    assert_scalar(run(builtin_function("fpext", ["Float"], "Double"), trunc), trunc, "Double")


@PROPERTY
@given(x=doubles.filter(lambda v: -(2.0**63) <= v < 2.0**63))
def test_fptosi_truncates(x: float) -> None:
    assert_scalar(run(builtin_function("fptosi", ["Double"], "Int"), x), int(x), "Int")
