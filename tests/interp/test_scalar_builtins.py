"""Scalar builtins (SIL-SPEC §5) against a NumPy reference, bit for bit.

Float is binary32 and every result rounds as ``numpy.float32`` arithmetic does; Double is binary64 with
NumPy's float64 ufuncs as the reference (inf and NaN, never an exception); Int is 64-bit wrapping with
C's truncating ``sdiv``/``srem`` and a located fault on division by zero; Bool is 1-bit. Comparisons
are ordered (false with a NaN). Conversions: ``sitofp`` rounds once (as a NumPy int64 cast does),
``fptosi`` truncates and faults on NaN, infinities and values out of range. SIL's suffixed names
are aliases. Each builtin runs over a grid of interesting operands, every case in one test item.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.interp.reference import (
    BINARY,
    BOOL_OPS,
    COMPARISONS,
    DTYPES,
    FLOAT_TYPES,
    INT_BINARY,
    INT_COMPARISONS,
    UNARY,
    VALUES,
    numpy_power_is_ambiguous,
    reference,
)
from tests.interp.support import (
    assert_double,
    assert_float,
    assert_located,
    assert_scalar,
    builtin_function,
    check_all,
    fault,
    mismatch,
    run,
    run_builtin,
)

INT_MIN, INT_MAX = -(2**63), 2**63 - 1


# --- Float and Double ----------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", FLOAT_TYPES)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name: str, type_name: str) -> None:
    text = builtin_function(name, [type_name], type_name)
    check_all(
        [
            (f"{name}({x!r})", mismatch(run(text, x), reference(UNARY[name], type_name, x), type_name))
            for x in VALUES[type_name]
        ]
    )


@pytest.mark.parametrize("type_name", FLOAT_TYPES)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary(name: str, type_name: str) -> None:
    text = builtin_function(name, [type_name, type_name], type_name)
    values = VALUES[type_name]
    check_all(
        [
            (
                f"{name}({a!r}, {b!r})",
                mismatch(run(text, a, b), reference(BINARY[name], type_name, a, b), type_name),
            )
            for a in values
            for b in values
            if not (name == "pow" and numpy_power_is_ambiguous(a, b))
        ]
    )


@pytest.mark.parametrize("type_name", FLOAT_TYPES)
@pytest.mark.parametrize("name", list(COMPARISONS))
def test_comparison(name: str, type_name: str) -> None:
    text = builtin_function(name, [type_name, type_name], "Bool")
    values = VALUES[type_name]
    check_all(
        [
            (
                f"{name}({a!r}, {b!r})",
                mismatch(run(text, a, b), bool(reference(COMPARISONS[name], type_name, a, b)), "Bool"),
            )
            for a in values
            for b in values
        ]
    )


@pytest.mark.parametrize("name", list(COMPARISONS))
def test_comparisons_with_nan_are_false(name: str) -> None:
    for type_name in FLOAT_TYPES:
        text = builtin_function(name, [type_name, type_name], "Bool")
        nan = float("nan")
        for a, b in [(nan, 1.0), (1.0, nan), (nan, nan)]:
            assert run(text, a, b) is False, (name, type_name, a, b)


DOUBLE_SPECIAL_CASES = [
    ("fdiv", (1.0, 0.0), float("inf")),
    ("fdiv", (-1.0, 0.0), float("-inf")),
    ("fdiv", (1.0, -0.0), float("-inf")),
    ("fdiv", (0.0, 0.0), float("nan")),
    ("fdiv", (float("nan"), 0.0), float("nan")),
    ("log", (0.0,), float("-inf")),
    ("log", (-0.0,), float("-inf")),
    ("log", (-1.0,), float("nan")),
    ("sqrt", (-1.0,), float("nan")),
    ("sqrt", (-0.0,), -0.0),
    ("exp", (1000.0,), float("inf")),
    ("exp", (-1000.0,), 0.0),
    ("sin", (float("inf"),), float("nan")),
    ("cos", (float("-inf"),), float("nan")),
    ("pow", (-8.0, 1 / 3), float("nan")),
    ("pow", (0.0, -1.0), float("inf")),
    ("pow", (10.0, 400.0), float("inf")),
    ("pow", (float("nan"), 0.0), 1.0),
    ("fmin", (float("nan"), 1.0), float("nan")),
    ("fmin", (1.0, float("nan")), float("nan")),
    ("fmax", (float("nan"), 1.0), float("nan")),
    ("fmax", (1.0, float("nan")), float("nan")),
    ("fmul", (1e200, 1e200), float("inf")),
    ("fsub", (float("inf"), float("inf")), float("nan")),
    ("relu", (-2.0,), 0.0),
    ("relu", (float("nan"),), float("nan")),
]


@pytest.mark.parametrize(("name", "args", "expected"), DOUBLE_SPECIAL_CASES)
def test_double_gives_ieee_results_instead_of_raising(
    name: str, args: tuple[float, ...], expected: float
) -> None:
    """What Python's ``math`` would raise on, Double gives as IEEE 754 (and NumPy) do."""
    text = builtin_function(name, ["Double"] * len(args), "Double")
    assert_double(run(text, *args), expected)
    fn = UNARY[name] if len(args) == 1 else BINARY[name]
    assert_double(run(text, *args), reference(fn, "Double", *args))


