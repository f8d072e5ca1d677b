"""Control-flow facts: reverse postorder, predecessors, dominators, natural loops."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sil import parse, print_module
from sil.cfg import DominatorTree, Loop, natural_loops, predecessors, reverse_postorder
from sil.ir import Block, Function
from tests.sil.test_roundtrip_property import Gen

RETURN = "  %r = tuple ()\n  return %r : $()\n"


def function(body: str) -> Function:
    text = f"sil @f : $@convention(thin) (Bool) -> () {{\nbb0(%c : $Bool):\n{body}}}\n"
    return parse(text).functions["f"]


def blocks(fn: Function) -> dict[str, Block]:
    return {b.name: b for b in fn.blocks if b.name is not None}


def idoms(tree: DominatorTree) -> dict[str | None, str | None]:
    return {b.name: (p.name if p is not None else None) for b, p in tree.idom.items()}


DIAMOND = f"""\
  cond_br %c, bb1, bb2
bb1:
  br bb3
bb2:
  br bb3
bb3:
{RETURN}"""

LOOP = f"""\
  br bb1
bb1:
  cond_br %c, bb2, bb3
bb2:
  br bb1
bb3:
{RETURN}"""

# bb4 is unreachable, and branches into the reachable bb3.
UNREACHABLE = f"""\
  cond_br %c, bb1, bb3
bb1:
  br bb3
bb3:
{RETURN}bb4:
  br bb3
bb5:
  br bb4
"""

# Two entries into the cycle bb1 <-> bb2: neither dominates the other.
IRREDUCIBLE = f"""\
  cond_br %c, bb1, bb2
bb1:
  cond_br %c, bb2, bb3
bb2:
  cond_br %c, bb1, bb3
