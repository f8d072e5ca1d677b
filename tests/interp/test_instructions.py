"""Every instruction of SIL-SPEC §4 on the interpreter, and the Python values that come out.

Literals (Int, Bool with ``-1`` for true, Float and Double in decimal, hex bit patterns, inf, nan);
tuples (labeled, empty, nested), ``tuple_extract``, ``destructure_tuple``; structs, ``struct_extract``,
``destructure_struct`` and struct results as records; enums with and without payload and
``switch_enum`` with payload arguments and a default; ``function_ref``, ``apply``, ``partial_apply``
(binding the trailing arguments), ``thin_to_thick_function``, closures passed to and returned from
functions and to and from Python, recursion; ``br`` and ``cond_br`` with block arguments (swapped in a
loop, on both edges, to one target from both edges); ``unreachable`` as a located fault; and the
unlowered AD instructions (``differentiable_function``, ``differentiable_function_extract``,
``gradient``), which cannot run and say so where they are written.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest

from interp import EnumValue, Program, RunError, SILFunction, StructValue
from interp import run as run_module
from sil import parse
from tests.interp.support import (
    BACKEND,
    FILENAME,
    assert_double,
    assert_float,
    assert_located,
    assert_scalar,
    fault,
    program,
    run,
)

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
INF, NAN = math.inf, math.nan

# --- literals -----------------------------------------------------------------------------------------

LITERALS = """
sil @ints : $@convention(thin) () -> (Int, Int, Int, Int, Int, Int) {
bb0:
  %0 = integer_literal $Int, 0
  %1 = integer_literal $Int, -3
  %2 = integer_literal $Int, 9223372036854775807
  %3 = integer_literal $Int, -9223372036854775808
  %4 = integer_literal $Int, 0x10
  %5 = integer_literal $Int, 42
  %r = tuple (%0 : $Int, %1 : $Int, %2 : $Int, %3 : $Int, %4 : $Int, %5 : $Int)
  return %r : $(Int, Int, Int, Int, Int, Int)
}

sil @bools : $@convention(thin) () -> (Bool, Bool, Bool) {
bb0:
  %0 = integer_literal $Bool, 1
  %1 = integer_literal $Bool, 0
  %2 = integer_literal $Bool, -1
  %r = tuple (%0 : $Bool, %1 : $Bool, %2 : $Bool)
  return %r : $(Bool, Bool, Bool)
}
"""

FLOAT_LITERALS: list[tuple[str, str, float]] = [
    ("Float", "1.5", 1.5),
    ("Float", "0.1", float(np.float32(0.1))),
    ("Float", "-2", -2.0),
    ("Float", "1e-3", float(np.float32(1e-3))),
    ("Float", "16777217", 16777216.0),
    ("Float", "3.4028234663852886e38", float(np.finfo(np.float32).max)),
    ("Float", "1e39", INF),
    ("Float", "1e-46", 0.0),
    ("Float", "-0.0", -0.0),
    ("Float", "inf", INF),
    ("Float", "-inf", -INF),
    ("Float", "nan", NAN),
    ("Float", "0x3F800000", 1.0),
    ("Float", "0xBF800000", -1.0),
    ("Float", "0x40490FDB", float(np.float32(np.pi))),
    ("Float", "0x00000001", float(np.float32(1.401298464324817e-45))),
    ("Float", "0x7F800000", INF),
    ("Float", "0xFF800000", -INF),
    ("Float", "0x7FC00000", NAN),
    ("Float", "0x80000000", -0.0),
    ("Double", "1.5", 1.5),
    ("Double", "0.1", 0.1),
    ("Double", "-2", -2.0),
    ("Double", "2.5e-300", 2.5e-300),
    ("Double", "1e39", 1e39),
    ("Double", "1e400", INF),
    ("Double", "-0.0", -0.0),
    ("Double", "inf", INF),
    ("Double", "-inf", -INF),
    ("Double", "nan", NAN),
    ("Double", "0x3FF0000000000000", 1.0),
    ("Double", "0x400921FB54442D18", math.pi),
    ("Double", "0x0000000000000001", 5e-324),
    ("Double", "0x7FF0000000000000", INF),
    ("Double", "0xFFF0000000000000", -INF),
    ("Double", "0x7FF8000000000000", NAN),
    ("Double", "0x8000000000000000", -0.0),
    ("Double", "0x3F800000", struct.unpack("<d", struct.pack("<Q", 0x3F800000))[0]),
]


def literal_function(type_name: str, literal: str) -> str:
    return (
        f"sil @f : $@convention(thin) () -> {type_name} {{\n"
        "bb0:\n"
        f"  %0 = float_literal ${type_name}, {literal}\n"
        f"  return %0 : ${type_name}\n"
        "}\n"
    )


def test_integer_literals() -> None:
    values = run(LITERALS, fn="@ints")
    assert values == (0, -3, INT_MAX, INT_MIN, 16, 42)
    assert all(type(v) is int for v in values)


def test_bool_literals_minus_one_is_true() -> None:
    values = run(LITERALS, fn="@bools")
    assert values == (True, False, True)
    assert all(type(v) is bool for v in values)


@pytest.mark.parametrize(("type_name", "literal", "expected"), FLOAT_LITERALS)
def test_float_literal(type_name: str, literal: str, expected: float) -> None:
    assert_scalar(run(literal_function(type_name, literal)), expected, type_name)


def test_float_literal_feeds_binary32_arithmetic() -> None:
    """A Float literal is a binary32 value: 0.1 + 0.2 in Float is float32(0.1) + float32(0.2)."""
    text = (
        "sil @f : $@convention(thin) () -> (Float, Double) {\n"
        "bb0:\n"
        "  %a = float_literal $Float, 0.1\n"
        "  %b = float_literal $Float, 0.2\n"
        '  %s = builtin "fadd"(%a : $Float, %b : $Float) : $Float\n'
        "  %c = float_literal $Double, 0.1\n"
        "  %d = float_literal $Double, 0.2\n"
        '  %t = builtin "fadd"(%c : $Double, %d : $Double) : $Double\n'
        "  %r = tuple (%s : $Float, %t : $Double)\n"
        "  return %r : $(Float, Double)\n"
        "}\n"
    )
    s, t = run(text)
    assert_float(s, np.float32(0.1) + np.float32(0.2))
    assert_double(t, 0.1 + 0.2)


# --- tuples and structs --------------------------------------------------------------------------------

AGGREGATES = """
struct Point {
  var x: Float
  var y: Float
  var tag: Int
}