def test_every_float_result_rounds_to_binary32() -> None:
    """(a + b) - a in Float loses b where Double keeps it: each intermediate result is binary32."""
    for t in FLOAT_TYPES:
        text = (
            f"sil @f : $@convention(thin) ({t}, {t}) -> {t} {{\n"
            f"bb0(%a : ${t}, %b : ${t}):\n"
            f'  %s = builtin "fadd"(%a : ${t}, %b : ${t}) : ${t}\n'
            f'  %d = builtin "fsub"(%s : ${t}, %a : ${t}) : ${t}\n'
            f"  return %d : ${t}\n"
            "}\n"
        )
        expected = reference(lambda a, b: (a + b) - a, t, 1.0, 1e-8)
        assert_scalar(run(text, 1.0, 1e-8), expected, t)
        if t == "Float":
            assert run(text, 1.0, 1e-8) == 0.0
        else:
            assert run(text, 1.0, 1e-8) != 0.0


def test_float_overflow_gives_inf_not_a_large_double() -> None:
    text = builtin_function("fmul", ["Float", "Float"], "Float")
    assert_float(run(text, 3e38, 10.0), np.float32("inf"))
    text = builtin_function("fadd", ["Float", "Float"], "Float")
    assert_float(run(text, 3.4e38, 3.4e38), np.float32("inf"))


# --- Int and Bool ---------------------------------------------------------------------------------

INT_VALUES = [
    0, 1, -1, 2, -2, 3, -3, 7, -7, 10, 2**32, -(2**32) + 5, 123456789012, -987654321098,
    INT_MAX, INT_MIN, INT_MAX - 1, INT_MIN + 1, 2**62,
]  # fmt: skip


@pytest.mark.parametrize("name", list(INT_BINARY))
def test_int_arithmetic(name: str) -> None:
    text = builtin_function(name, ["Int", "Int"], "Int")
    check_all(
        [
            (f"{name}({a}, {b})", mismatch(run(text, a, b), INT_BINARY[name](a, b), "Int"))
            for a in INT_VALUES
            for b in INT_VALUES
            if b != 0 or name not in ("sdiv", "srem")
        ]
    )


@pytest.mark.parametrize("name", list(INT_COMPARISONS))
def test_int_comparison(name: str) -> None:
    text = builtin_function(name, ["Int", "Int"], "Bool")
    check_all(
        [
            (f"{name}({a}, {b})", mismatch(run(text, a, b), INT_COMPARISONS[name](a, b), "Bool"))
            for a in INT_VALUES
            for b in INT_VALUES
        ]
    )


