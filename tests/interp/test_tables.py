"""Every builtin of the table in ``sil.builtins`` has an interpreter rule for each type it accepts:
a scalar template, a backend operation, or both (DESIGN.md: adding a builtin is one row per table)."""

from __future__ import annotations

import pytest

from accel.backend import OPERATIONS, Backend
from accel.cupy_backend import CupyBackend
from accel.numpy_backend import NumpyBackend
from interp.semantics import HELPERS, SCALAR_TEMPLATES, scalar_template
from sil.builtins import BUILTINS
from sil.types import BOOL, DOUBLE, FLOAT, INT, TensorType

ELEMENTWISE = ("fadd", "fsub", "fmul", "fdiv", "fneg", "fmin", "fmax", "exp", "log", "sin", "cos", "tanh",
               "sqrt", "pow", "abs", "relu", "step", "sign")  # fmt: skip
COMPARISONS = ("fcmp_olt", "fcmp_ole", "fcmp_ogt", "fcmp_oge", "fcmp_oeq", "fcmp_one")
INTEGER = ("add", "sub", "mul", "sdiv", "srem", "cmp_slt", "cmp_sle", "cmp_eq", "cmp_ne", "and", "or", "xor")
BOOLEAN = ("cmp_eq", "cmp_ne", "and", "or", "xor")
TENSOR_ONLY = ("matmul", "transpose", "sum", "mean", "sum_axis", "broadcast_to", "reshape", "zeros", "ones",
               "fill", "arange", "tensor_from_scalar", "scalar_from_tensor", "dim", "shape", "rank",
               "unbroadcast", "expand_dims", "element", "with_element")  # fmt: skip


def test_the_groups_cover_the_builtin_table() -> None:
    conversions = {"sitofp", "fptosi", "fpext", "fptrunc"}
    any_type = {"select", "no_derivative"}
    grouped = set(ELEMENTWISE) | set(COMPARISONS) | set(INTEGER) | set(TENSOR_ONLY) | conversions | any_type
    assert grouped == set(BUILTINS)


@pytest.mark.parametrize("name", ELEMENTWISE + COMPARISONS)
def test_float_builtins_have_scalar_rules_for_float_and_double(name: str) -> None:
    for t in (FLOAT, DOUBLE):
        assert scalar_template(name, t, t if name in ELEMENTWISE else BOOL) is not None


@pytest.mark.parametrize("name", ELEMENTWISE + TENSOR_ONLY)
@pytest.mark.parametrize("backend", [NumpyBackend, CupyBackend], ids=["numpy", "cupy"])
def test_tensor_builtins_have_a_backend_operation(name: str, backend: type[Backend]) -> None:
    assert name in OPERATIONS
    assert name not in backend.__abstractmethods__
    assert callable(getattr(backend, name))


def test_integer_and_bool_builtins_have_scalar_rules() -> None:
    for name in INTEGER:
        assert scalar_template(name, INT, INT) is not None
    for name in BOOLEAN:
        assert scalar_template(name, BOOL, BOOL) is not None


def test_select_has_a_scalar_rule_keyed_by_its_condition() -> None:
    assert scalar_template("select", BOOL, FLOAT) is not None
    assert scalar_template("select", BOOL, DOUBLE) is not None


def test_conversions_have_scalar_rules() -> None:
    assert scalar_template("sitofp", INT, FLOAT) is not None
    assert scalar_template("sitofp", INT, DOUBLE) is not None
    assert scalar_template("fptosi", FLOAT, INT) is not None
    assert scalar_template("fptosi", DOUBLE, INT) is not None
    assert scalar_template("fpext", FLOAT, DOUBLE) is not None
    assert scalar_template("fptrunc", DOUBLE, FLOAT) is not None


def test_templates_name_only_known_helpers() -> None:
    import re

    for table in SCALAR_TEMPLATES.values():
        for template in table.values():
            for name in re.findall(r"\b_[a-z_0-9]+\b", template):
                assert name in HELPERS, f"{template!r} uses unknown helper {name}"


def test_tensor_types_are_not_in_the_scalar_tables() -> None:
    assert not any(isinstance(t, TensorType) for t in SCALAR_TEMPLATES)
