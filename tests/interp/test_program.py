"""The Python API of the interpreter: values in and out, closures both ways, limits and faults."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from accel.numpy_backend import NumpyBackend
from interp import EnumValue, Program, RunError, SILFunction, StructValue, run
from sil import parse, verify_module

SOURCE = """\
struct Point {
  var x: Double
  var y: Double
}

enum Maybe {
  case none
  case some(Double)
}

sil @norm2 : $@convention(thin) (Point) -> Double {
bb0(%p : $Point):
  %x = struct_extract %p : $Point, #Point.x
  %y = struct_extract %p : $Point, #Point.y
  %xx = builtin "fmul"(%x : $Double, %x : $Double) : $Double
  %yy = builtin "fmul"(%y : $Double, %y : $Double) : $Double
  %s = builtin "fadd"(%xx : $Double, %yy : $Double) : $Double
  return %s : $Double
}

sil @mirror : $@convention(thin) (Point) -> Point {
bb0(%p : $Point):
  (%x, %y) = destructure_struct %p : $Point
  %q = struct $Point (%y : $Double, %x : $Double)
  return %q : $Point
}

sil @unwrap : $@convention(thin) (Maybe, Double) -> Double {
bb0(%m : $Maybe, %default : $Double):
  switch_enum %m : $Maybe, case #Maybe.some!enumelt: bb1, case #Maybe.none!enumelt: bb2

bb1(%v : $Double):
  return %v : $Double

bb2:
  return %default : $Double
}

sil @wrap : $@convention(thin) (Double) -> Maybe {
bb0(%v : $Double):
  %m = enum $Maybe, #Maybe.some!enumelt, %v : $Double
  return %m : $Maybe
}

sil @add : $@convention(thin) (Double, Double) -> Double {
bb0(%a : $Double, %b : $Double):
  %s = builtin "fadd"(%a : $Double, %b : $Double) : $Double
  return %s : $Double
}

sil @adder : $@convention(thin) (Double) -> @callee_guaranteed (Double) -> Double {
bb0(%b : $Double):
  %add = function_ref @add : $@convention(thin) (Double, Double) -> Double
  %c = partial_apply [callee_guaranteed] %add(%b) : $@convention(thin) (Double, Double) -> Double
  return %c : $@callee_guaranteed (Double) -> Double
}

sil @apply_twice : $@convention(thin) (@callee_guaranteed (Double) -> Double, Double) -> Double {
bb0(%f : $@callee_guaranteed (Double) -> Double, %x : $Double):
  %y = apply %f(%x) : $@callee_guaranteed (Double) -> Double
  %z = apply %f(%y) : $@callee_guaranteed (Double) -> Double
  return %z : $Double
}

sil @count_down : $@convention(thin) (Int) -> Int {
bb0(%n : $Int):
  %zero = integer_literal $Int, 0
  %done = builtin "cmp_sle"(%n : $Int, %zero : $Int) : $Bool
  cond_br %done, bb1, bb2

bb1:
  return %n : $Int

bb2:
  %f = function_ref @count_down : $@convention(thin) (Int) -> Int
  %one = integer_literal $Int, 1
  %m = builtin "sub"(%n : $Int, %one : $Int) : $Int
  %r = apply %f(%m) : $@convention(thin) (Int) -> Int
  return %r : $Int
}

sil @float_id : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  return %x : $Float
}

struct Wrapped {
  var inner: Point
}

sil @rewrap : $@convention(thin) (Wrapped) -> Wrapped {
bb0(%w : $Wrapped):
  %p = struct_extract %w : $Wrapped, #Wrapped.inner
  %mirror = function_ref @mirror : $@convention(thin) (Point) -> Point
  %q = apply %mirror(%p) : $@convention(thin) (Point) -> Point
  %v = struct $Wrapped (%q : $Point)
  %u = destructure_struct %v : $Wrapped
  %r = struct $Wrapped (%u : $Point)
  return %r : $Wrapped
}
"""


@pytest.fixture(scope="module")
def program() -> Program:
    module = parse(SOURCE, "api.sil")
    assert verify_module(module) == []
    return Program(module, NumpyBackend())


def test_struct_results_are_records_with_field_access(program: Program) -> None:
    p = program.run("@mirror", (1.0, 2.0))
    assert isinstance(p, StructValue)
    assert (p.x, p.y) == (2.0, 1.0)
    assert p.asdict() == {"x": 2.0, "y": 1.0}
    assert repr(p) == "Point(x=2.0, y=1.0)"


def test_structs_can_be_given_as_records_tuples_or_dicts(program: Program) -> None:
    record = program.run("@mirror", (3.0, 4.0))
    assert program.run("@norm2", record) == 25.0
    assert program.run("@norm2", [3.0, 4.0]) == 25.0
    assert program.run("@norm2", {"x": 3.0, "y": 4.0}) == 25.0


def test_one_field_structs_in_and_out(program: Program) -> None:
    """A one-field struct runs as its field's value; the API still sees a record."""
    w = program.run("@rewrap", ((1.0, 2.0),))
    assert isinstance(w, StructValue) and isinstance(w.inner, StructValue)
    assert (w.inner.x, w.inner.y) == (2.0, 1.0)
    assert program.run("@rewrap", w).inner.asdict() == {"x": 1.0, "y": 2.0}
    assert program.run("@rewrap", {"inner": {"x": 5.0, "y": 6.0}}).inner.x == 6.0