INT_EXACT_CASES = [
    ("add", INT_MAX, 1, INT_MIN),
    ("sub", INT_MIN, 1, INT_MAX),
    ("mul", INT_MAX, 2, -2),
    ("mul", 2**32, 2**32, 0),
    ("mul", INT_MIN, -1, INT_MIN),
    ("sdiv", 7, 2, 3),
    ("sdiv", -7, 2, -3),
    ("sdiv", 7, -2, -3),
    ("sdiv", -7, -2, 3),
    ("sdiv", INT_MIN, -1, INT_MIN),
    ("srem", 7, 2, 1),
    ("srem", -7, 2, -1),
    ("srem", 7, -2, 1),
    ("srem", -7, -2, -1),
    ("srem", INT_MIN, -1, 0),
    ("and", -1, 12, 12),
    ("or", INT_MIN, 1, INT_MIN + 1),
    ("xor", -1, INT_MAX, INT_MIN),
]


@pytest.mark.parametrize(("name", "a", "b", "expected"), INT_EXACT_CASES)
def test_int_wraps_and_truncates(name: str, a: int, b: int, expected: int) -> None:
    assert_scalar(run_builtin(name, ["Int", "Int"], "Int", a, b), expected, "Int")


@pytest.mark.parametrize(
    ("name", "message"), [("sdiv", "integer division by zero"), ("srem", "integer remainder by zero")]
)
def test_int_division_by_zero_faults_at_the_builtin(name: str, message: str) -> None:
    text = builtin_function(name, ["Int", "Int"], "Int")
    for a in (0, 1, INT_MIN):
        diagnostic = fault(text, a, 0)
        assert_located(diagnostic, text, f'builtin "{name}"', message)
        assert diagnostic.message == message


def test_division_by_zero_in_a_callee_notes_the_call() -> None:
    text = (
        builtin_function("sdiv", ["Int", "Int"], "Int", fn="div")
        + "sil @f : $@convention(thin) (Int) -> Int {\n"
        "bb0(%x : $Int):\n"
        "  %div = function_ref @div : $@convention(thin) (Int, Int) -> Int\n"
        "  %zero = integer_literal $Int, 0\n"
        "  %r = apply %div(%x, %zero) : $@convention(thin) (Int, Int) -> Int\n"
        "  return %r : $Int\n"
        "}\n"
    )
    diagnostic = fault(text, 5)
    assert_located(diagnostic, text, 'builtin "sdiv"', "integer division by zero")
    assert [n.message for n in diagnostic.notes] == ["called from @f"]
    assert (
        diagnostic.notes[0].line()
        == text.splitlines().index("  %r = apply %div(%x, %zero) : $@convention(thin) (Int, Int) -> Int") + 1
    )


@pytest.mark.parametrize("name", list(BOOL_OPS))
def test_bool(name: str) -> None:
    text = builtin_function(name, ["Bool", "Bool"], "Bool")
    check_all(
        [
            (f"{name}({a}, {b})", mismatch(run(text, a, b), BOOL_OPS[name](a, b), "Bool"))
            for a in (False, True)
            for b in (False, True)
        ]
    )


# --- conversions ----------------------------------------------------------------------------------

SITOFP_VALUES = [
    0, 1, -1, 3, 16777216, 16777217, 16777219, -16777217, 2**53, 2**53 + 1, 2**53 + 3,
    2**60 + 2**36 + 1, -(2**60 + 2**36 + 1), 2**62 + 2**38 + 1, 2**54 + 2**1 + 1,
    INT_MAX, INT_MIN, INT_MAX - 2**39,
]  # fmt: skip