struct Segment {
  var from: Point
  var to: Point
  var ends: (Double, Double)
}

struct Counter {
  var count: Int
  var index: Int
}

sil @tuples : $@convention(thin) (Float, Int) -> ((Float, Int), Int, Float, Int) {
bb0(%a : $Float, %b : $Int):
  %t = tuple (%a : $Float, %b : $Int)
  %e = tuple_extract %t : $(Float, Int), 1
  (%p, %q) = destructure_tuple %t : $(Float, Int)
  %r = tuple (%t : $(Float, Int), %e : $Int, %p : $Float, %q : $Int)
  return %r : $((Float, Int), Int, Float, Int)
}

sil @labeled : $@convention(thin) (Float, Int) -> ((), (x: Float, y: Int), Int, Float) {
bb0(%a : $Float, %b : $Int):
  %u = tuple ()
  %l = tuple $(x: Float, y: Int) (%a, %b)
  %ly = tuple_extract %l : $(x: Float, y: Int), 1
  (%lx, %ly2) = destructure_tuple %l : $(x: Float, y: Int)
  %r = tuple (%u : $(), %l : $(x: Float, y: Int), %ly : $Int, %lx : $Float)
  return %r : $((), (x: Float, y: Int), Int, Float)
}

sil @nested : $@convention(thin) (((Float, Int), Double)) -> (Double, Int, Float) {
bb0(%n : $((Float, Int), Double)):
  %inner = tuple_extract %n : $((Float, Int), Double), 0
  %d = tuple_extract %n : $((Float, Int), Double), 1
  (%f, %i) = destructure_tuple %inner : $(Float, Int)
  %r = tuple (%d : $Double, %i : $Int, %f : $Float)
  return %r : $(Double, Int, Float)
}

sil @empty : $@convention(thin) (()) -> () {
bb0(%u : $()):
  () = destructure_tuple %u : $()
  return %u : $()
}

sil @structs : $@convention(thin) (Float, Float, Int) -> (Point, Float, Float, Int, Float, Int) {
bb0(%x : $Float, %y : $Float, %n : $Int):
  %p = struct $Point (%x : $Float, %y : $Float, %n : $Int)
  %px = struct_extract %p : $Point, #Point.x
  (%dx, %dy, %dt) = destructure_struct %p : $Point
  %s = builtin "fsub"(%dy : $Float, %dx : $Float) : $Float
  %pt = struct_extract %p : $Point, #Point.tag
  %r = tuple (%p : $Point, %px : $Float, %s : $Float, %dt : $Int, %dy : $Float, %pt : $Int)
  return %r : $(Point, Float, Float, Int, Float, Int)
}

sil @swap : $@convention(thin) (Point) -> Point {
bb0(%p : $Point):
  (%x, %y, %t) = destructure_struct %p : $Point
  %q = struct $Point (%y : $Float, %x : $Float, %t : $Int)
  return %q : $Point
}

sil @segment : $@convention(thin) (Segment) -> (Segment, Float, Double) {
bb0(%s : $Segment):
  %to = struct_extract %s : $Segment, #Segment.to
  %toy = struct_extract %to : $Point, #Point.y
  %ends = struct_extract %s : $Segment, #Segment.ends
  %e1 = tuple_extract %ends : $(Double, Double), 1
  (%a, %b, %c) = destructure_struct %s : $Segment
  %flipped = struct $Segment (%b : $Point, %a : $Point, %c : $(Double, Double))
  %r = tuple (%flipped : $Segment, %toy : $Float, %e1 : $Double)
  return %r : $(Segment, Float, Double)
}