def test_enums_in_and_out(program: Program) -> None:
    assert program.run("@wrap", 2.5) == EnumValue("Maybe", "some", 2.5)
    assert program.run("@unwrap", EnumValue("Maybe", "some", 7.0), 1.0) == 7.0
    assert program.run("@unwrap", EnumValue("Maybe", "none"), 1.0) == 1.0


def test_closures_returned_from_a_run_are_callable(program: Program) -> None:
    add3 = program.run("@adder", 3.0)
    assert isinstance(add3, SILFunction)
    assert add3(4.0) == 7.0
    assert program.run("@apply_twice", add3, 1.0) == 7.0


def test_python_callables_can_be_passed_as_closures(program: Program) -> None:
    assert program.run("@apply_twice", lambda v: v * 10.0, 2.0) == 200.0


def test_float_arguments_are_rounded_to_binary32(program: Program) -> None:
    assert program.run("@float_id", 0.1) == float(np.float32(0.1))


def test_run_function_is_the_one_call_api() -> None:
    assert run(parse(SOURCE, "api.sil"), "@add", 1.0, 2.0, backend=NumpyBackend()) == 3.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1.0,), "@add takes 2 arguments (Double, Double), 1 given"),
        ((1.0, "x"), "argument 1 must be a Double, not 'x'"),
        ((True, 1.0), "argument 0 must be a Double, not True"),
    ],
)
def test_wrong_arguments_are_reported(program: Program, args: tuple[object, ...], message: str) -> None:
    with pytest.raises(RunError) as e:
        program.run("@add", *args)
    assert message in e.value.diagnostics[0].message


def test_unknown_function_is_reported(program: Program) -> None:
    with pytest.raises(RunError, match="no function '@nope'"):
        program.run("@nope")


def test_recursion_within_the_limit_needs_no_python_recursion_limit() -> None:
    program = Program(parse(SOURCE, "api.sil"), NumpyBackend())
    limit = sys.getrecursionlimit()
    assert program.run("@count_down", 9_000) == 0
    assert sys.getrecursionlimit() == limit


def test_recursion_past_the_limit_is_a_located_fault() -> None:
    program = Program(parse(SOURCE, "api.sil"), NumpyBackend(), max_depth=50)
    with pytest.raises(RunError) as e:
        program.run("@count_down", 100)
    (d,) = e.value.diagnostics
    assert d.message == "recursion deeper than 50 calls (see --max-depth)"
    assert d.render().startswith("api.sil:78:3: error:")
    assert [n.message for n in d.notes] == ["called from @count_down (49 nested calls from this place)"]


def test_steps_are_counted_exactly() -> None:
    program = Program(parse(SOURCE, "api.sil"), NumpyBackend(), count_steps=True)
    program.run("@count_down", 2)
    # Two frames of 8 instructions (the recursive path), then 4 in the last (the base case).
    assert program.steps == 8 + 8 + 4


@pytest.mark.parametrize("budget", [1, 5, 19])
def test_max_steps_stops_at_the_instruction_past_the_budget(budget: int) -> None:
    program = Program(parse(SOURCE, "api.sil"), NumpyBackend(), max_steps=budget)
    with pytest.raises(RunError) as e:
        program.run("@count_down", 2)
    assert e.value.diagnostics[0].message == f"the run exceeded --max-steps {budget}"
    assert program.steps == budget


def test_exactly_the_budget_is_allowed() -> None:
    program = Program(parse(SOURCE, "api.sil"), NumpyBackend(), max_steps=20)
    assert program.run("@count_down", 2) == 0
    assert program.steps == 20


