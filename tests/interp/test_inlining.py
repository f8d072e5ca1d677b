"""Calls written inline: which ones, what they no longer build, and that an inlined run computes,
faults and reports exactly what a run making every call does (a counted run compiles every call
as a call, so it is the reference)."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import pytest

from accel import select_backend
from interp import Program, RunError
from interp.inlining import MAX_INLINE_HEIGHT, Inliner
from sil import Module, parse, verify_module
from sil.instructions import PartialApplyInst, StructInst, TupleInst
from sil.passes import PassManager, registered_passes

BACKEND = select_backend("numpy")
D = "$@convention(thin) (Double) -> Double"


def module_of(text: str) -> Module:
    module = parse(text, "test.sil")
    assert verify_module(module) == []
    return module


def inlined(module: Module, fn: str) -> set[str]:
    program = Program(module, BACKEND)
    assert program.compiler.inliner is not None
    return {f.name for f in program.compiler.inliner.plan(module.functions[fn]).inlined.values()}


def outcome(program: Program, fn: str, *args: Any) -> Any:
    """The result, or the rendered diagnostic of the fault."""
    try:
        return program.run(fn, *args)
    except RunError as e:
        return [d.render() for d in e.diagnostics]


def assert_as_called(module: Module, fn: str, *args: Any, max_depth: int = 10_000) -> Any:
    """The run with calls inline gives what the run making every call gives, faults included."""
    inline = outcome(Program(module, BACKEND, max_depth=max_depth), fn, *args)
    called = outcome(Program(module, BACKEND, max_depth=max_depth, count_steps=True), fn, *args)
    assert inline == called
    return inline


def differentiated(text: str) -> Module:
    module = module_of(text)
    available = registered_passes()
    PassManager([available["differentiation"](), available["lower-gradient"]()]).run(module)
    assert verify_module(module) == []
    return module


GRADIENT = """
sil @f : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %y : $Double):
  %s = builtin "sin"(%x : $Double) : $Double
  %m = builtin "fmul"(%s : $Double, %y : $Double) : $Double
  %p = builtin "fadd"(%m : $Double, %x : $Double) : $Double
  return %p : $Double
}

sil @loop : $@convention(thin) (Double, Double, Int) -> (Double, Double) {
bb0(%x0 : $Double, %y0 : $Double, %n : $Int):
  %f = function_ref @f : $@convention(thin) (Double, Double) -> Double
  %g = gradient [wrt 0, 1] %f : $@convention(thin) (Double, Double) -> Double
  %zero = integer_literal $Int, 0
  %one = integer_literal $Int, 1
  br bb1(%zero : $Int, %x0 : $Double, %y0 : $Double)
bb1(%i : $Int, %x : $Double, %y : $Double):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3
bb2:
  %r = apply %g(%x, %y) : $@convention(thin) (Double, Double) -> (Double, Double)
  (%gx, %gy) = destructure_tuple %r : $(Double, Double)
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%j : $Int, %gx : $Double, %gy : $Double)
bb3:
  %t = tuple (%x : $Double, %y : $Double)
  return %t : $(Double, Double)
}
"""


def test_a_gradient_runs_its_vjp_and_pullback_inline_without_a_record_or_a_closure() -> None:
    module = differentiated(GRADIENT)
    grad = "AD__f__grad_src_0_wrt_0_1"
    assert inlined(module, grad) == {"AD__f__vjp_src_0_wrt_0_1", "AD__f__pullback_src_0_wrt_0_1"}
    program = Program(module, BACKEND)
    assert program.compiler.inliner is not None
    plan = program.compiler.inliner.plan(module.functions[grad])
    built = [
        inst
        for f in plan.functions
        for inst in f.instructions()
        if isinstance(inst, (StructInst, TupleInst, PartialApplyInst)) and inst not in plan.folded
    ]
    # What is left to build is the gradient's own result: (dx, dy).
    assert [type(inst) for inst in built] == [TupleInst]
    # The gradient itself is written inline into the loop that calls it.
    assert grad in inlined(module, "loop")
    for n in (0, 1, 5):
        assert_as_called(module, "@loop", 0.5, 0.25, n)
    assert assert_as_called(module, f"@{grad}", 0.5, 0.25) == (
        0.25 * 0.8775825618903728 + 1.0,
        0.479425538604203,
    )


CHAIN = f"""
sil @leaf : {D} {{
bb0(%x : $Double):
  %i = builtin "fptosi"(%x : $Double) : $Int
  %d = builtin "sitofp"(%i : $Int) : $Double
  return %d : $Double
}}