sil @counter : $@convention(thin) (Int, Int) -> Counter {
bb0(%c : $Int, %i : $Int):
  %s = struct $Counter (%c : $Int, %i : $Int)
  return %s : $Counter
}
"""


def test_tuple_instructions() -> None:
    result = run(AGGREGATES, 1.5, 7, fn="@tuples")
    assert result == ((1.5, 7), 7, 1.5, 7)
    assert type(result[2]) is float and type(result[1]) is int


def test_empty_and_labeled_tuples() -> None:
    assert run(AGGREGATES, 0.5, -2, fn="@labeled") == ((), (0.5, -2), -2, 0.5)


def test_nested_and_one_element_tuples() -> None:
    assert run(AGGREGATES, ((0.1, -4), 2.5), fn="@nested") == (2.5, -4, float(np.float32(0.1)))


def test_empty_tuple_in_and_out() -> None:
    assert run(AGGREGATES, (), fn="@empty") == ()


def test_struct_instructions() -> None:
    p, px, s, dt, dy, pt = run(AGGREGATES, 1.0, 0.1, 9, fn="@structs")
    assert isinstance(p, StructValue)
    assert (p.x, p.tag) == (1.0, 9)
    assert_float(p.y, np.float32(0.1))
    assert p == (1.0, float(np.float32(0.1)), 9)
    assert p.asdict() == {"x": 1.0, "y": float(np.float32(0.1)), "tag": 9}
    assert (px, dt, pt) == (1.0, 9, 9)
    assert_float(s, np.float32(0.1) - np.float32(1.0))
    assert_float(dy, np.float32(0.1))


@pytest.mark.parametrize("argument", [(1.0, 2.0, 3), [1.0, 2.0, 3], {"x": 1.0, "y": 2.0, "tag": 3}])
def test_struct_arguments_from_python(argument: Any) -> None:
    q = run(AGGREGATES, argument, fn="@swap")
    assert (q.x, q.y, q.tag) == (2.0, 1.0, 3)
    assert type(q).__name__ == "Point"


def test_nested_structs_and_tuple_fields() -> None:
    segment = ((1.0, 2.0, 1), (3.0, 4.0, 2), (0.5, 0.25))
    flipped, toy, e1 = run(AGGREGATES, segment, fn="@segment")
    assert (toy, e1) == (4.0, 0.25)
    assert flipped.to.x == 1.0 and flipped.to.tag == 1
    assert getattr(flipped, "from") == (3.0, 4.0, 2)
    assert flipped.ends == (0.5, 0.25)


def test_struct_fields_named_like_tuple_methods() -> None:
    """``count`` and ``index`` are fields of the struct, not the methods of the tuple it is made of."""
    c = run(AGGREGATES, 3, 4, fn="@counter")
    assert c == (3, 4)
    assert c.asdict() == {"count": 3, "index": 4}
    assert c.count == 3
    assert c.index == 4


# --- enums ---------------------------------------------------------------------------------------------

ENUMS = """
struct Rect {
  var width: Double
  var height: Double
}

enum Shape {
  case circle(Double)
  case rect(Rect)
  case pair((Double, Double))
  case empty
}

sil @area : $@convention(thin) (Shape) -> Double {
bb0(%s : $Shape):
  switch_enum %s : $Shape, case #Shape.circle!enumelt: bb1, case #Shape.rect!enumelt: bb2,
    case #Shape.pair!enumelt: bb3, case #Shape.empty!enumelt: bb4

bb1(%r : $Double):
  %r2 = builtin "fmul"(%r : $Double, %r : $Double) : $Double
  %three = float_literal $Double, 3.0
  %a = builtin "fmul"(%three : $Double, %r2 : $Double) : $Double
  return %a : $Double

bb2(%rect : $Rect):
  (%w, %h) = destructure_struct %rect : $Rect
  %wh = builtin "fmul"(%w : $Double, %h : $Double) : $Double
  return %wh : $Double

bb3(%p : $(Double, Double)):
  (%p0, %p1) = destructure_tuple %p : $(Double, Double)
  %d = builtin "fsub"(%p0 : $Double, %p1 : $Double) : $Double
  return %d : $Double

bb4:
  %zero = float_literal $Double, 0.0
  return %zero : $Double
}

sil @circle_radius : $@convention(thin) (Shape) -> Double {
bb0(%s : $Shape):
  switch_enum %s : $Shape, case #Shape.circle!enumelt: bb1, default bb2

bb1(%r : $Double):
  return %r : $Double

bb2:
  %minus = float_literal $Double, -1.0
  return %minus : $Double
}

sil @make : $@convention(thin) (Int, Double) -> Shape {
bb0(%k : $Int, %x : $Double):
  %zero = integer_literal $Int, 0
  %one = integer_literal $Int, 1
  %is0 = builtin "cmp_eq"(%k : $Int, %zero : $Int) : $Bool
  cond_br %is0, bb1, bb2

bb1:
  %c = enum $Shape, #Shape.circle!enumelt, %x : $Double
  br bb5(%c : $Shape)

bb2:
  %is1 = builtin "cmp_eq"(%k : $Int, %one : $Int) : $Bool
  cond_br %is1, bb3, bb4

bb3:
  %rect = struct $Rect (%x : $Double, %x : $Double)
  %r = enum $Shape, #Shape.rect!enumelt, %rect : $Rect
  br bb5(%r : $Shape)

bb4:
  %e = enum $Shape, #Shape.empty!enumelt
  br bb5(%e : $Shape)

bb5(%s : $Shape):
  return %s : $Shape
}

sil @round_trip : $@convention(thin) (Int, Double) -> Double {
bb0(%k : $Int, %x : $Double):
  %make = function_ref @make : $@convention(thin) (Int, Double) -> Shape
  %s = apply %make(%k, %x) : $@convention(thin) (Int, Double) -> Shape
  %area = function_ref @area : $@convention(thin) (Shape) -> Double
  %a = apply %area(%s) : $@convention(thin) (Shape) -> Double
  return %a : $Double
}
"""


@pytest.mark.parametrize(
    ("shape", "area", "radius"),
    [
        (EnumValue("Shape", "circle", 2.0), 12.0, 2.0),
        (EnumValue("Shape", "rect", (2.0, 3.5)), 7.0, -1.0),
        (EnumValue("Shape", "rect", {"width": 0.5, "height": 4.0}), 2.0, -1.0),
        (EnumValue("Shape", "pair", (5.0, 1.5)), 3.5, -1.0),
        (EnumValue("Shape", "empty"), 0.0, -1.0),
    ],
)
def test_switch_enum_passes_the_payload(shape: EnumValue, area: float, radius: float) -> None:
    assert_double(run(ENUMS, shape, fn="@area"), area)
    assert_double(run(ENUMS, shape, fn="@circle_radius"), radius)


def test_enum_results() -> None:
    circle = run(ENUMS, 0, 1.5, fn="@make")
    assert isinstance(circle, EnumValue)
    assert (circle.enum, circle.case, circle.payload) == ("Shape", "circle", 1.5)
    rect = run(ENUMS, 1, 2.0, fn="@make")
    assert rect.case == "rect" and (rect.payload.width, rect.payload.height) == (2.0, 2.0)
    empty = run(ENUMS, 2, 2.0, fn="@make")
    assert empty == EnumValue("Shape", "empty") and empty.payload is None


def test_enum_made_and_switched_in_one_run() -> None:
    assert [run(ENUMS, k, 2.0, fn="@round_trip") for k in (0, 1, 2)] == [12.0, 4.0, 0.0]


# --- functions and closures ----------------------------------------------------------------------------

FUNCTIONS = """
sil @affine : $@convention(thin) (Int, Int, Int) -> Int {
bb0(%x : $Int, %a : $Int, %b : $Int):
  %d = builtin "sub"(%x : $Int, %a : $Int) : $Int
  %r = builtin "mul"(%d : $Int, %b : $Int) : $Int
  return %r : $Int
}

