"""-sroa: aggregates that are only taken apart become their fields, in block arguments and in the
parameters of synthesized functions; what a split cannot remove stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from interp import Program
from sil import parse, print_module
from sil.ir import Module
from sil.passes import PassManager, registered_passes
from sil.transforms.sroa import sroa
from sil.types import FLOAT, INT, TupleType
from tests.sil.transforms.preservation import exploded, outcome

ROOT = Path(__file__).resolve().parents[3]
# The straight-line derivatives: each pullback and differential takes its record whole.
RECORDS = sorted(
    p
    for p in (ROOT / "golden" / "differentiation").glob("*.expected")
    if "\nstruct _AD__" in "\n" + p.read_text(encoding="utf-8")
)


def _run(text: str, *passes: str) -> Module:
    module = parse(text)
    registry = registered_passes()
    PassManager([registry[p]() for p in passes], verify_each=True).run(module)
    return module


def _aggregate_arguments(module: Module) -> list[str]:
    return [
        f"@{fn.name} {arg.type}"
        for fn in module.functions.values()
        for block in fn.blocks
        for arg in block.args
        if isinstance(arg.type, TupleType) or str(arg.type).startswith("_AD__")
    ]


def test_records_exist_to_be_removed() -> None:
    assert len(RECORDS) >= 8


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_straight_line_derivatives_lose_every_record(path: Path) -> None:
    """Item 3's first step: after -sroa, -canonicalize and -dead-function-elim, no record struct
    and no aggregate parameter is left in a straight-line derivative."""
    module = _run(path.read_text(encoding="utf-8"), "sroa", "canonicalize", "dead-function-elim")
    assert not [name for name in module.types if name.startswith("_AD__")]
    assert not [a for a in _aggregate_arguments(module) if "_AD__" in a]


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_a_second_run_changes_nothing(path: Path) -> None:
    module = _run(path.read_text(encoding="utf-8"), "sroa")
    printed = print_module(module)
    assert sroa(module) == 0
    assert print_module(module) == printed


CHAIN = """
sil @chain : $@convention(thin) (Float, Bool) -> Float {
bb0(%x : $Float, %c : $Bool):
  %t = tuple (%x : $Float, %x : $Float)
  br bb1(%t : $(Float, Float))
bb1(%a : $(Float, Float)):
  cond_br %c, bb2(%a : $(Float, Float)), bb3
bb2(%b : $(Float, Float)):
  (%p, %q) = destructure_tuple %b : $(Float, Float)
  %r = builtin "fsub"(%p : $Float, %q : $Float) : $Float
  return %r : $Float
bb3:
  %s = tuple_extract %a : $(Float, Float), 1
  return %s : $Float
}
"""


def test_a_split_lets_the_predecessors_argument_split() -> None:
    """bb1 passes its tuple on whole to bb2; once bb2's splits, bb1's is only taken apart (by the
    destructure before the branch), so it splits too, and the tuple is gone."""
    module = _run(CHAIN, "sroa")
    assert _aggregate_arguments(module) == []
    assert "destructure_tuple" not in print_module(module)
    before = Program(parse(CHAIN))
    after = Program(module)
    for args in ([1.5, True], [1.5, False], [-0.0, True]):
        assert outcome(after, "chain", args) == outcome(before, "chain", args)


RECURSIVE = """
struct R {
  var a: Float
  var n: Int
}

sil @main : $@convention(thin) (Float, Int) -> Float {
bb0(%x : $Float, %n : $Int):
  %r = struct $R (%x : $Float, %n : $Int)
  %f = function_ref @AD__down : $@convention(thin) (R) -> Float
  %y = apply %f(%r) : $@convention(thin) (R) -> Float
  return %y : $Float
}

sil @AD__down : $@convention(thin) (R) -> Float {
bb0(%r : $R):
  (%a, %n) = destructure_struct %r : $R
  %zero = integer_literal $Int, 0
  %done = builtin "cmp_sle"(%n : $Int, %zero : $Int) : $Bool
  cond_br %done, bb1, bb2
bb1:
  return %a : $Float
bb2:
  %one = integer_literal $Int, 1
  %m = builtin "sub"(%n : $Int, %one : $Int) : $Int
  %twice = builtin "fadd"(%a : $Float, %a : $Float) : $Float
  %next = struct $R (%twice : $Float, %m : $Int)
  %f = function_ref @AD__down : $@convention(thin) (R) -> Float
  %y = apply %f(%next) : $@convention(thin) (R) -> Float
  return %y : $Float
}
"""


def test_a_recursive_synthesized_function_passes_fields_to_itself() -> None:
    module = _run(RECURSIVE, "sroa")
    assert str(module.functions["AD__down"].type) == "@convention(thin) (Float, Int) -> Float"
    assert "struct $R" not in print_module(module)
    before, after = Program(parse(RECURSIVE)), Program(module)
    for args in ([1.25, 3], [-2.0, 0]):
        assert outcome(after, "main", args) == outcome(before, "main", args)


def test_user_functions_keep_their_signatures() -> None:
    text = RECURSIVE.replace("AD__down", "down")
    module = _run(text, "sroa")
    assert print_module(module) == print_module(parse(text))


def test_the_harness_gives_exploded_parameters_their_fields() -> None:
    """The preservation harness calls a function whose parameters -sroa exploded with the fields
    of the arguments drawn for its old signature, nested and empty aggregates included."""
    module = parse(RECURSIVE + "struct E {\n}\n")
    fn = module.functions["AD__down"]
    r, e = module.types["R"].type, module.types["E"].type
    pair = TupleType((r, FLOAT))
    args = [((1.0, 2), 3.0), (), 4.0]
    old = [pair, e, FLOAT]

    assert exploded(args, old, [FLOAT, INT, FLOAT, FLOAT], fn, module) == [1.0, 2, 3.0, 4.0]
    assert exploded(args, old, [r, FLOAT, FLOAT], fn, module) == [(1.0, 2), 3.0, 4.0]
    assert exploded(args, old, old, fn, module) == args
