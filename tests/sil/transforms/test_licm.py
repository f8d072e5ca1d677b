"""-licm: what moves, what stays, and where to (behaviour: the preservation harness)."""

from __future__ import annotations

from sil import parse, print_module, verify_module
from sil.transforms.licm import hoist_loop_invariants

LOOP = """
sil @f : $@convention(thin) (Double, Int) -> Double {{
bb0(%a : $Double, %n : $Int):
  %zero = integer_literal $Int, 0
  {entry_end}

bbx:
  br bb1(%zero : $Int)

bb1(%i : $Int):
  %inv = builtin "fmul"(%a : $Double, %a : $Double) : $Double
  %one = integer_literal $Int, 1
  %i1 = builtin "add"(%i : $Int, %one : $Int) : $Int
  %more = builtin "cmp_slt"(%i1 : $Int, %n : $Int) : $Bool
  cond_br %more, bb1(%i1 : $Int), bb2

bb2:
  return %a : $Double
}}
"""


def test_invariants_move_to_the_preheader_before_its_branch() -> None:
    module = parse(LOOP.format(entry_end="br bbx"))
    fn = module.functions["f"]
    assert hoist_loop_invariants(fn) == 2  # %inv and %one; %i1 depends on the trip
    preheader = fn.blocks[1]
    assert [i.results[0].name for i in preheader.instructions[:-1]] == ["inv", "one"]
    assert verify_module(module) == []
    assert hoist_loop_invariants(fn) == 0


def test_a_loop_entered_from_two_blocks_outside_has_no_preheader_and_keeps_its_code() -> None:
    text = LOOP.format(entry_end="%c = integer_literal $Bool, 1\n  cond_br %c, bbx, bb1(%zero : $Int)")
    module = parse(text)
    before = print_module(module)
    assert hoist_loop_invariants(module.functions["f"]) == 0
    assert print_module(module) == before
