"""Types (SIL-SPEC §2, §3): printed forms, interning and structural identity, tangent types."""

from __future__ import annotations

import attrs
import pytest

from sil import parse, print_module
from sil.ir import Module, StructDecl
from sil.types import (
    BOOL,
    DOUBLE,
    FLOAT,
    INT,
    SCALARS,
    VOID,
    FunctionType,
    NominalType,
    ScalarType,
    TensorType,
    TupleType,
    Type,
    tuple_or_single,
)

DECLS = """\
struct Point : Differentiable {
  var x: Float
  var y: Float
  @noDerivative var tag: Int
}
struct Plain {
  var n: Int
}
struct Layer : Differentiable {
  var weight: Tensor<Float>
  var origin: Point
  var pair: (Float, Double)
  var count: Int
  @noDerivative var scale: Float
}
enum Choice {
  case left(Float)
  case right
}
"""


def function_type(text: str, decls: str = "") -> FunctionType:
    """The type of a declaration ``sil @f : $<text>``."""
    return parse(f"{decls}sil @f : ${text}\n").functions["f"].type


def value_type(text: str, decls: str = "") -> Type:
    """A non-function type, read as the only parameter of a function."""
    (param,) = function_type(f"@convention(thin) ({text}) -> ()", decls).params
    return param


def module() -> Module:
    return parse(DECLS)


# --- printing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "text"),
    [
        (FLOAT, "Float"),
        (DOUBLE, "Double"),
        (INT, "Int"),
        (BOOL, "Bool"),
        (TensorType(FLOAT), "Tensor<Float>"),
        (TensorType(DOUBLE), "Tensor<Double>"),
        (VOID, "()"),
        (TupleType((FLOAT, INT)), "(Float, Int)"),
        (TupleType((FLOAT, FLOAT), ("x", "y")), "(x: Float, y: Float)"),
        (TupleType((FLOAT, FLOAT), ("first", None)), "(first: Float, Float)"),
        (TupleType((FLOAT, TupleType((DOUBLE, BOOL)))), "(Float, (Double, Bool))"),
        (TupleType((VOID,)), "(())"),
        (NominalType("Point"), "Point"),
        (NominalType("Point.TangentVector"), "Point.TangentVector"),
        (FunctionType((FLOAT, FLOAT), FLOAT), "@convention(thin) (Float, Float) -> Float"),
        (FunctionType((), VOID), "@convention(thin) () -> ()"),
        (FunctionType((FLOAT,), FLOAT, "callee_guaranteed"), "@callee_guaranteed (Float) -> Float"),
        (
            FunctionType((FLOAT,), TupleType((FLOAT, FLOAT)), "callee_guaranteed"),
            "@callee_guaranteed (Float) -> (Float, Float)",
        ),
        (
            FunctionType((FLOAT, INT), FLOAT, "thin", "reverse", (False, True)),
            "@differentiable(reverse) @convention(thin) (Float, @noDerivative Int) -> Float",
        ),
        (
            FunctionType((FLOAT,), FLOAT, "callee_guaranteed", "reverse"),
            "@differentiable(reverse) @callee_guaranteed (Float) -> Float",
        ),
        (
            FunctionType((FLOAT,), FunctionType((FLOAT,), TupleType((FLOAT, FLOAT)), "callee_guaranteed")),
            "@convention(thin) (Float) -> @callee_guaranteed (Float) -> (Float, Float)",
        ),
        (
            TupleType((FunctionType((FLOAT,), FLOAT), INT)),
            "(@convention(thin) (Float) -> Float, Int)",
        ),
    ],
)
def test_printed_form(t: Type, text: str) -> None:
    assert str(t) == text
    assert t.text == text


@pytest.mark.parametrize(
    "text",
    [
        "@convention(thin) (Float, Double, Int, Bool) -> Float",
        "@convention(thin) (Tensor<Float>, Tensor<Double>) -> Tensor<Double>",
        "@convention(thin) () -> ()",
        "@convention(thin) ((Float, Int), (Float, (Double, Bool))) -> (Float, Int)",
        "@convention(thin) ((x: Float, y: Float)) -> (value: Float, Int)",
        "@convention(thin) (Point, Plain, Choice) -> Point.TangentVector",
        "@callee_guaranteed (Float) -> (Float, Float)",
        "@differentiable(reverse) @convention(thin) (Float, @noDerivative Int) -> Float",
        "@differentiable(reverse) @callee_guaranteed (@noDerivative Int, Float) -> Float",
        "@convention(thin) (Float) -> @callee_guaranteed (Float) -> (Float, Float)",
        "@convention(thin) ((@convention(thin) (Float) -> Float, Int)) -> @callee_guaranteed () -> ()",
        "@convention(thin) ((@differentiable(reverse) @convention(thin) (Float) -> Float, Int)) -> ()",
    ],
)
def test_parse_print_round_trip(text: str) -> None:
    fn_type = function_type(text, DECLS)
    assert str(fn_type) == text
    printed = print_module(parse(f"{DECLS}sil @f : ${text}\n"))
    assert f"sil @f : ${text}\n" in printed


