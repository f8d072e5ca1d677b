"""Activity analysis on small functions: varied, useful, active; what stops it; fixed points."""

from __future__ import annotations

from analysis.activity import Activity, Config, analyze_activity, differentiation_requests
from sil import parse, verify_module
from sil.ir import Module, Value


def activities(module: Module, fn: str, config: Config) -> dict[str, Activity]:
    function = module.functions[fn]
    info = analyze_activity(module, function, config)
    named: dict[str, Activity] = {}
    for v in info.values():
        assert v.name is not None, "the tests name every value"
        named[v.name] = info.activity(v)
    return named


def parsed(text: str) -> Module:
    module = parse(text, "t.sil")
    assert verify_module(module) == []
    return module


LOOP = """\
sil @f : $@convention(thin) (Double, Double, Int) -> Double {
bb0(%x : $Double, %y : $Double, %n : $Int):
  %zero = integer_literal $Int, 0
  br bb1(%zero : $Int, %y : $Double, %y : $Double)

bb1(%i : $Int, %acc : $Double, %late : $Double):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3

bb2:
  %next = builtin "fmul"(%late : $Double, %x : $Double) : $Double
  %one = integer_literal $Int, 1
  %i2 = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%i2 : $Int, %next : $Double, %acc : $Double)

bb3:
  return %acc : $Double
}
"""


def test_activity_reaches_around_a_loop_only_at_the_fixed_point() -> None:
    """%x reaches %acc only on the second trip (through %late): one pass would miss it."""
    a = activities(parsed(LOOP), "f", Config(0, (0,)))
    assert a["x"] is Activity.ACTIVE
    assert a["acc"] is Activity.ACTIVE and a["late"] is Activity.ACTIVE and a["next"] is Activity.ACTIVE
    assert a["i"] is Activity.NONE and a["n"] is Activity.NONE and a["more"] is Activity.NONE


def test_with_respect_to_another_parameter() -> None:
    a = activities(parsed(LOOP), "f", Config(0, (1,)))
    assert a["y"] is Activity.ACTIVE
    assert a["x"] is Activity.USEFUL  # it multiplies the result, but is not differentiated


DEAD_AND_CONSTANT = """\
sil @g : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %c = float_literal $Float, 2.0
  %dead = builtin "exp"(%x : $Float) : $Float
  %unused_constant = builtin "exp"(%c : $Float) : $Float
  %r = builtin "fmul"(%x : $Float, %c : $Float) : $Float
  return %r : $Float
}
"""


def test_the_four_labels() -> None:
    a = activities(parsed(DEAD_AND_CONSTANT), "g", Config(0, (0,)))
    assert (a["r"], a["dead"], a["c"], a["unused_constant"]) == (
        Activity.ACTIVE,
        Activity.VARIED,
        Activity.USEFUL,
        Activity.NONE,
    )


def test_requests_come_from_attributes_and_instructions() -> None:
    text = """\
sil [differentiable source 0 wrt 0] @a : $@convention(thin) (Float, Float) -> Float {
bb0(%x : $Float, %y : $Float):
  return %x : $Float
}

sil @b : $@convention(thin) (Float, Float) -> Float {
bb0(%x : $Float, %y : $Float):
  return %y : $Float
}

sil @user : $@convention(thin) () -> () {
bb0:
  %b = function_ref @b : $@convention(thin) (Float, Float) -> Float
  %g = gradient [wrt 1] %b : $@convention(thin) (Float, Float) -> Float
  %a = function_ref @a : $@convention(thin) (Float, Float) -> Float
  %d = differentiable_function [parameters 0, 1] %a : $@convention(thin) (Float, Float) -> Float
  %v = tuple ()
  return %v : $()
}
"""
    requests = differentiation_requests(parsed(text))
    assert requests == {"a": [Config(0, (0,)), Config(0, (0, 1))], "b": [Config(0, (1,))]}


def test_values_lists_arguments_and_results_in_order() -> None:
    module = parsed(DEAD_AND_CONSTANT)
    info = analyze_activity(module, module.functions["g"], Config(0, (0,)))
    names = [v.name for v in info.values()]
    assert names == ["x", "c", "dead", "unused_constant", "r"]
    assert all(isinstance(v, Value) for v in info.values())


CALLS = """\
sil @t : $@convention(thin) (Double) -> (Double, Int, Double) {
bb0(%x : $Double):
  %n = integer_literal $Int, 1
  %r = tuple (%x : $Double, %n : $Int, %x : $Double)
  return %r : $(Double, Int, Double)
}

sil @g : $@convention(thin) (Double) -> (Double, Double, Double) {
bb0(%x : $Double):
  %t = function_ref @t : $@convention(thin) (Double) -> (Double, Int, Double)
  %extracted = apply %t(%x) : $@convention(thin) (Double) -> (Double, Int, Double)
  %e2 = tuple_extract %extracted : $(Double, Int, Double), 2
  %destructured = apply %t(%x) : $@convention(thin) (Double) -> (Double, Int, Double)
  (%d0, %d1, %d2) = destructure_tuple %destructured : $(Double, Int, Double)
  %whole = apply %t(%x) : $@convention(thin) (Double) -> (Double, Int, Double)
  %w = tuple (%whole : $(Double, Int, Double), %x : $Double)
  %w0 = tuple_extract %w : $((Double, Int, Double), Double), 0
  %w00 = tuple_extract %w0 : $(Double, Int, Double), 0
  %int_only = apply %t(%x) : $@convention(thin) (Double) -> (Double, Int, Double)
  %i1 = tuple_extract %int_only : $(Double, Int, Double), 1
  %f1 = builtin "sitofp"(%i1 : $Int) : $Double
  %s = builtin "fadd"(%d0 : $Double, %f1 : $Double) : $Double
  %r = tuple (%e2 : $Double, %s : $Double, %w00 : $Double)
  return %r : $(Double, Double, Double)
}

sil @returns_it : $@convention(thin) (Double) -> (Double, Int, Double) {
bb0(%x : $Double):
  %t = function_ref @t : $@convention(thin) (Double) -> (Double, Int, Double)
  %r = apply %t(%x) : $@convention(thin) (Double) -> (Double, Int, Double)
  return %r : $(Double, Int, Double)
}
"""


def test_a_call_with_several_results_is_differentiated_for_the_results_used() -> None:
    """Those taken out active (not the Int, nor %d2, unused); all of differentiable type where the
    tuple is used whole; the caller's sources where it is returned; none where only an Int is."""
    module = parsed(CALLS)
    info = analyze_activity(module, module.functions["g"], Config((0, 1, 2), (0,)))
    calls = {v.name: info.active_elements(v) for v in info.values() if v.name is not None}
    assert calls["extracted"] == (2,)
    assert calls["destructured"] == (0,)
    assert calls["whole"] == (0, 2)
    assert calls["int_only"] == ()
    assert (calls["s"], calls["d1"], calls["d2"]) == ((0,), (), ())  # a single result; inactive ones
    returns_it = module.functions["returns_it"]
    for sources in [(0,), (2,), (0, 2)]:
        info = analyze_activity(module, returns_it, Config(sources, (0,)))
        (call,) = [v for v in info.values() if v.name == "r"]
        assert info.active_elements(call) == sources