bb3:
{RETURN}"""


def test_diamond() -> None:
    fn = function(DIAMOND)
    b = blocks(fn)
    tree = DominatorTree(fn)
    assert idoms(tree) == {"bb0": None, "bb1": "bb0", "bb2": "bb0", "bb3": "bb0"}
    assert tree.dominates(b["bb0"], b["bb3"])
    assert not tree.dominates(b["bb1"], b["bb3"])
    assert not tree.dominates(b["bb2"], b["bb3"])
    assert not tree.dominates(b["bb3"], b["bb0"])
    assert all(tree.dominates(x, x) for x in fn.blocks)
    assert {k.name: sorted(str(c.name) for c in v) for k, v in tree.children.items()} == {
        "bb0": ["bb1", "bb2", "bb3"],
        "bb1": [],
        "bb2": [],
        "bb3": [],
    }


def test_diamond_order_and_predecessors() -> None:
    fn = function(DIAMOND)
    b = blocks(fn)
    order = [str(x.name) for x in reverse_postorder(fn)]
    assert order[0] == "bb0"
    assert order[-1] == "bb3"
    assert sorted(order) == ["bb0", "bb1", "bb2", "bb3"]
    preds = predecessors(fn)
    assert preds[b["bb0"]] == []
    assert preds[b["bb3"]] == [b["bb1"], b["bb2"]]


def test_loop() -> None:
    fn = function(LOOP)
    b = blocks(fn)
    tree = DominatorTree(fn)
    assert idoms(tree) == {"bb0": None, "bb1": "bb0", "bb2": "bb1", "bb3": "bb1"}
    assert tree.dominates(b["bb1"], b["bb2"])
    assert not tree.dominates(b["bb2"], b["bb1"])
    assert tree.dominates(b["bb0"], b["bb2"])
    assert predecessors(fn)[b["bb1"]] == [b["bb0"], b["bb2"]]
    order = reverse_postorder(fn)
    assert order.index(b["bb1"]) < order.index(b["bb2"])


def test_self_loop() -> None:
    fn = function(f"  br bb1\nbb1:\n  cond_br %c, bb1, bb2\nbb2:\n{RETURN}")
    tree = DominatorTree(fn)
    assert idoms(tree) == {"bb0": None, "bb1": "bb0", "bb2": "bb1"}


def test_unreachable_blocks() -> None:
    fn = function(UNREACHABLE)
    b = blocks(fn)
    tree = DominatorTree(fn)
    assert [x.name for x in tree.order] == [x.name for x in reverse_postorder(fn)]
    assert {x.name for x in tree.order} == {"bb0", "bb1", "bb3"}
    # The unreachable predecessor bb4 does not change bb3's dominator.
    assert idoms(tree) == {"bb0": None, "bb1": "bb0", "bb3": "bb0"}
    assert not tree.is_reachable(b["bb4"])
    assert not tree.is_reachable(b["bb5"])
    assert tree.is_reachable(b["bb3"])
    assert not tree.dominates(b["bb0"], b["bb4"])
    assert not tree.dominates(b["bb4"], b["bb3"])
    assert predecessors(fn)[b["bb3"]] == [b["bb0"], b["bb1"], b["bb4"]]


def test_irreducible_cycle() -> None:
    fn = function(IRREDUCIBLE)
    b = blocks(fn)
    tree = DominatorTree(fn)
    assert idoms(tree) == {"bb0": None, "bb1": "bb0", "bb2": "bb0", "bb3": "bb0"}
    assert not tree.dominates(b["bb1"], b["bb2"])
    assert not tree.dominates(b["bb2"], b["bb1"])


def test_branch_twice_to_one_target_lists_the_predecessor_twice() -> None:
    fn = function(f"  cond_br %c, bb1, bb1\nbb1:\n{RETURN}")
    b = blocks(fn)
    assert predecessors(fn)[b["bb1"]] == [b["bb0"], b["bb0"]]
    assert idoms(DominatorTree(fn)) == {"bb0": None, "bb1": "bb0"}


def test_nested_loops_need_several_iterations() -> None:
    # bb5 is reached from the inner latch and the entry of the outer loop; the answer
    # depends on idoms that are only right after a second sweep.
    fn = function(
        "  br bb1\n"
        "bb1:\n  cond_br %c, bb2, bb6\n"
        "bb2:\n  cond_br %c, bb3, bb4\n"
        "bb3:\n  br bb5\n"
        "bb4:\n  br bb5\n"
        "bb5:\n  cond_br %c, bb2, bb1\n"
        f"bb6:\n{RETURN}"
    )
    tree = DominatorTree(fn)
    assert idoms(tree) == {
        "bb0": None,
        "bb1": "bb0",
        "bb2": "bb1",
        "bb3": "bb2",
        "bb4": "bb2",
        "bb5": "bb2",
        "bb6": "bb1",
    }


def test_single_block() -> None:
    fn = function(RETURN)
    tree = DominatorTree(fn)
    assert idoms(tree) == {"bb0": None}
    assert reverse_postorder(fn) == [fn.entry]


def test_declaration_has_no_blocks() -> None:
    fn = parse("sil @g : $@convention(thin) () -> ()\n").functions["g"]
    assert reverse_postorder(fn) == []
    assert DominatorTree(fn).idom == {}


def loop_names(loops: list[Loop]) -> list[tuple[str | None, list[str | None], list[str | None], str | None]]:
    return [
        (
            lp.header.name,
            [b.name for b in lp.blocks],
            [b.name for b in lp.latches],
            lp.parent.header.name if lp.parent is not None else None,
        )
        for lp in loops
    ]


def test_natural_loops() -> None:
    assert loop_names(natural_loops(function(LOOP))) == [("bb1", ["bb1", "bb2"], ["bb2"], None)]
    assert natural_loops(function(DIAMOND)) == []
    self_loop = function(f"  br bb1\nbb1:\n  cond_br %c, bb1, bb2\nbb2:\n{RETURN}")
    assert loop_names(natural_loops(self_loop)) == [("bb1", ["bb1"], ["bb1"], None)]


def test_an_irreducible_cycle_is_no_loop() -> None:
    assert natural_loops(function(IRREDUCIBLE)) == []


def test_nested_loops_and_two_latches() -> None:
    fn = function(
        "  br bb1\n"
        "bb1:\n  cond_br %c, bb2, bb7\n"
        "bb2:\n  cond_br %c, bb3, bb4\n"
        "bb3:\n  br bb2\n"  # the inner loop's latch
        "bb4:\n  cond_br %c, bb5, bb6\n"
        "bb5:\n  br bb1\n"  # two latches of the outer loop
        "bb6:\n  br bb1\n"
        f"bb7:\n{RETURN}"
    )
    assert loop_names(natural_loops(fn)) == [
        ("bb1", ["bb1", "bb2", "bb3", "bb4", "bb5", "bb6"], ["bb5", "bb6"], None),
        ("bb2", ["bb2", "bb3"], ["bb3"], "bb1"),
    ]


def naive_idoms(fn: Function) -> dict[str | None, str | None]:
    """Immediate dominators from the definition: dominator sets iterated to a fixed point."""
    order = reverse_postorder(fn)
    preds = predecessors(fn)
    everything = set(order)
    dom = {b: ({b} if b is fn.blocks[0] else set(everything)) for b in order}
    changed = True
    while changed:
        changed = False
        for b in order[1:]:
            new = set.intersection(*[dom[p] for p in preds[b] if p in dom]) | {b}
            if new != dom[b]:
                dom[b], changed = new, True
    # The immediate dominator is the strict dominator that the others dominate: the deepest.
    return {
        b.name: max(dom[b] - {b}, key=lambda d: len(dom[d])).name if b is not fn.blocks[0] else None
        for b in order
    }


def random_function(r: random.Random, n: int) -> Function:
    """``n`` blocks branching at random; some share a target with many predecessors, as a
    derivative's shared ``unreachable`` block does (a climb per predecessor once made that
    quadratic)."""
    shared = r.randrange(1, n)
    body = []
    for i in range(n):
        if i:
            body.append(f"bb{i}:\n")
        targets = [r.choice([shared, r.randrange(1, n), min(i + 1, n - 1)]) for _ in range(2)]
        kind = r.random()
        if kind < 0.1 or i == n - 1:
            body.append(RETURN.replace("%r", f"%r{i}"))
        elif kind < 0.4:
            body.append(f"  br bb{targets[0]}\n")
        else:
            body.append(f"  cond_br %c, bb{targets[0]}, bb{targets[1]}\n")
    return function("".join(body))


@pytest.mark.parametrize("seed", range(40))
def test_dominators_agree_with_their_definition(seed: int) -> None:
    r = random.Random(seed)
    fn = random_function(r, r.randrange(2, 60))
    assert idoms(DominatorTree(fn)) == naive_idoms(fn)


def test_dominators_of_a_block_reached_from_every_block_of_a_long_chain() -> None:
    n = 3_000
    body = "".join(f"  cond_br %c, bb{i + 1}, bb{n + 1}\nbb{i + 1}:\n" for i in range(n))
    fn = function(body + f"  br bb{n + 1}\nbb{n + 1}:\n{RETURN}")
    tree = DominatorTree(fn)
    assert idoms(tree)[f"bb{n + 1}"] == "bb0"
    assert idoms(tree)[f"bb{n}"] == f"bb{n - 1}"


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_dominance_is_what_removing_a_block_cuts_off(seed: int) -> None:
    """``dominates`` (by the tree's depth-first intervals) against its definition: ``a`` dominates
    a reachable ``b`` when no path from the entry reaches ``b`` without passing ``a`` (and every
    block itself)."""
    module = parse(print_module(Gen(random.Random(seed), 2, 6, 12).module()))
    for fn in module.functions.values():
        if not fn.blocks:
            continue
        tree = DominatorTree(fn)
        reachable = set(reverse_postorder(fn))
        for a in fn.blocks:
            avoiding = {fn.entry} if a is not fn.entry else set()
            stack = list(avoiding)
            while stack:
                for s in stack.pop().successors():
                    if s is not a and s not in avoiding:
                        avoiding.add(s)
                        stack.append(s)
            for b in fn.blocks:
                expected = a is b or (b in reachable and a in reachable and b not in avoiding)
                assert tree.dominates(a, b) == expected, (fn.name, a.name, b.name)