@pytest.mark.parametrize(
    "text",
    [
        "@convention(thin) (@convention(thin) (Float) -> Float) -> Float",
        "@convention(thin) (@callee_guaranteed (Float) -> Float, Float) -> Float",
        "@differentiable(reverse) @convention(thin) "
        "(@noDerivative @convention(thin) () -> (), Float) -> Float",
    ],
)
def test_function_typed_parameter_round_trip(text: str) -> None:
    """A parameter may itself be a function type, which starts with '@' (SIL-SPEC §2)."""
    assert str(function_type(text)) == text


def test_builtin_spellings_print_short() -> None:
    t = function_type(
        "@convention(thin) ((Builtin.FPIEEE32, Builtin.Int1), Tensor<Builtin.FPIEEE64>) "
        "-> @callee_guaranteed (Builtin.Int64) -> Builtin.FPIEEE32"
    )
    assert str(t) == "@convention(thin) ((Float, Bool), Tensor<Double>) -> @callee_guaranteed (Int) -> Float"


def test_parenthesized_single_type_is_not_a_tuple() -> None:
    assert value_type("(Float)") is FLOAT
    assert function_type("@convention(thin) ((Float)) -> (Float)").result is FLOAT


def test_no_derivative_requires_differentiable_function_type() -> None:
    with pytest.raises(Exception, match="@noDerivative"):
        function_type("@convention(thin) (Float, @noDerivative Int) -> Float")


def test_function_type_helpers() -> None:
    bundle = FunctionType((FLOAT, INT), TupleType((FLOAT, DOUBLE)), "thin", "reverse", (False, True))
    assert bundle.plain() == FunctionType((FLOAT, INT), TupleType((FLOAT, DOUBLE)))
    assert str(bundle.plain()) == "@convention(thin) (Float, Int) -> (Float, Double)"
    assert bundle.results == (FLOAT, DOUBLE)
    assert FunctionType((), FLOAT).results == (FLOAT,)
    assert FunctionType((), VOID).results == ()
    assert FunctionType((FLOAT, INT), FLOAT).no_derivative == (False, False)


def test_tuple_or_single() -> None:
    assert tuple_or_single((FLOAT,)) is FLOAT
    assert tuple_or_single((FLOAT, DOUBLE)) == TupleType((FLOAT, DOUBLE))
    assert tuple_or_single(()) == VOID


# --- interning and identity ------------------------------------------------------------------


def test_scalars_are_interned() -> None:
    assert SCALARS["Float"] is FLOAT
    assert SCALARS["Builtin.FPIEEE32"] is FLOAT
    assert SCALARS["Builtin.FPIEEE64"] is DOUBLE
    assert SCALARS["Builtin.Int64"] is INT
    assert SCALARS["Builtin.Int1"] is BOOL


def test_parsed_scalars_are_the_interned_objects() -> None:
    t = function_type(
        "@convention(thin) (Float, Builtin.FPIEEE32, (Double, Int), Tensor<Builtin.FPIEEE32>) -> Bool"
    )
    f, f32, pair, tensor = t.params
    assert f is FLOAT
    assert f32 is FLOAT
    assert isinstance(pair, TupleType)
    assert pair.elements[0] is DOUBLE
    assert pair.elements[1] is INT
    assert isinstance(tensor, TensorType)
    assert tensor.element is FLOAT
    assert t.result is BOOL


@pytest.mark.parametrize(
    "spelling",
    [
        "@convention(thin) (Float, Float, Float, Float) -> (Float, Float)",
        "@convention(thin) (Float) -> Float",
    ],
    ids=["long", "short"],
)
def test_repeated_function_type_spelling_parses_to_one_object(spelling: str) -> None:
    """The parser's type memo promises one object per spelling, whatever text follows it."""
    m = parse(f"sil @g : ${spelling}  // g\nsil @h : ${spelling}\n")
    assert m.functions["g"].type is m.functions["h"].type