sil @direct : $@convention(thin) (Int, Int, Int) -> Int {
bb0(%x : $Int, %a : $Int, %b : $Int):
  %f = function_ref @affine : $@convention(thin) (Int, Int, Int) -> Int
  %r = apply %f(%x, %a, %b) : $@convention(thin) (Int, Int, Int) -> Int
  return %r : $Int
}

sil @bind_one : $@convention(thin) (Int, Int, Int) -> Int {
bb0(%x : $Int, %a : $Int, %b : $Int):
  %f = function_ref @affine : $@convention(thin) (Int, Int, Int) -> Int
  %c = partial_apply [callee_guaranteed] %f(%b) : $@convention(thin) (Int, Int, Int) -> Int
  %r = apply %c(%x, %a) : $@callee_guaranteed (Int, Int) -> Int
  return %r : $Int
}

sil @make_affine : $@convention(thin) (Int, Int) -> @callee_guaranteed (Int) -> Int {
bb0(%a : $Int, %b : $Int):
  %f = function_ref @affine : $@convention(thin) (Int, Int, Int) -> Int
  %c = partial_apply [callee_guaranteed] %f(%a, %b) : $@convention(thin) (Int, Int, Int) -> Int
  return %c : $@callee_guaranteed (Int) -> Int
}

sil @bind_in_two_steps : $@convention(thin) (Int, Int, Int) -> Int {
bb0(%x : $Int, %a : $Int, %b : $Int):
  %f = function_ref @affine : $@convention(thin) (Int, Int, Int) -> Int
  %c1 = partial_apply [callee_guaranteed] %f(%b) : $@convention(thin) (Int, Int, Int) -> Int
  %c2 = partial_apply [callee_guaranteed] %c1(%a) : $@callee_guaranteed (Int, Int) -> Int
  %r = apply %c2(%x) : $@callee_guaranteed (Int) -> Int
  return %r : $Int
}

sil @bind_all : $@convention(thin) (Int, Int, Int) -> Int {
bb0(%x : $Int, %a : $Int, %b : $Int):
  %f = function_ref @affine : $@convention(thin) (Int, Int, Int) -> Int
  %c = partial_apply [callee_guaranteed] %f(%x, %a, %b) : $@convention(thin) (Int, Int, Int) -> Int
  %r = apply %c() : $@callee_guaranteed () -> Int
  return %r : $Int
}

sil @twice : $@convention(thin) (@callee_guaranteed (Int) -> Int, Int) -> Int {
bb0(%g : $@callee_guaranteed (Int) -> Int, %x : $Int):
  %y = apply %g(%x) : $@callee_guaranteed (Int) -> Int
  %z = apply %g(%y) : $@callee_guaranteed (Int) -> Int
  return %z : $Int
}

sil @negate : $@convention(thin) (Int) -> Int {
bb0(%x : $Int):
  %zero = integer_literal $Int, 0
  %r = builtin "sub"(%zero : $Int, %x : $Int) : $Int
  return %r : $Int
}

sil @closures : $@convention(thin) (Int) -> (Int, Int) {
bb0(%x : $Int):
  %make = function_ref @make_affine : $@convention(thin) (Int, Int) -> @callee_guaranteed (Int) -> Int
  %one = integer_literal $Int, 1
  %two = integer_literal $Int, 2
  %c = apply %make(%one, %two) : $@convention(thin) (Int, Int) -> @callee_guaranteed (Int) -> Int
  %twice = function_ref @twice : $@convention(thin) (@callee_guaranteed (Int) -> Int, Int) -> Int
  %a = apply %twice(%c, %x) : $@convention(thin) (@callee_guaranteed (Int) -> Int, Int) -> Int
  %neg = function_ref @negate : $@convention(thin) (Int) -> Int
  %thick = thin_to_thick_function %neg : $@convention(thin) (Int) -> Int to $@callee_guaranteed (Int) -> Int
  %b = apply %twice(%thick, %x) : $@convention(thin) (@callee_guaranteed (Int) -> Int, Int) -> Int
  %r = tuple (%a : $Int, %b : $Int)
  return %r : $(Int, Int)
}

sil @thin_value : $@convention(thin) () -> @convention(thin) (Int) -> Int {
bb0:
  %neg = function_ref @negate : $@convention(thin) (Int) -> Int
  return %neg : $@convention(thin) (Int) -> Int
}

sil @scale : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %k : $Double):
  %r = builtin "fmul"(%x : $Double, %k : $Double) : $Double
  return %r : $Double
}