@pytest.mark.parametrize("type_name", FLOAT_TYPES)
def test_sitofp_rounds_once(type_name: str) -> None:
    """Int to Float or Double rounds to nearest, ties to even, once (as NumPy's int64 cast, and
    LLVM's ``sitofp``, do): no detour through an intermediate Double for Float."""
    text = builtin_function("sitofp", ["Int"], type_name)
    dtype = DTYPES[type_name]
    check_all(
        [
            (
                f"sitofp({x})",
                mismatch(run(text, x), np.array([x], dtype=np.int64).astype(dtype)[0], type_name),
            )
            for x in SITOFP_VALUES
        ]
    )


FPTOSI_VALUES = [
    0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.9999, -2.9999, 1e10, -1e10, 123456.75, 1e18, -1e18,
    9.2e18, -9.2e18, -9.223372036854775808e18, 16777217.0,
]  # fmt: skip


@pytest.mark.parametrize("type_name", FLOAT_TYPES)
def test_fptosi_truncates_toward_zero(type_name: str) -> None:
    text = builtin_function("fptosi", [type_name], "Int")
    dtype = DTYPES[type_name]
    check_all([(f"fptosi({x!r})", mismatch(run(text, x), int(dtype(x)), "Int")) for x in FPTOSI_VALUES])


@pytest.mark.parametrize("type_name", FLOAT_TYPES)
@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), 2.0**63, 1e19, -1e19, -(2.0**64)]
)
def test_fptosi_faults_when_the_value_does_not_fit(type_name: str, value: float) -> None:
    text = builtin_function("fptosi", [type_name], "Int")
    diagnostic = fault(text, value)
    assert_located(diagnostic, text, 'builtin "fptosi"', "fptosi")


def test_fptosi_of_the_largest_float_below_two_to_the_63() -> None:
    largest_double = float(np.nextafter(2.0**63, 0.0))
    assert run_builtin("fptosi", ["Double"], "Int", largest_double) == int(largest_double)
    largest_float = float(np.nextafter(np.float32(2.0**63), np.float32(0.0)))
    assert run_builtin("fptosi", ["Float"], "Int", largest_float) == int(largest_float)


FPEXT_VALUES = [0.0, -0.0, 0.1, 1 / 3, 1e-40, 3.4e38, float("inf"), float("-inf"), float("nan")]
FPTRUNC_VALUES = [
    0.0, -0.0, 0.1, 1 / 3, 1e300, -1e300, 1e-50, -1e-50, 1e-40, 3.4028235677973366e38,
    3.4028235677973366e38 * (1 + 2**-30), 1 + 2**-24, 1 + 3 * 2**-24, 1 + 2**-24 + 2**-50,
    float("inf"), float("nan"),
]  # fmt: skip


def test_fpext_is_exact() -> None:
    text = builtin_function("fpext", ["Float"], "Double")
    check_all(
        [
            (f"fpext({x!r})", mismatch(run(text, x), np.float32(x).astype(np.float64), "Double"))
            for x in FPEXT_VALUES
        ]
    )


def test_fptrunc_rounds_to_nearest_even() -> None:
    text = builtin_function("fptrunc", ["Double"], "Float")
    check_all(
        [
            (
                f"fptrunc({x!r})",
                mismatch(run(text, x), reference(lambda v: v.astype(np.float32), "Double", x), "Float"),
            )
            for x in FPTRUNC_VALUES
        ]
    )


# --- SIL's suffixed names ---------------------------------------------------------------------------

