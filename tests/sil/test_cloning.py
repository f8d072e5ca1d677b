"""``sil.cloning.clone_blocks``: a copy of a body, as a function of its own or inlined."""

from __future__ import annotations

import re

from sil import parse, print_module
from sil.builder import Builder
from sil.cloning import clone_blocks
from sil.instructions import ReturnInst
from sil.ir import Function
from sil.verifier import verify

LOOP = """\
enum E {
  case a(Float)
  case b
}

sil @f : $@convention(thin) (Float, Int, E) -> Float {
bb0(%x : $Float, %n : $Int, %e : $E):
  %zero = integer_literal $Int, 0
  br bb1(%zero : $Int, %x : $Float)
bb1(%i : $Int, %acc : $Float):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3
bb2:
  %sq = builtin "fmul"(%acc : $Float, %acc : $Float) : $Float
  %one = integer_literal $Int, 1
  %i1 = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%i1 : $Int, %sq : $Float)
bb3:
  switch_enum %e : $E, case #E.a!enumelt: bb4, case #E.b!enumelt: bb5
bb4(%p : $Float):
  %s = builtin "fadd"(%p : $Float, %acc : $Float) : $Float
  return %s : $Float
bb5:
  return %acc : $Float
bb6:
  unreachable
}
"""


def test_a_specializing_copy_prints_as_the_original() -> None:
    module = parse(LOOP, "loop.sil")
    original = module.functions["f"]
    copy = module.add_function(Function("g", original.type))
    body = clone_blocks(original, copy)
    verify(module)
    assert len(body.blocks) == 6  # bb6, which nothing reaches, is not copied
    bodies = dict(re.findall(r"^sil @(\w+) [^{]*\{\n(.*?)^\}", print_module(module), re.M | re.S))
    assert bodies["g"] == bodies["f"].replace("bb6:\n  unreachable\n", "")


def test_an_inlined_copy_takes_the_entry_values_instead_of_arguments() -> None:
    module = parse(LOOP, "loop.sil")
    original = module.functions["f"]
    host = module.add_function(Function("h", original.type))
    entry = host.add_block("bb0")
    params = [entry.add_argument(t) for t in original.type.params]
    body = clone_blocks(original, host, params)
    inlined_entry = body.blocks[original.entry]
    assert inlined_entry.args == []
    returns = [b.terminator for b in body.blocks.values() if isinstance(b.terminator, ReturnInst)]
    assert len(returns) == 2
    assert body.values[original.entry.args[0]] is params[0]
    Builder.at_end(entry, module).br(inlined_entry)
    verify(module)