// Instructions and signatures may continue on the next line (SIL-SPEC §1).
sil @compose : $@convention(thin) (@callee_guaranteed (Double) -> Double, Double)
    -> @callee_guaranteed (Double) -> Double {
bb0(%g : $@callee_guaranteed (Double) -> Double, %k : $Double):
  %then = function_ref @scale_after
    : $@convention(thin) (Double, @callee_guaranteed (Double) -> Double, Double) -> Double
  %c = partial_apply [callee_guaranteed] %then(%g, %k)
    : $@convention(thin) (Double, @callee_guaranteed (Double) -> Double, Double) -> Double
  return %c : $@callee_guaranteed (Double) -> Double
}

sil @scale_after : $@convention(thin) (Double, @callee_guaranteed (Double) -> Double, Double) -> Double {
bb0(%x : $Double, %g : $@callee_guaranteed (Double) -> Double, %k : $Double):
  %y = apply %g(%x) : $@callee_guaranteed (Double) -> Double
  %scale = function_ref @scale : $@convention(thin) (Double, Double) -> Double
  %r = apply %scale(%y, %k) : $@convention(thin) (Double, Double) -> Double
  return %r : $Double
}
"""


def affine(x: int, a: int, b: int) -> int:
    return (x - a) * b


@pytest.mark.parametrize("fn", ["@direct", "@bind_one", "@bind_in_two_steps", "@bind_all"])
def test_partial_apply_binds_the_trailing_arguments(fn: str) -> None:
    for x, a, b in [(10, 3, 2), (-1, 5, 7), (0, 0, 1)]:
        assert run(FUNCTIONS, x, a, b, fn=fn) == affine(x, a, b)


def test_closures_returned_from_and_passed_to_functions() -> None:
    # make_affine(1, 2) is x -> (x - 1) * 2; twice applies it twice; negate twice is the identity.
    assert run(FUNCTIONS, 5, fn="@closures") == (affine(affine(5, 1, 2), 1, 2), 5)


def test_closure_returned_to_python() -> None:
    closure = run(FUNCTIONS, 3, 4, fn="@make_affine")
    assert isinstance(closure, SILFunction)
    assert closure(10) == affine(10, 3, 4)
    assert closure(-2) == affine(-2, 3, 4)
    assert type(closure(0)) is int
    assert run(FUNCTIONS, closure, 10, fn="@twice") == affine(affine(10, 3, 4), 3, 4)


def test_thin_function_value_returned_to_python() -> None:
    negate = run(FUNCTIONS, fn="@thin_value")
    assert negate(5) == -5
    assert negate(INT_MIN) == INT_MIN


def test_python_callables_as_closures() -> None:
    assert run(FUNCTIONS, lambda v: v * 3, 2, fn="@twice") == 18
    scaled = run(FUNCTIONS, lambda v: v + 0.5, 4.0, fn="@compose")
    assert scaled(1.0) == 6.0
    inner = run(FUNCTIONS, lambda v: -v, 2.0, fn="@compose")
    outer = run(FUNCTIONS, inner, 10.0, fn="@compose")
    assert outer(3.0) == -60.0


def test_a_function_used_only_through_closures_is_still_callable_by_itself() -> None:
    """``@scale_after`` is only partially applied (binding two arguments), so it is compiled to
    take those as one tuple, as closures pass them; called from Python it takes them one by one."""
    p = program(FUNCTIONS)
    assert p.compiler.packed == {"scale_after": 2}
    assert p.run("@scale_after", 2.0, lambda v: v + 1.0, 10.0) == 30.0


ESCAPING_CALLEE = """
sil @add : $@convention(thin) (Int, Int) -> Int {
bb0(%a : $Int, %b : $Int):
  %r = builtin "add"(%a : $Int, %b : $Int) : $Int
  return %r : $Int
}

sil @apply_thin : $@convention(thin) (Int, @convention(thin) (Int, Int) -> Int) -> Int {
bb0(%x : $Int, %f : $@convention(thin) (Int, Int) -> Int):
  %r = apply %f(%x, %x) : $@convention(thin) (Int, Int) -> Int
  return %r : $Int
}

sil @main : $@convention(thin) (Int) -> (Int, Int) {
bb0(%x : $Int):
  %add = function_ref @add : $@convention(thin) (Int, Int) -> Int
  %c = partial_apply [callee_guaranteed] %add(%x) : $@convention(thin) (Int, Int) -> Int
  %at = function_ref @apply_thin : $@convention(thin) (Int, @convention(thin) (Int, Int) -> Int) -> Int
  %d = partial_apply [callee_guaranteed] %at(%add)
    : $@convention(thin) (Int, @convention(thin) (Int, Int) -> Int) -> Int
  %one = integer_literal $Int, 1
  %r1 = apply %c(%one) : $@callee_guaranteed (Int) -> Int
  %r2 = apply %d(%one) : $@callee_guaranteed (Int) -> Int
  %r = tuple (%r1 : $Int, %r2 : $Int)
  return %r : $(Int, Int)
}
"""


def test_a_function_also_bound_as_a_value_keeps_taking_arguments_one_by_one() -> None:
    # @add is partially applied, and also bound (as a value) into a closure of @apply_thin.
    p = program(ESCAPING_CALLEE)
    assert "add" not in p.compiler.packed and p.compiler.packed == {"apply_thin": 1}
    assert p.run("@main", 5) == (6, 2)


REBOUND_CLOSURE = """
sil @affine3 : $@convention(thin) (Int, Int, Int) -> Int {
bb0(%x : $Int, %a : $Int, %b : $Int):
  %d = builtin "sub"(%x : $Int, %a : $Int) : $Int
  %r = builtin "mul"(%d : $Int, %b : $Int) : $Int
  return %r : $Int
}