ALIASES = [
    ("fadd_FPIEEE32", "fadd", ["Float", "Float"], "Float", (0.1, 0.2)),
    ("fadd_FPIEEE64", "fadd", ["Double", "Double"], "Double", (0.1, 0.2)),
    ("fdiv_FPIEEE64", "fdiv", ["Double", "Double"], "Double", (1.0, 3.0)),
    ("fmul_FPIEEE32", "fmul", ["Float", "Float"], "Float", (0.1, 3.0)),
    ("fneg_FPIEEE64", "fneg", ["Double"], "Double", (2.5,)),
    ("exp_FPIEEE32", "exp", ["Float"], "Float", (1.0,)),
    ("fcmp_olt_FPIEEE32", "fcmp_olt", ["Float", "Float"], "Bool", (1.0, 2.0)),
    ("fcmp_oeq_FPIEEE64", "fcmp_oeq", ["Double", "Double"], "Bool", (1.0, 1.0)),
    ("add_Int64", "add", ["Int", "Int"], "Int", (INT_MAX, 1)),
    ("sdiv_Int64", "sdiv", ["Int", "Int"], "Int", (-7, 2)),
    ("srem_Int64", "srem", ["Int", "Int"], "Int", (-7, 2)),
    ("cmp_slt_Int64", "cmp_slt", ["Int", "Int"], "Bool", (-1, 0)),
    ("cmp_eq_Int1", "cmp_eq", ["Bool", "Bool"], "Bool", (True, True)),
    ("and_Int1", "and", ["Bool", "Bool"], "Bool", (True, False)),
    ("xor_Int64", "xor", ["Int", "Int"], "Int", (6, 3)),
    ("sitofp_Int64_FPIEEE64", "sitofp", ["Int"], "Double", (2**53 + 1,)),
    ("sitofp_Int64_FPIEEE32", "sitofp", ["Int"], "Float", (16777217,)),
    ("fptosi_FPIEEE64_Int64", "fptosi", ["Double"], "Int", (-2.5,)),
    ("fpext_FPIEEE32_FPIEEE64", "fpext", ["Float"], "Double", (0.1,)),
    ("fptrunc_FPIEEE64_FPIEEE32", "fptrunc", ["Double"], "Float", (0.1,)),
]


@pytest.mark.parametrize(
    ("alias", "name", "operands", "result", "args"), ALIASES, ids=[a[0] for a in ALIASES]
)
def test_suffixed_name_is_an_alias(
    alias: str, name: str, operands: list[str], result: str, args: tuple[Any, ...]
) -> None:
    expected = run_builtin(name, operands, result, *args)
    assert_scalar(run_builtin(alias, operands, result, *args), expected, result)


def test_suffixed_division_by_zero_faults_at_the_builtin() -> None:
    text = builtin_function("sdiv_Int64", ["Int", "Int"], "Int")
    assert_located(fault(text, 1, 0), text, 'builtin "sdiv_Int64"', "integer division by zero")


# --- select and no_derivative -------------------------------------------------------------------


@pytest.mark.parametrize("type_name", FLOAT_TYPES)
def test_select_picks_by_its_condition(type_name: str) -> None:
    text = builtin_function("select", ["Bool", type_name, type_name], type_name)
    dtype = DTYPES[type_name]
    for a, b in [(1.5, -2.0), (float("nan"), 0.0), (-0.0, 0.0)]:
        assert_scalar(run(text, True, a, b), dtype(a), type_name)
        assert_scalar(run(text, False, a, b), dtype(b), type_name)


@pytest.mark.parametrize("type_name", [*FLOAT_TYPES, "Int", "Bool"])
def test_no_derivative_is_the_identity_when_run(type_name: str) -> None:
    text = builtin_function("no_derivative", [type_name], type_name)
    values: dict[str, list[Any]] = {"Int": [0, -7, INT_MAX], "Bool": [True, False]}
    for x in values.get(type_name, VALUES.get(type_name, [])):
        expected = DTYPES[type_name](x) if type_name in DTYPES else x
        assert_scalar(run(text, x), expected, type_name)


def test_no_derivative_passes_a_tensor_through() -> None:
    text = builtin_function("no_derivative", ["Tensor<Float>"], "Tensor<Float>")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(run(text, x), x)


COVERED_BUILTINS = frozenset(
    [
        *UNARY,
        *BINARY,
        *COMPARISONS,
        *INT_BINARY,
        *INT_COMPARISONS,
        *BOOL_OPS,
        "sitofp",
        "fptosi",
        "fpext",
        "fptrunc",
        "select",
        "no_derivative",
    ]
)
"""The builtins this module runs (``test_builtin_coverage`` checks that every builtin is run)."""