SPIN = """\
sil @spin : $@convention(thin) (Int) -> Int {
bb0(%n : $Int):
  %zero = integer_literal $Int, 0
  br bb1(%zero : $Int)

bb1(%i : $Int):
  %one = integer_literal $Int, 1
  %next = builtin "add"(%i : $Int, %one : $Int) : $Int
  %more = builtin "cmp_slt"(%next : $Int, %n : $Int) : $Bool
  cond_br %more, bb1(%next : $Int), bb2

bb2:
  return %next : $Int
}
"""


@pytest.mark.parametrize("budget", [1, 2, 3, 239, 240, 241, 242, 500, 1000, 4321])
def test_max_steps_faults_at_the_exact_instruction_of_a_long_loop(budget: int) -> None:
    """The budget is drawn in windows; the fault is still at instruction number budget + 1."""
    trace = ["zero", "br"] + ["one", "add", "cmp", "cond_br"] * 10_000
    lines = {"zero": 3, "br": 4, "one": 7, "add": 8, "cmp": 9, "cond_br": 10}
    program = Program(parse(SPIN, "spin.sil"), NumpyBackend(), max_steps=budget)
    with pytest.raises(RunError) as e:
        program.run("@spin", 100_000)
    span = e.value.diagnostics[0].span
    assert span is not None and span.source.line_col(span.start)[0] == lines[trace[budget]]
    assert program.steps == budget


def test_counted_steps_of_a_long_loop_are_exact() -> None:
    program = Program(parse(SPIN, "spin.sil"), NumpyBackend(), count_steps=True)
    assert program.run("@spin", 5000) == 5000
    assert program.steps == 2 + 4 * 5000 + 1


ZIGZAG = """\
sil @zigzag : $@convention(thin) (Int) -> Int {
bb0(%n : $Int):
  %zero = integer_literal $Int, 0
  br bb1(%zero : $Int)

bb1(%i : $Int):
  %one = integer_literal $Int, 1
  %next = builtin "add"(%i : $Int, %one : $Int) : $Int
  %more = builtin "cmp_slt"(%next : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3

bb2:
  %bit = builtin "and"(%next : $Int, %one : $Int) : $Int
  %odd = builtin "cmp_eq"(%bit : $Int, %one : $Int) : $Bool
  cond_br %odd, bb1(%next : $Int), bb4

bb4:
  %two = integer_literal $Int, 2
  %twice = builtin "mul"(%next : $Int, %two : $Int) : $Int
  br bb1(%next : $Int)

bb3:
  return %next : $Int
}
"""


def zigzag_line(n: int, step: int) -> int:
    """The source line of the instruction a run of ``@zigzag(n)`` executes as number ``step`` (0-based)."""
    if step < 2:
        return 3 + step
    step -= 2
    i = 0
    while True:
        if step < 4:
            return 7 + step
        step -= 4
        if i + 1 >= n:
            return 21  # the return
        if step < 3:
            return 13 + step
        step -= 3
        if (i + 1) % 2 == 0:
            if step < 3:
                return 18 + step
            step -= 3
        i += 1


def zigzag_steps(n: int) -> int:
    return 2 + sum(4 + 3 + (3 if (i + 1) % 2 == 0 else 0) for i in range(n - 1)) + 4 + 1


@pytest.mark.parametrize("budget", [*range(1, 40), 1000, 16_385, 40_000, 40_001, 40_002, 57_343, 99_999])
def test_max_steps_is_exact_whichever_way_loop_trips_go(budget: int) -> None:
    """Trips of unequal lengths, paid in advance at one price, still fault at the exact instruction."""
    n = 30_000
    program = Program(parse(ZIGZAG, "zigzag.sil"), NumpyBackend(), max_steps=budget)
    with pytest.raises(RunError) as e:
        program.run("@zigzag", n)
    span = e.value.diagnostics[0].span
    assert span is not None and span.source.line_col(span.start)[0] == zigzag_line(n, budget)
    assert program.steps == budget


@pytest.mark.parametrize("n", [1, 2, 3, 10, 5_000])
def test_counted_steps_are_exact_whichever_way_loop_trips_go(n: int) -> None:
    program = Program(parse(ZIGZAG, "zigzag.sil"), NumpyBackend(), count_steps=True)
    assert program.run("@zigzag", n) == max(n, 1)
    assert program.steps == zigzag_steps(n)
    bounded = Program(parse(ZIGZAG, "zigzag.sil"), NumpyBackend(), max_steps=zigzag_steps(n))
    assert bounded.run("@zigzag", n) == max(n, 1)