sil @mid : {D} {{
bb0(%x : $Double):
  %l = function_ref @leaf : {D}
  %r = apply %l(%x) : {D}
  return %r : $Double
}}

sil @top : {D} {{
bb0(%x : $Double):
  %m = function_ref @mid : {D}
  %r = apply %m(%x) : {D}
  return %r : $Double
}}
"""


def test_nested_inline_calls_keep_the_depth_limit_of_each_call() -> None:
    module = module_of(CHAIN)
    assert inlined(module, "top") == {"mid", "leaf"}
    for depth in (1, 2, 3):
        result = assert_as_called(module, "@top", 2.5, max_depth=depth)
        assert result == 2.0 if depth == 3 else "recursion deeper than" in result[0]


def test_a_fault_in_inlined_code_has_its_called_from_notes() -> None:
    module = module_of(CHAIN)
    (rendered,) = assert_as_called(module, "@top", 1e300)
    assert "fptosi of 1e+300" in rendered
    assert "called from @mid" in rendered and "called from @top" in rendered


def test_inlining_stops_at_its_height() -> None:
    """l0 negates; each l<k> calls l<k-1>. A function is written inline with what it inlines, so
    l<k> holds l<k-1> ... l0 while that is at most MAX_INLINE_HEIGHT deep; above, it calls."""
    levels = MAX_INLINE_HEIGHT + 3
    text = f'sil @l0 : {D} {{\nbb0(%x : $Double):\n  %r = builtin "fneg"(%x : $Double) : $Double\n'
    text += "  return %r : $Double\n}\n"
    for k in range(1, levels):
        text += (
            f"sil @l{k} : {D} {{\nbb0(%x : $Double):\n  %f = function_ref @l{k - 1} : {D}\n"
            f"  %r = apply %f(%x) : {D}\n  return %r : $Double\n}}\n"
        )
    module = module_of(text)
    for k in range(1, levels):
        held = {f"l{j}" for j in range(k)} if k <= MAX_INLINE_HEIGHT else set()
        assert inlined(module, f"l{k}") == held, k
        assert assert_as_called(module, f"@l{k}", 1.5) == -1.5


def test_functions_named_twice_or_with_blocks_are_called() -> None:
    text = f"""
sil @twice : {D} {{
bb0(%x : $Double):
  %r = builtin "fneg"(%x : $Double) : $Double
  return %r : $Double
}}

sil @branchy : {D} {{
bb0(%x : $Double):
  br bb1
bb1:
  return %x : $Double
}}

sil @caller : {D} {{
bb0(%x : $Double):
  %a = function_ref @twice : {D}
  %b = function_ref @twice : {D}
  %c = function_ref @branchy : {D}
  %r = apply %a(%x) : {D}
  %s = apply %b(%r) : {D}
  %t = apply %c(%s) : {D}
  return %t : $Double
}}
"""
    module = module_of(text)
    assert inlined(module, "caller") == set()
    assert assert_as_called(module, "@caller", 1.5) == 1.5


CLOSURES = """
sil @scale : $@convention(thin) (Double, Double) -> Double {
bb0(%x : $Double, %k : $Double):
  %r = builtin "fmul"(%x : $Double, %k : $Double) : $Double
  return %r : $Double
}

