"""Full unrolling of loops whose every trip is known: the loop becomes straight-line code.

A trip is peeled off the loop (a copy of the body entered from the preheader, whose back edges go
to the loop) and folded (``canonicalize``); when every branch of the copy folds, the trip is known,
and peeling goes on until the loop itself is left unreachable. That covers counted loops with
constant bounds, and, after ``-differentiation`` and ``-inline``, the pullback's loop over a trace
that the unrolled original left known: the trace enums and records then fold away too (issue 16,
item 3). A loop with a trip that does not fold, more than ``MAX_TRIPS`` trips, or more than
``MAX_GROWTH`` instructions in all is left as it was: the peeling happens on a scratch copy of the
function, which replaces it only when the loop is gone (folded, as the peeling left it, and with
the chain of blocks the trips made merged, as -simplify-cfg merges them).

Values the loop defines and code after it uses leave it through arguments added to its one exit
block (loop-closed SSA), so that each peeled trip hands them over on its own exit edge (an edge
of a ``switch_enum``, which passes only a payload, through a landing block of its own); a loop
with such values and several exit blocks is left alone.
"""

from __future__ import annotations

from typing import Any

from sil.builder import Builder
from sil.cfg import Loop, blocks_that_return, natural_loops, predecessors, reverse_postorder_from
from sil.cloning import clone_blocks, clone_instructions
from sil.instructions import BranchInst, CondBranchInst, SwitchEnumInst
from sil.ir import Block, Function, Instruction, Module, Value
from sil.passes import Pass, PassContext, register_pass
from sil.transforms.before_ad import differentiated_functions, optimizable_functions
from sil.transforms.canonicalize import canonicalize_function, fold_branch
from sil.transforms.simplify_cfg import remove_unreachable_blocks, simplify_cfg

MAX_TRIPS = 32
"""Beyond this many trips a loop stays a loop: unrolling trades code size for the branches and
records of each trip, which pays for short loops, the kind whose trip count a program fixes."""
MAX_GROWTH = 2048
"""At most this many instructions peeled per loop, whatever the trip count."""


@register_pass
class LoopUnroll(Pass):
    """Unrolls the loops whose every trip folds to straight-line code."""

    name = "loop-unroll"
    description = f"Fully unroll loops whose trips all fold (at most {MAX_TRIPS} trips), folding as it goes"

    def run(self, module: Module, ctx: PassContext) -> None:
        differentiated = differentiated_functions(module)
        for fn in optimizable_functions(module, ctx):
            unroll_loops(fn, module, fn.name in differentiated)


def unroll_loops(fn: Function, module: Module, differentiated: bool = False) -> int:
    """Unroll every loop of ``fn`` whose trips are known, inner loops first; how many."""
    unrolled = 0
    failed: set[Block] = set()  # headers tried in vain (a failure leaves fn as it was)
    while fn.blocks:
        loops = [lp for lp in reversed(natural_loops(fn)) if lp.header not in failed]
        if not loops:
            return unrolled
        loop = loops[0]
        made = _unrolled_copy(fn, loop, module, differentiated)
        if made is None:
            failed.add(loop.header)
            continue
        scratch, copies = made
        fn.blocks = scratch.blocks
        for block in fn.blocks:
            block.function = fn
        unrolled += 1
        # The body is a copy: the loops that failed are its copies of them, not tried again in
        # this run (a loop whose trips another's unrolling made known unrolls in -O's next round).
        failed = {copies[h] for h in failed if h in copies}
    return unrolled


def _unrolled_copy(
    fn: Function, loop: Loop, module: Module, differentiated: bool
) -> tuple[Function, dict[Block, Block]] | None:
    """A copy of ``fn`` with ``loop`` fully unrolled, and the copy of each block of ``fn``; None
    when its trips are not all known.
    Before differentiation (``differentiated``: ``sil.transforms.before_ad``) the copy folds as
    -canonicalize folds such a function, but for the trips' branches, and must still return."""
    scratch = Function(fn.name, fn.type)
    body = clone_blocks(fn, scratch)
    header = body.blocks[loop.header]
    blocks = tuple(body.blocks[b] for b in loop.blocks)
    closed = _close_loop(blocks)
    if closed is None:
        return None
    blocks = closed
    grown = 0
    for _ in range(MAX_TRIPS + 1):
        if header.function is None:  # the loop is unreachable now: every trip was peeled
            simplify_cfg(scratch, differentiated)  # the trips' blocks, chained by plain branches, merge
            return (scratch, body.blocks) if blocks_that_return(scratch) else None
        preheader = _preheader(header, blocks)
        grown += sum(len(b.instructions) for b in blocks)
        if preheader is None or grown > MAX_GROWTH:
            return None
        trip = _peel(header, blocks, preheader)
        _fold(scratch, trip, module, differentiated)
        if any(b.function is not None and _branches(b) for b in trip):
            return None  # a branch of the trip depends on what is not known
        blocks = tuple(b for b in blocks if b.function is not None)
    return None


def _fold(fn: Function, trip: list[Block], module: Module, differentiated: bool) -> None:
    """Fold the function with the trip peeled: known values through the trip's blocks, including
    those a folded branch hands to a block it alone enters (the payload of a ``switch_enum`` on a
    known case), to a fixed point. In a function differentiation will differentiate, only the
    trip's branches fold, as -canonicalize folds none there."""
    while True:
        canonicalize_function(fn, module, differentiated)
        folded = differentiated and any(
            [fold_branch(t) for b in trip if b.function is not None and (t := b.terminator) is not None]
        )
        if folded:
            remove_unreachable_blocks(fn)
        preds = predecessors(fn)
        forwarded = [b for b in trip if b.function is not None and b.args and _forward_arguments(b, preds[b])]
        if not forwarded and not folded:
            return