sil @main : $@convention(thin) (Int, Int, Int) -> Int {
bb0(%x : $Int, %a : $Int, %b : $Int):
  %f = function_ref @affine3 : $@convention(thin) (Int, Int, Int) -> Int
  %c1 = partial_apply [callee_guaranteed] %f(%b) : $@convention(thin) (Int, Int, Int) -> Int
  %c2 = partial_apply [callee_guaranteed] %c1(%a) : $@callee_guaranteed (Int, Int) -> Int
  %r = apply %c2(%x) : $@callee_guaranteed (Int) -> Int
  return %r : $Int
}
"""


def test_a_closure_of_a_function_compiled_for_closures_can_be_bound_again() -> None:
    p = program(REBOUND_CLOSURE)
    assert p.compiler.packed == {"affine3": 1}
    assert p.run("@main", 10, 3, 2) == affine(10, 3, 2)


def test_interp_run_function() -> None:
    module = program(FUNCTIONS).module
    assert run_module(module, "@direct", 10, 3, 2, backend=BACKEND) == affine(10, 3, 2)


# --- recursion --------------------------------------------------------------------------------------

RECURSION = """
sil @fact : $@convention(thin) (Int) -> Int {
bb0(%n : $Int):
  %one = integer_literal $Int, 1
  %small = builtin "cmp_sle"(%n : $Int, %one : $Int) : $Bool
  cond_br %small, bb1, bb2

bb1:
  return %one : $Int

bb2:
  %m = builtin "sub"(%n : $Int, %one : $Int) : $Int
  %f = function_ref @fact : $@convention(thin) (Int) -> Int
  %r = apply %f(%m) : $@convention(thin) (Int) -> Int
  %p = builtin "mul"(%n : $Int, %r : $Int) : $Int
  return %p : $Int
}

sil @fib : $@convention(thin) (Int) -> Int {
bb0(%n : $Int):
  %two = integer_literal $Int, 2
  %small = builtin "cmp_slt"(%n : $Int, %two : $Int) : $Bool
  cond_br %small, bb1, bb2

bb1:
  return %n : $Int

bb2:
  %one = integer_literal $Int, 1
  %a = builtin "sub"(%n : $Int, %one : $Int) : $Int
  %b = builtin "sub"(%n : $Int, %two : $Int) : $Int
  %f = function_ref @fib : $@convention(thin) (Int) -> Int
  %fa = apply %f(%a) : $@convention(thin) (Int) -> Int
  %fb = apply %f(%b) : $@convention(thin) (Int) -> Int
  %r = builtin "add"(%fa : $Int, %fb : $Int) : $Int
  return %r : $Int
}

sil @is_even : $@convention(thin) (Int) -> Bool {
bb0(%n : $Int):
  %zero = integer_literal $Int, 0
  %done = builtin "cmp_eq"(%n : $Int, %zero : $Int) : $Bool
  cond_br %done, bb1, bb2

bb1:
  %t = integer_literal $Bool, -1
  return %t : $Bool

bb2:
  %one = integer_literal $Int, 1
  %m = builtin "sub"(%n : $Int, %one : $Int) : $Int
  %odd = function_ref @is_odd : $@convention(thin) (Int) -> Bool
  %r = apply %odd(%m) : $@convention(thin) (Int) -> Bool
  return %r : $Bool
}

sil @is_odd : $@convention(thin) (Int) -> Bool {
bb0(%n : $Int):
  %zero = integer_literal $Int, 0
  %done = builtin "cmp_eq"(%n : $Int, %zero : $Int) : $Bool
  cond_br %done, bb1, bb2

bb1:
  %f = integer_literal $Bool, 0
  return %f : $Bool

bb2:
  %one = integer_literal $Int, 1
  %m = builtin "sub"(%n : $Int, %one : $Int) : $Int
  %even = function_ref @is_even : $@convention(thin) (Int) -> Bool
  %r = apply %even(%m) : $@convention(thin) (Int) -> Bool
  return %r : $Bool
}
"""


def test_recursion() -> None:
    assert [run(RECURSION, n, fn="@fact") for n in (0, 1, 5, 20)] == [1, 1, 120, math.factorial(20)]
    assert run(RECURSION, 21, fn="@fact") == (math.factorial(21) + 2**63) % 2**64 - 2**63
    assert [run(RECURSION, n, fn="@fib") for n in range(12)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89]


def test_mutual_and_deep_recursion() -> None:
    assert [run(RECURSION, n, fn="@is_even") for n in (0, 1, 10, 7)] == [True, False, True, False]
    assert run(RECURSION, 3001, fn="@is_odd") is True


def test_recursion_deeper_than_the_limit_faults_at_the_apply() -> None:
    diagnostic = fault(RECURSION, 100, fn="@fact", max_depth=50)
    apply = "%r = apply %f(%m) : $@convention(thin) (Int) -> Int"
    assert_located(diagnostic, RECURSION, apply, "recursion deeper than 50")
    assert program(RECURSION, 50).run("@fact", 10) == math.factorial(10)


# --- control flow ---------------------------------------------------------------------------------

CONTROL_FLOW = """
sil @swap_loop : $@convention(thin) (Int, Int, Int) -> (Int, Int) {
bb0(%a : $Int, %b : $Int, %n : $Int):
  br bb1(%a : $Int, %b : $Int, %n : $Int)

bb1(%x : $Int, %y : $Int, %i : $Int):
  %zero = integer_literal $Int, 0
  %more = builtin "cmp_slt"(%zero : $Int, %i : $Int) : $Bool
  cond_br %more, bb2, bb3

bb2:
  %one = integer_literal $Int, 1
  %j = builtin "sub"(%i : $Int, %one : $Int) : $Int
  br bb1(%y : $Int, %x : $Int, %j : $Int)

bb3:
  %r = tuple (%x : $Int, %y : $Int)
  return %r : $(Int, Int)
}

