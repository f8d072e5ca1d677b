"""Differentiable enums (what a derivative's trace enum is, to be differentiated again): the
tangent ``E.TangentVector`` has each case with its payload's tangent, and ``zero``; the helpers
that take a payload's tangent out of one and add two."""

from __future__ import annotations

import pytest

from accel.numpy_backend import NumpyBackend
from differentiation.tangents import enum_tangent_add, enum_tangent_payload
from interp import Program
from sil import parse, print_module, verify_module
from sil.builder import Builder
from sil.ir import ZERO_CASE, EnumDecl, Function, Module, Value
from sil.types import DOUBLE, FunctionType, NominalType

TRACE = """
enum E : Differentiable {
  case a(Double)
  case b(Int)
  case c
}
"""


def test_a_differentiable_enum_prints_as_it_parses_and_has_a_tangent_with_zero() -> None:
    module = parse(TRACE)
    assert print_module(module).startswith("enum E : Differentiable {")
    assert print_module(parse(print_module(module))) == print_module(module)
    assert module.tangent_type(NominalType("E")) == NominalType("E.TangentVector")
    tangent = module.lookup_type("E.TangentVector")
    assert isinstance(tangent, EnumDecl) and tangent.implicit
    assert [(c.name, c.payload) for c in tangent.cases] == [
        ("a", DOUBLE),
        ("b", None),
        ("c", None),
        (ZERO_CASE, None),
    ]
    assert module.tangent_type(NominalType("E.TangentVector")) == NominalType("E.TangentVector")
    plain = parse("enum P {\n  case a(Double)\n}\n")
    assert plain.tangent_type(NominalType("P")) is None and plain.lookup_type("P.TangentVector") is None


def test_a_differentiable_enum_cannot_have_a_case_zero() -> None:
    problems = verify_module(parse("enum Z : Differentiable {\n  case zero(Double)\n}\n"))
    assert any("cannot have a case 'zero'" in p.message for p in problems)


def _tangent(b: Builder, case: str, value: float | None) -> Value:
    t = NominalType("E.TangentVector")
    return b.enum(t, case, None if value is None else b.float_literal(DOUBLE, value))


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (("a", 1.5), ("a", 2.0), 3.5),
        ((ZERO_CASE, None), ("a", 2.0), 2.0),
        (("a", 1.5), (ZERO_CASE, None), 1.5),
    ],
)
def test_tangents_add_and_give_their_payload(
    x: tuple[str, float | None], y: tuple[str, float | None], expected: float
) -> None:
    module = parse(TRACE)
    add = enum_tangent_add(module, NominalType("E"), None)
    payload = enum_tangent_payload(module, NominalType("E"), "a", DOUBLE, None)
    main = module.add_function(Function("main", FunctionType((), DOUBLE)))
    b = Builder.at_end(main.add_block("bb0"), module)
    total = b.apply(b.function_ref(add), _tangent(b, *x), _tangent(b, *y))
    b.return_(b.apply(b.function_ref(payload), total))
    assert verify_module(module) == []
    assert Program(module, NumpyBackend()).run("@main") == expected


def test_the_payload_of_zero_or_of_another_case_is_zero() -> None:
    module: Module = parse(TRACE)
    payload = enum_tangent_payload(module, NominalType("E"), "a", DOUBLE, None)
    main = module.add_function(Function("main", FunctionType((), DOUBLE)))
    b = Builder.at_end(main.add_block("bb0"), module)
    b.return_(b.apply(b.function_ref(payload), _tangent(b, "c", None)))
    assert Program(module, NumpyBackend()).run("@main") == 0.0