def test_structural_equality_and_hashing() -> None:
    assert ScalarType("Float") == FLOAT
    assert hash(ScalarType("Float")) == hash(FLOAT)
    assert TupleType((FLOAT, INT)) == TupleType((FLOAT, INT))
    assert hash(TupleType((FLOAT, INT))) == hash(TupleType((FLOAT, INT)))
    assert TupleType((FLOAT, INT)) != TupleType((INT, FLOAT))
    assert TupleType((FLOAT, FLOAT), ("x", "y")) != TupleType((FLOAT, FLOAT))
    assert TensorType(FLOAT) != TensorType(DOUBLE)
    assert NominalType("Point") == NominalType("Point")
    assert FunctionType((FLOAT,), FLOAT) == FunctionType((FLOAT,), FLOAT)
    assert FunctionType((FLOAT,), FLOAT) != FunctionType((FLOAT,), FLOAT, "callee_guaranteed")
    assert FunctionType((FLOAT,), FLOAT) != FunctionType((FLOAT,), FLOAT, "thin", "reverse")
    assert FunctionType((FLOAT, INT), FLOAT, "thin", "reverse", (False, True)) != FunctionType(
        (FLOAT, INT), FLOAT, "thin", "reverse"
    )
    assert len({TupleType((FLOAT,)), TupleType((FLOAT,)), TupleType((DOUBLE,))}) == 2


def test_types_are_immutable() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        FLOAT.name = "Double"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        TupleType((FLOAT,)).elements = ()  # type: ignore[misc]


# --- tangent types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "tangent"),
    [
        (FLOAT, FLOAT),
        (DOUBLE, DOUBLE),
        (INT, None),
        (BOOL, None),
        (TensorType(FLOAT), TensorType(FLOAT)),
        (TensorType(DOUBLE), TensorType(DOUBLE)),
        (VOID, VOID),
        (TupleType((FLOAT, DOUBLE)), TupleType((FLOAT, DOUBLE))),
        (TupleType((FLOAT, INT)), FLOAT),
        (TupleType((INT, TensorType(DOUBLE), BOOL)), TensorType(DOUBLE)),
        (TupleType((FLOAT, DOUBLE), ("x", "y")), TupleType((FLOAT, DOUBLE), ("x", "y"))),
        (TupleType((FLOAT, INT, FLOAT), ("x", "n", "y")), TupleType((FLOAT, FLOAT), ("x", "y"))),
        (TupleType((TupleType((FLOAT, INT)), DOUBLE)), TupleType((FLOAT, DOUBLE))),
        (TupleType((TupleType((FLOAT, DOUBLE)), INT)), TupleType((FLOAT, DOUBLE))),
        (FunctionType((FLOAT,), FLOAT), None),
        (FunctionType((FLOAT,), FLOAT, "callee_guaranteed"), None),
        (FunctionType((FLOAT,), FLOAT, "thin", "reverse"), None),
        (NominalType("Point"), NominalType("Point.TangentVector")),
        (NominalType("Point.TangentVector"), NominalType("Point.TangentVector")),
        (NominalType("Layer"), NominalType("Layer.TangentVector")),
        (NominalType("Plain"), None),
        (NominalType("Plain.TangentVector"), None),
        (NominalType("Choice"), None),
        (NominalType("Undeclared"), None),
        (TupleType((NominalType("Point"), INT)), NominalType("Point.TangentVector")),
        (
            TupleType((NominalType("Point"), FLOAT)),
            TupleType((NominalType("Point.TangentVector"), FLOAT)),
        ),
    ],
    ids=str,
)
def test_tangent_type(t: Type, tangent: Type | None) -> None:
    assert module().tangent_type(t) == tangent


def test_scalar_tangent_is_the_interned_object() -> None:
    assert module().tangent_type(FLOAT) is FLOAT


def test_tangent_struct_fields() -> None:
    m = module()
    decl = m.lookup_type("Point.TangentVector")
    assert isinstance(decl, StructDecl)
    assert decl.name == "Point.TangentVector"
    assert [(f.name, str(f.type)) for f in decl.fields] == [("x", "Float"), ("y", "Float")]
    assert decl.implicit
    assert "Point.TangentVector" not in m.types


def test_nested_tangent_struct_fields() -> None:
    decl = module().struct("Layer.TangentVector")
    assert decl is not None
    assert [(f.name, str(f.type)) for f in decl.fields] == [
        ("weight", "Tensor<Float>"),
        ("origin", "Point.TangentVector"),
        ("pair", "(Float, Double)"),
    ]


def test_no_tangent_struct_for_non_differentiable_struct() -> None:
    m = module()
    assert m.lookup_type("Plain.TangentVector") is None
    assert m.lookup_type("Choice.TangentVector") is None
    assert m.lookup_type("Nothing.TangentVector") is None


def test_implicit_tangent_struct_is_not_printed() -> None:
    text = (
        DECLS + "sil @t : $@convention(thin) (Float, Float) -> Point.TangentVector {\n"
        "bb0(%0 : $Float, %1 : $Float):\n"
        "  %2 = struct $Point.TangentVector (%0 : $Float, %1 : $Float)\n"
        "  return %2 : $Point.TangentVector\n"
        "}\n"
    )
    printed = print_module(parse(text))
    assert "struct Point.TangentVector" not in printed
    assert "struct $Point.TangentVector (%0 : $Float, %1 : $Float)" in printed
