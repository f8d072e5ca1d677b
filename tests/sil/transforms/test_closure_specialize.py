"""-closure-specialize: what becomes a direct call, which copies are made, and that they stay few
(behaviour: the preservation harness and golden/opt/closure-specialize)."""

from __future__ import annotations

from sil import parse, print_module, verify_module
from sil.passes import PassContext
from sil.transforms.canonicalize import Canonicalize
from sil.transforms.closure_specialize import MAX_DEPTH, SPEC_MARK, specialize_closures
from sil.transforms.dead_function_elim import erase_dead_functions
from tests.sil.transforms.preservation import check_preserves

SCALE = """
sil @scale : $@convention(thin) (Float, Float) -> Float {
bb0(%v : $Float, %k : $Float):
  %r = builtin "fmul"(%v : $Float, %k : $Float) : $Float
  return %r : $Float
}
"""

TWICE = """
sil @twice : $@convention(thin) (@callee_guaranteed (Float) -> Float, Float) -> Float {
bb0(%f : $@callee_guaranteed (Float) -> Float, %x : $Float):
  %y = apply %f(%x) : $@callee_guaranteed (Float) -> Float
  %z = apply %f(%y) : $@callee_guaranteed (Float) -> Float
  return %z : $Float
}
"""

# @nest calls itself with a closure of @wrap that binds the closure it was given: each copy for a
# closure of @wrap binds a closure of @wrap again, so without a bound the copies would never end.
WRAPPING_RECURSION = (
    SCALE
    + """
sil @wrap : $@convention(thin) (Float, @callee_guaranteed (Float) -> Float) -> Float {
bb0(%x : $Float, %c : $@callee_guaranteed (Float) -> Float):
  %y = apply %c(%x) : $@callee_guaranteed (Float) -> Float
  %one = float_literal $Float, 1.0
  %r = builtin "fadd"(%y : $Float, %one : $Float) : $Float
  return %r : $Float
}

sil @nest : $@convention(thin) (Int, @callee_guaranteed (Float) -> Float, Float) -> Float {
bb0(%n : $Int, %c : $@callee_guaranteed (Float) -> Float, %x : $Float):
  %y = apply %c(%x) : $@callee_guaranteed (Float) -> Float
  %zero = integer_literal $Int, 0
  %done = builtin "cmp_sle"(%n : $Int, %zero : $Int) : $Bool
  cond_br %done, bb1, bb2
bb1:
  return %y : $Float
bb2:
  %w = function_ref @wrap : $@convention(thin) (Float, @callee_guaranteed (Float) -> Float) -> Float
  %c2 = partial_apply [callee_guaranteed] %w(%c) : $WRAP
  %one = integer_literal $Int, 1
  %m = builtin "sub"(%n : $Int, %one : $Int) : $Int
  %self = function_ref @nest : $NEST
  %r = apply %self(%m, %c2, %y) : $NEST
  return %r : $Float
}

sil @main : $@convention(thin) (Int, Float, Float) -> Float {
bb0(%n : $Int, %x : $Float, %k : $Float):
  %s = function_ref @scale : $@convention(thin) (Float, Float) -> Float
  %c = partial_apply [callee_guaranteed] %s(%k) : $@convention(thin) (Float, Float) -> Float
  %nest = function_ref @nest : $NEST
  %r = apply %nest(%n, %c, %x) : $NEST
  return %r : $Float
}
""".replace("$WRAP", "$@convention(thin) (Float, @callee_guaranteed (Float) -> Float) -> Float").replace(
        "$NEST", "$@convention(thin) (Int, @callee_guaranteed (Float) -> Float, Float) -> Float"
    )
)


def _copies(text: str) -> list[str]:
    return [name for name in parse(text).functions if SPEC_MARK in name]


def test_a_recursion_that_wraps_its_closure_makes_a_bounded_number_of_copies() -> None:
    module = parse(WRAPPING_RECURSION)
    assert specialize_closures(module) > 0
    assert verify_module(module) == []
    text = print_module(module)
    copies = _copies(text)
    assert copies and all(name.count(SPEC_MARK) <= MAX_DEPTH for name in copies)
    assert any(name.count(SPEC_MARK) == MAX_DEPTH for name in copies)  # the bound is what stopped it
    assert specialize_closures(module) == 0  # a fixed point: the copies are reused, none is added
    assert print_module(module) == text
    report = check_preserves(WRAPPING_RECURSION, ("closure-specialize",))
    assert report.calls > 0