def _forward_arguments(block: Block, preds: list[Block]) -> bool:
    """Replace the arguments of ``block``, entered by one ``br``, by the values it passes."""
    if len(preds) != 1 or not isinstance(term := preds[0].terminator, BranchInst):
        return False
    for arg, value in zip(block.args, term.operands, strict=True):
        arg.replace_all_uses_with(value)
    term.set_operands([])
    for arg in list(block.args):
        block.erase_arg(arg)
    return True


def _branches(block: Block) -> bool:
    return isinstance(block.terminator, (CondBranchInst, SwitchEnumInst))


def _preheader(header: Block, blocks: tuple[Block, ...]) -> Block | None:
    """The one block outside the loop that enters it, by ``br`` or by one edge of a ``cond_br``."""
    assert header.function is not None
    inside = set(blocks)
    outside = [p for p in predecessors(header.function)[header] if p not in inside]
    if len(outside) != 1:
        return None
    term = outside[0].terminator
    if isinstance(term, BranchInst) or (
        isinstance(term, CondBranchInst) and (term.true_dest is header) != (term.false_dest is header)
    ):
        return outside[0]
    return None


class _Same(dict[Any, Any]):
    """A mapping that maps what it does not hold to itself: what the peeled trip uses from outside
    the loop, and the blocks it branches to outside the trip."""

    def __missing__(self, key: Any) -> Any:
        return key


def _peel(header: Block, blocks: tuple[Block, ...], preheader: Block) -> list[Block]:
    """Copy one trip of the loop between ``preheader`` and ``header``: the copy's back edges go to
    the loop's header, which the next trip enters from there. The copies, header first."""
    fn = header.function
    assert fn is not None
    inside = set(blocks)
    entering = preheader.terminator
    assert entering is not None
    (args,) = [args for dest, args in entering.successor_args() if dest is header]
    values: dict[Value, Value] = _Same(zip(header.args, args, strict=True))
    copies: dict[Block, Block] = _Same()
    trip = [fn.add_block(header.name)]
    for block in blocks[1:]:
        copies[block] = fn.add_block(block.name)
        trip.append(copies[block])
        for arg in block.args:
            values[arg] = copies[block].add_argument(arg.type, arg.name)

    def within(block: Block) -> list[Block]:
        return [s for s in block.successors() if s in inside and s is not header]

    order = reverse_postorder_from(header, within)
    clone_instructions(order, {**copies, header: trip[0]}, values, successors=copies)
    _redirect(entering, header, trip[0])
    return trip


def _redirect(term: Instruction, old: Block, new: Block) -> None:
    """Send ``term``'s edge to ``old`` to ``new``, which takes no arguments."""
    if isinstance(term, BranchInst):
        term.dest = new
        term.set_operands([])
        return
    assert isinstance(term, CondBranchInst)
    if term.true_dest is old:
        term.true_dest = new
        term.set_branch_arguments([], term.false_args)
    else:
        term.false_dest = new
        term.set_branch_arguments(term.true_args, [])


def _close_loop(blocks: tuple[Block, ...]) -> tuple[Block, ...] | None:
    """Route each value the loop defines and later code uses through new arguments of the loop's
    exit block, which each exit edge passes; an exit edge of a ``switch_enum`` first goes through
    a landing block of its own, peeled with the loop. The blocks to peel, or None when the loop
    has such values and several exit blocks."""
    inside = set(blocks)
    escaping = [
        v
        for b in blocks
        for v in [*b.args, *(r for i in b.instructions for r in i.results)]
        if any(u.block not in inside for u in v.uses)
    ]
    if not escaping:
        return blocks
    exits = {s for b in blocks for s in b.successors() if s not in inside}
    if len(exits) != 1:
        return None
    (exit_block,) = exits
    fn = exit_block.function
    assert fn is not None
    if any(p not in inside for p in predecessors(fn)[exit_block]):
        return None
    landings = [_landing(b, exit_block) for b in blocks if isinstance(b.terminator, SwitchEnumInst)]
    blocks = (*blocks, *(landing for landing in landings if landing is not None))
    inside = set(blocks)
    for value in escaping:
        arg = exit_block.add_argument(value.type, value.name)
        for user in list(value.uses):
            if user.block not in inside:
                user.set_operands([arg if op is value else op for op in user.operands])
    for source in dict.fromkeys(predecessors(fn)[exit_block]):
        _pass_along(source, exit_block, escaping)
    return blocks


def _landing(block: Block, exit_block: Block) -> Block | None:
    """Send ``block``'s ``switch_enum`` edges to ``exit_block`` through a new block that branches
    there with the payload; the new block, if there were such edges."""
    term = block.terminator
    assert isinstance(term, SwitchEnumInst) and block.function is not None
    if exit_block not in term.successors():
        return None
    landing = block.function.add_block()
    payload = [landing.add_argument(a.type) for a in exit_block.args]
    Builder.at_end(landing).br(exit_block, *payload)
    term.cases = [(case, landing if dest is exit_block else dest) for case, dest in term.cases]
    if term.default is exit_block:
        term.default = landing
    return landing


def _pass_along(source: Block, dest: Block, extra: list[Value]) -> None:
    """Make each edge of ``source``'s branch to ``dest`` pass ``extra`` last."""
    term = source.terminator
    if isinstance(term, BranchInst):
        term.set_operands([*term.operands, *extra])
        return
    assert isinstance(term, CondBranchInst)
    true_args = [*term.true_args, *(extra if term.true_dest is dest else ())]
    false_args = [*term.false_args, *(extra if term.false_dest is dest else ())]
    term.set_branch_arguments(true_args, false_args)