sil @twice : $@convention(thin) (Double, Double) -> (Double, Double) {
bb0(%x : $Double, %k : $Double):
  %f = function_ref @scale : $@convention(thin) (Double, Double) -> Double
  %c = partial_apply [callee_guaranteed] %f(%k) : $@convention(thin) (Double, Double) -> Double
  %pair = tuple (%c : $@callee_guaranteed (Double) -> Double, %x : $Double)
  %c2 = tuple_extract %pair : $(@callee_guaranteed (Double) -> Double, Double), 0
  %a = apply %c2(%x) : $@callee_guaranteed (Double) -> Double
  %b = apply %c(%a) : $@callee_guaranteed (Double) -> Double
  %r = tuple (%a : $Double, %b : $Double)
  return %r : $(Double, Double)
}
"""


def test_a_closure_seen_through_a_tuple_is_inlined_once_and_called_after() -> None:
    module = module_of(CLOSURES)
    assert inlined(module, "twice") == {"scale"}
    assert assert_as_called(module, "@twice", 1.5, 3.0) == (4.5, 13.5)


def test_projections_of_a_tuple_built_from_loop_arguments_read_the_trip_that_built_it() -> None:
    text = """
sil @rotate : $@convention(thin) (Int, Int, Int) -> Int {
bb0(%a : $Int, %b : $Int, %n : $Int):
  %zero = integer_literal $Int, 0
  %one = integer_literal $Int, 1
  br bb1(%a : $Int, %b : $Int, %zero : $Int)
bb1(%x : $Int, %y : $Int, %i : $Int):
  %t = tuple (%x : $Int, %y : $Int)
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3
bb2:
  (%p, %q) = destructure_tuple %t : $(Int, Int)
  %s = builtin "add"(%p : $Int, %q : $Int) : $Int
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%q : $Int, %s : $Int, %j : $Int)
bb3:
  %r = tuple_extract %t : $(Int, Int), 1
  return %r : $Int
}
"""
    module = module_of(text)
    # Fibonacci: (0, 1) -> (1, 1) -> (1, 2) -> (2, 3) -> ...
    assert [assert_as_called(module, "@rotate", 0, 1, n) for n in range(8)] == [1, 1, 2, 3, 5, 8, 13, 21]


def test_code_the_sil_computes_for_nothing_still_runs() -> None:
    text = """
sil @f : $@convention(thin) (Int) -> Int {
bb0(%x : $Int):
  %zero = integer_literal $Int, 0
  %unused = builtin "sdiv"(%x : $Int, %zero : $Int) : $Int
  %t = tuple (%x : $Int, %x : $Int)
  return %x : $Int
}
"""
    module = module_of(text)
    program = Program(module, BACKEND)
    assert program.compiler.inliner is not None
    assert not program.compiler.inliner.plan(module.functions["f"]).folded
    (rendered,) = assert_as_called(module, "@f", 3)
    assert "integer division by zero" in rendered


def test_counted_runs_make_every_call() -> None:
    program = Program(module_of(CHAIN), BACKEND, count_steps=True)
    assert program.compiler.inliner is None
    assert program.run("@top", 2.5) == 2.0
    assert program.steps == 3 + 3 + 3


@pytest.mark.parametrize("fn", ["@leaf", "@mid", "@top"])
def test_every_function_still_runs_by_itself(fn: str) -> None:
    assert Program(module_of(CHAIN), BACKEND).run(fn, 7.75) == 7.0


def test_deciding_what_to_inline_does_not_recurse_along_a_call_chain() -> None:
    """10,000 functions each calling the next: the search for heights stops at the limit, so
    it needs a few Python frames, not one per function."""
    n = 10_000
    parts = [f'sil @l0 : {D} {{\nbb0(%x : $Double):\n  %r = builtin "fneg"(%x : $Double) : $Double\n']
    parts.append("  return %r : $Double\n}\n")
    for k in range(1, n):
        parts.append(
            f"sil @l{k} : {D} {{\nbb0(%x : $Double):\n  %f = function_ref @l{k - 1} : {D}\n"
            f"  %r = apply %f(%x) : {D}\n  return %r : $Double\n}}\n"
        )
    module = parse("".join(parts), "chain.sil")
    inliner = Inliner(module)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 60)
    try:
        plans = [inliner.plan(module.functions[f"l{k}"]) for k in (n - 1, 2)]
    finally:
        sys.setrecursionlimit(old)
    # l<n-1> calls l<n-2>, whose chain is deeper than the height: a call; l2 holds l1 and l0.
    assert [{f.name for f in p.inlined.values()} for p in plans] == [set(), {"l1", "l0"}]
