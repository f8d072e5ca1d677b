"""-canonicalize's constant folding computes what a run computes, bit for bit, and keeps what a
run would fault at."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interp import Program
from sil import parse, print_module
from sil.instructions import format_float
from sil.passes import PassManager, registered_passes
from sil.types import DOUBLE, FLOAT
from tests.sil.transforms.preservation import outcome

FLOAT_BINARY = ["fadd", "fsub", "fmul", "fdiv", "fmin", "fmax"]
COMPARISONS = ["fcmp_olt", "fcmp_ole", "fcmp_ogt", "fcmp_oge", "fcmp_oeq", "fcmp_one"]
INT_BINARY = [
    "add",
    "sub",
    "mul",
    "sdiv",
    "srem",
    "and",
    "or",
    "xor",
    "cmp_slt",
    "cmp_sle",
    "cmp_eq",
    "cmp_ne",
]


def _canonicalized(text: str) -> str:
    module = parse(text)
    PassManager([registered_passes()["canonicalize"]()], verify_each=True).run(module)
    return print_module(module)


def _same_run(text: str) -> str:
    """The canonicalized text, after checking that @f gives the same outcome before and after."""
    after = _canonicalized(text)
    assert outcome(Program(parse(after)), "f", []) == outcome(Program(parse(text)), "f", [])
    return after


def _function(operands: list[tuple[str, str]], body: str, result: str) -> str:
    lines = [f"  %{i} = {literal}" for i, (literal, _) in enumerate(operands)]
    return f"sil @f : $@convention(thin) () -> {result} {{\nbb0:\n" + "\n".join(lines) + f"\n{body}\n}}\n"


def _float(t: str, x: float) -> str:
    return f"float_literal ${t}, {format_float(x, FLOAT if t == 'Float' else DOUBLE)}"


floats32 = st.floats(width=32) | st.sampled_from(
    [0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, 1.401298464324817e-45, 3.4028234663852886e38]
)
floats64 = st.floats() | st.sampled_from([0.0, -0.0, 1.0, -1.0, math.inf, 5e-324, 1.7976931348623157e308])


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(), name=st.sampled_from(FLOAT_BINARY + COMPARISONS), t=st.sampled_from(["Float", "Double"])
)
def test_float_folding_matches_the_interpreter(data: st.DataObject, name: str, t: str) -> None:
    values = floats32 if t == "Float" else floats64
    a, b = data.draw(values), data.draw(values)
    result = "Bool" if name.startswith("fcmp") else t
    body = f'  %r = builtin "{name}"(%0 : ${t}, %1 : ${t}) : ${result}\n  return %r : ${result}'
    after = _same_run(_function([(_float(t, a), t), (_float(t, b), t)], body, result))
    if name.startswith("fcmp"):
        assert "builtin" not in after  # a comparison always folds: its Bool is defined for NaN too
    elif math.isnan(a) or math.isnan(b):
        # Which NaN arithmetic makes is the hardware's choice: not folded, unless an exact
        # identity returns the NaN operand itself (nan - +0.0, nan * 1.0, nan + -0.0).
        assert "builtin" in after or _identity_of(name, a, b)


def _identity_of(name: str, a: float, b: float) -> bool:
    """Whether ``name(a, b)`` is one of the identities -canonicalize applies for every operand."""

    def bits(x: float, y: float) -> bool:
        return x == y and math.copysign(1.0, x) == math.copysign(1.0, y)

    right = {"fsub": 0.0, "fadd": -0.0, "fmul": 1.0, "fdiv": 1.0}
    left = {"fadd": -0.0, "fmul": 1.0}
    return (name in right and bits(b, right[name])) or (name in left and bits(a, left[name]))


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(INT_BINARY),
    a=st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63)]),
    b=st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63)]),
)
def test_int_folding_matches_the_interpreter(name: str, a: int, b: int) -> None:
    result = "Bool" if name.startswith("cmp") else "Int"
    body = f'  %r = builtin "{name}"(%0 : $Int, %1 : $Int) : ${result}\n  return %r : ${result}'
    after = _same_run(
        _function(
            [(f"integer_literal $Int, {a}", "Int"), (f"integer_literal $Int, {b}", "Int")], body, result
        )
    )
    faults = name in ("sdiv", "srem") and b == 0
    assert ("builtin" in after) == faults


@settings(max_examples=100, deadline=None)
@given(x=st.floats(), conversion=st.sampled_from(["fptrunc", "fptosi"]))
def test_conversions_fold_as_a_run_converts(x: float, conversion: str) -> None:
    result = "Float" if conversion == "fptrunc" else "Int"
    body = f'  %r = builtin "{conversion}"(%0 : $Double) : ${result}\n  return %r : ${result}'
    _same_run(_function([(_float("Double", x), "Double")], body, result))


@pytest.mark.parametrize("n", [0, 1, -1, 2**53 + 1, 2**63 - 1, -(2**63), 16777217])
@pytest.mark.parametrize("t", ["Float", "Double"])
def test_int_to_float_rounds_once(n: int, t: str) -> None:
    body = f'  %r = builtin "sitofp"(%0 : $Int) : ${t}\n  return %r : ${t}'
    after = _same_run(_function([(f"integer_literal $Int, {n}", "Int")], body, t))
    assert "builtin" not in after
