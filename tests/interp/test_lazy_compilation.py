"""Functions are compiled on their first call: a module that names a declaration without a body
(SIL-SPEC §3's ``sil @sin``) runs as long as it does not call it, and a call of one faults at the
``apply`` that reached it. Compiling later costs the calls nothing: the first call rebinds every
caller to the compiled function."""

from __future__ import annotations

from typing import Any

import pytest

from interp import Program, RunError
from interp.compiler import _FunctionCode
from sil import parse
from tests.interp.support import BACKEND, FILENAME, assert_located, fault, program, run

GUARDED = """\
sil @sin : $@convention(thin) (Double) -> Double

sil @twice : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %r = builtin "fadd"(%x : $Double, %x : $Double) : $Double
  return %r : $Double
}

// Calls @sin only when %b is true; @twice otherwise.
sil @f : $@convention(thin) (Double, Bool) -> Double {
bb0(%x : $Double, %b : $Bool):
  %sin = function_ref @sin : $@convention(thin) (Double) -> Double
  %twice = function_ref @twice : $@convention(thin) (Double) -> Double
  cond_br %b, bb1, bb2

bb1:
  %s = apply %sin(%x) : $@convention(thin) (Double) -> Double
  return %s : $Double

bb2:
  %t = apply %twice(%x) : $@convention(thin) (Double) -> Double
  return %t : $Double
}

// Passes @sin on as a value when %b is true, and @twice otherwise, to @call.
sil @g : $@convention(thin) (Double, Bool) -> Double {
bb0(%x : $Double, %b : $Bool):
  cond_br %b, bb1, bb2

bb1:
  %sin = function_ref @sin : $@convention(thin) (Double) -> Double
  %call = function_ref @call : $@convention(thin) (@convention(thin) (Double) -> Double, Double) -> Double
  %s = apply %call(%sin, %x) : $@convention(thin) (@convention(thin) (Double) -> Double, Double) -> Double
  return %s : $Double

bb2:
  %twice = function_ref @twice : $@convention(thin) (Double) -> Double
  %call2 = function_ref @call : $@convention(thin) (@convention(thin) (Double) -> Double, Double) -> Double
  %t = apply %call2(%twice, %x) : $@convention(thin) (@convention(thin) (Double) -> Double, Double) -> Double
  return %t : $Double
}

sil @call : $@convention(thin) (@convention(thin) (Double) -> Double, Double) -> Double {
bb0(%h : $@convention(thin) (Double) -> Double, %x : $Double):
  %r = apply %h(%x) : $@convention(thin) (Double) -> Double
  return %r : $Double
}
"""


def fresh_program() -> Program:
    """A Program of its own (``support.program`` shares one per text), to look at what it compiled."""
    return Program(parse(GUARDED, FILENAME), BACKEND)


def test_a_declaration_named_on_a_branch_not_taken_does_not_stop_the_run() -> None:
    assert run(GUARDED, 1.5, False, fn="@f") == 3.0
    assert run(GUARDED, 1.5, False, fn="@g") == 3.0


def test_calling_a_declaration_faults_at_the_apply_that_reached_it() -> None:
    diagnostic = fault(GUARDED, 1.5, True, fn="@f")
    assert_located(
        diagnostic, GUARDED, "%s = apply %sin", "cannot run '@sin': it is a declaration without a body"
    )


def test_calling_a_declaration_passed_as_a_value_faults_where_it_is_called() -> None:
    diagnostic = fault(GUARDED, 1.5, True, fn="@g")
    assert_located(
        diagnostic, GUARDED, "%r = apply %h", "cannot run '@sin': it is a declaration without a body"
    )
    assert [n.line() for n in diagnostic.notes] == [
        GUARDED.splitlines().index(next(line for line in GUARDED.splitlines() if "%s = apply %call" in line))
        + 1
    ]


def test_running_a_declaration_is_located_at_it() -> None:
    with pytest.raises(RunError) as info:
        program(GUARDED).run("@sin", 1.0)
    (diagnostic,) = info.value.diagnostics
    assert_located(diagnostic, GUARDED, "sil @sin", "cannot run '@sin': it is a declaration without a body")


def test_a_declaration_returned_to_python_faults_when_called() -> None:
    text = (
        GUARDED
        + """
sil @get_sin : $@convention(thin) () -> @convention(thin) (Double) -> Double {
bb0:
  %sin = function_ref @sin : $@convention(thin) (Double) -> Double
  return %sin : $@convention(thin) (Double) -> Double
}
"""
    )
    sin = program(text).run("@get_sin")
    with pytest.raises(RunError) as info:
        sin(1.0)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == "cannot run '@sin': it is a declaration without a body"
    assert diagnostic.span is None  # called from Python: no apply reached it
    assert diagnostic.render().startswith("error: ")
    assert FILENAME not in diagnostic.render()


def test_functions_are_compiled_when_first_called_and_once(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    build = _FunctionCode.build

    def counting(self: _FunctionCode) -> Any:
        built.append(self.fn.name)
        return build(self)

    monkeypatch.setattr(_FunctionCode, "build", counting)
    prog = fresh_program()
    assert prog.run("@f", 2.0, False) == 4.0
    assert built == ["f", "twice"]
    for x in (1.0, 2.0, 3.0):
        assert prog.run("@f", x, False) == 2 * x
    assert prog.run("@g", 2.0, False) == 4.0
    assert built == ["f", "twice", "g", "call"]  # @g's values are compiled with it
    compiler = prog.compiler
    assert not compiler._waiting  # every caller of a compiled function calls it directly


def test_a_first_call_rebinds_its_callers_to_the_compiled_function() -> None:
    prog = fresh_program()
    prog.run("@f", 2.0, False)
    f = prog.compiler.compiled["f"]
    cells = {c.cell_contents for c in f.__closure__ or () if callable(c.cell_contents)}
    assert prog.compiler.compiled["twice"] in cells
    assert prog.compiler._stand_ins["twice"] not in cells


def test_a_first_call_at_the_depth_limit_has_room_to_compile() -> None:
    """Each function's first call runs under its stand-in, which compiles it there: at the bottom
    of a chain as deep as --max-depth allows, the compiler recurses through 40 nested blocks."""
    n = 1000
    text = "".join(
        f"""
sil @c{i} : $@convention(thin) (Double) -> Double {{
bb0(%x : $Double):
  %f = function_ref @c{i + 1} : $@convention(thin) (Double) -> Double
  %y = apply %f(%x) : $@convention(thin) (Double) -> Double
  return %y : $Double
}}
"""
        for i in range(n)
    )
    lines = [f"sil @c{n} : $@convention(thin) (Double) -> Double {{", "bb0(%x : $Double):"]
    lines += ["  %t = integer_literal $Bool, 1", "  cond_br %t, bb1, bbe0"]
    for j in range(1, 60):  # single-entry blocks, which the compiler nests (up to 40 deep)
        lines += [f"bbe{j - 1}:", "  return %x : $Double", f"bb{j}:", f"  cond_br %t, bb{j + 1}, bbe{j}"]
    lines += ["bbe59:", "  return %x : $Double", "bb60:", "  return %x : $Double", "}"]
    text += "\n".join(lines) + "\n"
    assert Program(parse(text, FILENAME), BACKEND, max_depth=n + 1).run("@c0", 2.5) == 2.5