sil @swap_in_place : $@convention(thin) (Int, Int, Int) -> (Int, Int) {
bb0(%a : $Int, %b : $Int, %n : $Int):
  %zero = integer_literal $Int, 0
  br bb1(%a : $Int, %b : $Int, %zero : $Int)

bb1(%x : $Int, %y : $Int, %i : $Int):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  %one = integer_literal $Int, 1
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  cond_br %more, bb1(%y : $Int, %x : $Int, %j : $Int), bb2(%x : $Int, %y : $Int)

bb2(%p : $Int, %q : $Int):
  %r = tuple (%p : $Int, %q : $Int)
  return %r : $(Int, Int)
}

sil @fib_loop : $@convention(thin) (Int) -> Int {
bb0(%n : $Int):
  %zero = integer_literal $Int, 0
  %one = integer_literal $Int, 1
  br bb1(%zero : $Int, %one : $Int, %n : $Int)

bb1(%a : $Int, %b : $Int, %k : $Int):
  %z = integer_literal $Int, 0
  %done = builtin "cmp_sle"(%k : $Int, %z : $Int) : $Bool
  cond_br %done, bb3(%a : $Int), bb2

bb2:
  %s = builtin "add"(%a : $Int, %b : $Int) : $Int
  %o = integer_literal $Int, 1
  %k1 = builtin "sub"(%k : $Int, %o : $Int) : $Int
  br bb1(%b : $Int, %s : $Int, %k1 : $Int)

bb3(%r : $Int):
  return %r : $Int
}

sil @both_edges : $@convention(thin) (Bool, Float, Float) -> Float {
bb0(%c : $Bool, %x : $Float, %y : $Float):
  cond_br %c, bb1(%x : $Float), bb2(%y : $Float, %x : $Float)

bb1(%a : $Float):
  return %a : $Float

bb2(%p : $Float, %q : $Float):
  %d = builtin "fsub"(%p : $Float, %q : $Float) : $Float
  return %d : $Float
}

sil @same_target : $@convention(thin) (Bool, Int, Int) -> Int {
bb0(%c : $Bool, %x : $Int, %y : $Int):
  cond_br %c, bb1(%x : $Int, %y : $Int), bb1(%y : $Int, %x : $Int)

bb1(%p : $Int, %q : $Int):
  %d = builtin "sub"(%p : $Int, %q : $Int) : $Int
  return %d : $Int
}

sil @blocks_out_of_order : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  br bb2(%x : $Double)

bb1(%z : $Double):
  return %z : $Double

bb2(%y : $Double):
  %s = builtin "fmul"(%y : $Double, %y : $Double) : $Double
  br bb1(%s : $Double)
}

sil @checked : $@convention(thin) (Bool, Int) -> Int {
bb0(%ok : $Bool, %x : $Int):
  cond_br %ok, bb1, bb2

bb1:
  return %x : $Int

bb2:
  unreachable
}

sil @dead_unreachable : $@convention(thin) (Int) -> Int {
bb0(%x : $Int):
  return %x : $Int

bb1:
  unreachable
}
"""


@pytest.mark.parametrize("fn", ["@swap_loop", "@swap_in_place"])
def test_branch_arguments_are_assigned_all_at_once(fn: str) -> None:
    """``br bb1(%y, %x)`` to the block defining %x and %y swaps them (a parallel assignment)."""
    assert [run(CONTROL_FLOW, 1, 2, n, fn=fn) for n in range(5)] == [(1, 2), (2, 1), (1, 2), (2, 1), (1, 2)]


def test_loop_with_rotating_block_arguments() -> None:
    assert [run(CONTROL_FLOW, n, fn="@fib_loop") for n in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
    assert run(CONTROL_FLOW, 92, fn="@fib_loop") == 7540113804746346429
    assert run(CONTROL_FLOW, 93, fn="@fib_loop") == (12200160415121876738 + 2**63) % 2**64 - 2**63


def test_cond_br_with_arguments_on_both_edges() -> None:
    assert run(CONTROL_FLOW, True, 1.0, 0.1, fn="@both_edges") == 1.0
    assert_float(run(CONTROL_FLOW, False, 1.0, 0.1, fn="@both_edges"), np.float32(0.1) - np.float32(1.0))


def test_cond_br_to_one_block_from_both_edges() -> None:
    assert run(CONTROL_FLOW, True, 10, 3, fn="@same_target") == 7
    assert run(CONTROL_FLOW, False, 10, 3, fn="@same_target") == -7


def test_blocks_written_out_of_order() -> None:
    assert run(CONTROL_FLOW, 3.0, fn="@blocks_out_of_order") == 9.0


def test_unreachable_faults_when_reached() -> None:
    assert run(CONTROL_FLOW, True, 4, fn="@checked") == 4
    diagnostic = fault(CONTROL_FLOW, False, 4, fn="@checked")
    assert diagnostic.message == "unreachable executed"
    lines = CONTROL_FLOW.splitlines()
    checked = lines.index("sil @checked : $@convention(thin) (Bool, Int) -> Int {")
    assert diagnostic.line() == lines.index("  unreachable", checked) + 1
    assert diagnostic.render().startswith(f"{FILENAME}:{diagnostic.line()}:3: error: unreachable executed")


def test_unreachable_in_a_dead_block_is_harmless() -> None:
    assert run(CONTROL_FLOW, 5, fn="@dead_unreachable") == 5


# --- unlowered differentiation instructions ----------------------------------------------------

UNLOWERED = """
sil @square : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %y = builtin "fmul"(%x : $Float, %x : $Float) : $Float
  return %y : $Float
}