def test_one_copy_serves_every_call_with_the_same_callee_and_is_reused_by_a_later_run() -> None:
    caller = """
sil @main : $@convention(thin) (Float, Float) -> Float {
bb0(%x : $Float, %k : $Float):
  %s = function_ref @scale : $@convention(thin) (Float, Float) -> Float
  %t = function_ref @twice : $@convention(thin) (@callee_guaranteed (Float) -> Float, Float) -> Float
  %c = partial_apply [callee_guaranteed] %s(%k) : $@convention(thin) (Float, Float) -> Float
  %a = apply %t(%c, %x) : $@convention(thin) (@callee_guaranteed (Float) -> Float, Float) -> Float
  %d = partial_apply [callee_guaranteed] %s(%a) : $@convention(thin) (Float, Float) -> Float
  %b = apply %t(%d, %x) : $@convention(thin) (@callee_guaranteed (Float) -> Float, Float) -> Float
  return %b : $Float
}
"""
    module = parse(SCALE + TWICE + caller)
    assert specialize_closures(module) == 4  # the two calls, and the copy's two applies of the closure
    assert _copies(print_module(module)) == ["AD__twice__closure_spec_0_scale"]
    assert specialize_closures(module) == 0
    # A later run (the next round of -O) finds the copy by its name instead of making another.
    later = parse(print_module(module) + caller.replace("@main", "@main2"))
    assert specialize_closures(later) == 2
    assert _copies(print_module(later)) == ["AD__twice__closure_spec_0_scale"]
    assert verify_module(later) == []


def test_a_function_of_the_copy_s_name_but_another_type_is_not_taken_for_it() -> None:
    squatter = """
sil @AD__twice__closure_spec_0_scale : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  return %x : $Float
}

sil @main : $@convention(thin) (Float, Float) -> Float {
bb0(%x : $Float, %k : $Float):
  %s = function_ref @scale : $@convention(thin) (Float, Float) -> Float
  %t = function_ref @twice : $@convention(thin) (@callee_guaranteed (Float) -> Float, Float) -> Float
  %c = partial_apply [callee_guaranteed] %s(%k) : $@convention(thin) (Float, Float) -> Float
  %a = apply %t(%c, %x) : $@convention(thin) (@callee_guaranteed (Float) -> Float, Float) -> Float
  return %a : $Float
}
"""
    module = parse(SCALE + TWICE + squatter)
    before = print_module(module)
    assert specialize_closures(module) == 0
    assert print_module(module) == before


def test_a_copy_nothing_calls_any_more_goes_with_dead_function_elim() -> None:
    caller = """
sil @main : $@convention(thin) (Float, Float) -> Float {
bb0(%x : $Float, %k : $Float):
  %no = integer_literal $Bool, 0
  cond_br %no, bb1, bb2
bb1:
  %s = function_ref @scale : $@convention(thin) (Float, Float) -> Float
  %t = function_ref @twice : $@convention(thin) (@callee_guaranteed (Float) -> Float, Float) -> Float
  %c = partial_apply [callee_guaranteed] %s(%k) : $@convention(thin) (Float, Float) -> Float
  %a = apply %t(%c, %x) : $@convention(thin) (@callee_guaranteed (Float) -> Float, Float) -> Float
  return %a : $Float
bb2:
  return %x : $Float
}
"""
    module = parse(SCALE + TWICE + caller)
    specialize_closures(module)
    assert "AD__twice__closure_spec_0_scale" in module.functions
    assert erase_dead_functions(module) == []  # @main still calls it
    Canonicalize().run(module, PassContext())  # the branch that called it goes
    assert erase_dead_functions(module) == ["AD__twice__closure_spec_0_scale"]
    assert list(module.functions) == ["scale", "twice", "main"]  # @twice is the user's: it stays
    assert verify_module(module) == []


def test_block_arguments_that_pass_each_other_around_a_loop_end_the_search() -> None:
    """%a and %b swap on every trip: each is the closure only if the other is; the search stops at
    the cycle and leaves the apply as it was (a conservative answer, never a wrong one)."""
    text = (
        SCALE
        + """
sil @swap : $@convention(thin) (Float, Float, Bool) -> Float {
bb0(%x : $Float, %k : $Float, %go : $Bool):
  %s = function_ref @scale : $@convention(thin) (Float, Float) -> Float
  %c = partial_apply [callee_guaranteed] %s(%k) : $@convention(thin) (Float, Float) -> Float
  br bb1(%c : $@callee_guaranteed (Float) -> Float, %c : $@callee_guaranteed (Float) -> Float)
bb1(%a : $@callee_guaranteed (Float) -> Float, %b : $@callee_guaranteed (Float) -> Float):
  %y = apply %a(%x) : $@callee_guaranteed (Float) -> Float
  cond_br %go, bb1(%b : $@callee_guaranteed (Float) -> Float, %a : $@callee_guaranteed (Float) -> Float), bb2
bb2:
  return %y : $Float
}
"""
    )
    module = parse(text)
    assert specialize_closures(module) == 0
    assert print_module(module) == print_module(parse(text))