sil @uses_gradient : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %f = function_ref @square : $@convention(thin) (Float) -> Float
  %g = gradient [wrt 0] %f : $@convention(thin) (Float) -> Float
  %r = apply %g(%x) : $@convention(thin) (Float) -> Float
  return %r : $Float
}

sil @uses_differentiable_function : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %f = function_ref @square : $@convention(thin) (Float) -> Float
  %d = differentiable_function [parameters 0] %f : $@convention(thin) (Float) -> Float
  %o = differentiable_function_extract [original] %d
    : $@differentiable(reverse) @convention(thin) (Float) -> Float
  %r = apply %o(%x) : $@convention(thin) (Float) -> Float
  return %r : $Float
}

sil @uses_extract
    : $@convention(thin) (@differentiable(reverse) @convention(thin) (Float) -> Float, Float) -> Float {
bb0(%d : $@differentiable(reverse) @convention(thin) (Float) -> Float, %x : $Float):
  %o = differentiable_function_extract [vjp] %d : $@differentiable(reverse) @convention(thin) (Float) -> Float
  (%y, %pb) = destructure_tuple %r0 : $(Float, @callee_guaranteed (Float) -> Float)
  return %y : $Float
}

sil @calls_uses_gradient : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %f = function_ref @uses_gradient : $@convention(thin) (Float) -> Float
  %r = apply %f(%x) : $@convention(thin) (Float) -> Float
  return %r : $Float
}
""".replace(
    "  (%y, %pb) = destructure_tuple %r0",
    "  %r0 = apply %o(%x) : $@convention(thin) (Float) -> (Float, @callee_guaranteed (Float) -> Float)\n"
    "  (%y, %pb) = destructure_tuple %r0",
)


def _compile_error(fn: str, *args: Any) -> RunError:
    with pytest.raises(RunError) as info:
        program(UNLOWERED).run(fn, *args)
    return info.value


@pytest.mark.parametrize(
    ("fn", "opname", "needle"),
    [
        ("@uses_gradient", "gradient", "%g = gradient"),
        ("@uses_differentiable_function", "differentiable_function", "%d = differentiable_function"),
        ("@calls_uses_gradient", "gradient", "%g = gradient"),
    ],
)
def test_unlowered_instructions_cannot_run(fn: str, opname: str, needle: str) -> None:
    error = _compile_error(fn, 1.0)
    assert len(error.diagnostics) == 1
    diagnostic = error.diagnostics[0]
    assert_located(diagnostic, UNLOWERED, needle, f"cannot run '{opname}'")
    assert diagnostic.message.endswith("lowered first"), diagnostic.message


def test_extracting_from_a_differentiable_function_value_runs() -> None:
    """A ``@differentiable`` function passed in runs as its (original, JVP, VJP): extracting from
    it needs nothing lowered."""
    bundle = (lambda x: x * x, lambda x: (x * x, lambda t: 2 * x * t), lambda x: (x * x, lambda s: 2 * x * s))
    assert run(UNLOWERED, bundle, 3.0, fn="@uses_extract") == 9.0


def test_a_differentiable_function_value_is_a_triple() -> None:
    with pytest.raises(RunError) as info:
        program(UNLOWERED).run("@uses_extract", lambda x: x, 3.0)
    message = info.value.diagnostics[0].message
    assert "argument 0 must be a @differentiable(reverse) @convention(thin) (Float) -> Float" in message
    assert "a triple (original, jvp, vjp)" in message


def test_an_unlowered_instruction_fails_every_run_alike() -> None:
    """A second run of a function whose compilation failed reports the same error (not a crash)."""
    module = parse(UNLOWERED, FILENAME)
    prog = Program(module, BACKEND)
    for _ in range(2):
        with pytest.raises(RunError) as info:
            prog.run("@calls_uses_gradient", 1.0)
        assert info.value.diagnostics[0].message.startswith("cannot run 'gradient'")
    assert prog.run("@square", 3.0) == 9.0


def test_functions_without_unlowered_instructions_still_run() -> None:
    assert run(UNLOWERED, 3.0, fn="@square") == 9.0


PROGRAMS = {
    "LITERALS": LITERALS,
    "AGGREGATES": AGGREGATES,
    "ENUMS": ENUMS,
    "FUNCTIONS": FUNCTIONS,
    "RECURSION": RECURSION,
    "CONTROL_FLOW": CONTROL_FLOW,
    "UNLOWERED": UNLOWERED,
    "FLOAT_LITERAL": literal_function("Float", "1.5"),
}
"""The modules this file runs (``test_builtin_coverage`` checks that they use every instruction)."""


@pytest.mark.parametrize("conversion_first", [True, False])
def test_many_float_constants_leave_the_helpers_names_alone(conversion_first: bool) -> None:
    """A function's constants are named by their kind and count (``_f32`` is its 33rd); a
    helper its templates call has a name of that form too (``_f32``, Float's ``sitofp``). A
    generated program with 40 Float literals once called its 33rd literal as the helper."""
    literals = [f"  %k{i} = float_literal $Float, {i}.5" for i in range(40)]
    sums = ['  %s0 = builtin "fadd"(%k0 : $Float, %c : $Float) : $Float'] + [
        f'  %s{i} = builtin "fadd"(%s{i - 1} : $Float, %k{i} : $Float) : $Float' for i in range(1, 40)
    ]
    conversion = ['  %c = builtin "sitofp"(%n : $Int) : $Float']
    body = [*conversion, *literals] if conversion_first else [*literals, *conversion]
    text = "\n".join(
        [
            "sil @f : $@convention(thin) (Int) -> Float {",
            "bb0(%n : $Int):",
            *body,
            *sums,
            "  return %s39 : $Float",
            "}",
            "",
        ]
    )
    assert run(text, 3) == np.float32(3 + sum(i + 0.5 for i in range(40)))
