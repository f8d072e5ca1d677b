"""Control-flow simplification: remove blocks no path reaches, merge a block into its only
predecessor when that one ends in a ``br`` to it, and thread edges through empty blocks (a block
of a single ``br``), to a fixed point.

Each round is linear in the function's size: predecessor counts are taken once and kept right as
edges move (a merge moves edges from one block to another, keeping the counts; a threaded edge
leaves its empty block for the block at the end of the chain). The entry block stays first and the
other blocks keep their order, so the printed result is deterministic. As Swift's SimplifyCFG
does, a ``cond_br`` whose two edges come to one block with the same arguments becomes a ``br``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sil.builder import Builder
from sil.cfg import DominatorTree, reverse_postorder
from sil.instructions import BranchInst, CondBranchInst, SwitchEnumInst, set_edge_arguments
from sil.ir import Block, BlockArgument, Function, Instruction, Module, Result, Value, release_instructions
from sil.passes import Pass, PassContext, register_pass
from sil.transforms.before_ad import differentiated_functions, optimizable_functions


@register_pass
class SimplifyCFG(Pass):
    """Removes unreachable blocks, merges straight-line chains of blocks, threads empty blocks."""

    name = "simplify-cfg"
    description = (
        "Remove unreachable blocks, merge a block into its only predecessor ending in a br to it, "
        "and thread edges through blocks holding only a br"
    )

    def run(self, module: Module, ctx: PassContext) -> None:
        differentiated = differentiated_functions(module)
        for fn in optimizable_functions(module, ctx):
            simplify_cfg(fn, fn.name in differentiated)


def remove_unreachable_blocks(fn: Function) -> int:
    """Remove the blocks of ``fn`` no path from the entry reaches; returns how many."""
    if not fn.blocks:
        return 0
    reachable = set(reverse_postorder(fn))
    dead = {b for b in fn.blocks if b not in reachable}
    if dead:
        fn.erase_blocks(dead)
    return len(dead)


def simplify_cfg(fn: Function, differentiated: bool = False) -> int:
    """Simplify ``fn``'s control flow to a fixed point; returns how many changes were made.
    ``differentiated``: differentiation will differentiate ``fn`` (``sil.transforms.before_ad``),
    so no branch is made to reach one block twice with different arguments."""
    total = 0
    while fn.blocks:
        changes = remove_unreachable_blocks(fn)
        counts = Counter(s for b in fn.blocks for s in b.successors())
        changes += _merge_chains(fn, counts)
        changes += _thread_empty_blocks(fn, counts, differentiated)
        changes += drop_redundant_arguments(fn)
        if not changes:
            break
        total += changes
    return total


def _merge_chains(fn: Function, counts: Counter[Block]) -> int:
    """Merge each block ending in ``br B`` with B, when B has no other predecessor."""
    merged: set[Block] = set()
    retired: list[Instruction] = []  # released together: a merged block may grow long
    for block in fn.blocks:
        if block in merged:
            continue
        while True:
            term = block.terminator
            if not isinstance(term, BranchInst):
                break
            succ = term.dest
            if succ is block or succ is fn.entry or counts[succ] != 1:
                break
            for arg, value in zip(succ.args, term.operands, strict=True):
                arg.replace_all_uses_with(value)
            retired.append(block.retire_terminator())
            for arg in list(succ.args):
                succ.erase_arg(arg)
            block.take_instructions(succ)
            merged.add(succ)
    release_instructions(retired)
    if merged:
        fn.erase_blocks(merged)
    return len(merged)


def drop_redundant_arguments(fn: Function) -> int:
    """Replace each block argument that every edge passes the same value (or the argument itself,
    around a loop) by that value, and drop it from the block and its edges; how many.

    The value is defined outside the block and reaches it along every edge that does not carry
    the argument itself, so it dominates the block: a path from the entry first enters the block
    along such an edge. The dominator tree checks it all the same (an unreachable block's edges
    prove nothing). A loop-invariant value carried around a loop (a pullback's constant seed)
    becomes a plain use, which ``-canonicalize`` may then fold."""
    incoming: dict[Block, list[Instruction]] = {}
    for block in fn.blocks:
        term = block.terminator
        assert term is not None
        for succ in dict.fromkeys(block.successors()):
            incoming.setdefault(succ, []).append(term)
    tree: DominatorTree | None = None
    dropped = 0
    for block in fn.blocks[1:]:
        terms = incoming.get(block, [])
        if not block.args or not terms or not all(isinstance(t, BranchInst | CondBranchInst) for t in terms):
            continue
        passed = [args for t in terms for dest, args in t.successor_args() if dest is block]
        redundant: dict[int, Value] = {}
        for i, arg in enumerate(block.args):
            values = {args[i] for args in passed} - {arg}
            if len(values) == 1:
                (value,) = values
                tree = tree or DominatorTree(fn)
                if _dominates_strictly(tree, value, block):
                    redundant[i] = value
        if redundant:
            _drop_arguments(block, terms, redundant)
            dropped += len(redundant)
    return dropped


def _dominates_strictly(tree: DominatorTree, value: Value, block: Block) -> bool:
    if isinstance(value, BlockArgument):
        home = value.block
    else:
        assert isinstance(value, Result) and value.owner is not None
        home = value.owner.block
    return home is not None and home is not block and tree.dominates(home, block)


def _drop_arguments(block: Block, terms: Sequence[Instruction], redundant: dict[int, Value]) -> None:
    args = list(block.args)
    for i, value in redundant.items():
        args[i].replace_all_uses_with(value)
    for term in terms:
        edges = [
            [v for i, v in enumerate(passed) if i not in redundant] if dest is block else list(passed)
            for dest, passed in term.successor_args()
        ]
        set_edge_arguments(term, edges)
    for i in redundant:
        block.erase_arg(args[i])


def _is_forwarding(block: Block, fn: Function) -> bool:
    """A block of a single ``br`` to another block (its arguments passed on, or other values),
    whose arguments nothing else uses: an edge threaded past it leaves them undefined, so one
    that a block it dominates still reads (a loop's exit, after the loop) must stay on the path."""
    if block is fn.entry or len(block.instructions) != 1:
        return False
    term = block.instructions[0]
    return (
        isinstance(term, BranchInst)
        and term.dest is not block
        and all(user is term for arg in block.args for user in arg.uses)
    )


def _forward(start: Block, args: Sequence[Value], fn: Function) -> tuple[Block, list[Value]] | None:
    """Where an edge into ``start`` passing ``args`` ends after the chain of forwarding blocks
    from it, and what it passes there; None for a chain that loops.

    A value a forwarding block passes on is one of the chain's block arguments (replaced by what
    came in) or is defined in a block dominating it, which dominates the edge's source too (the
    chain's blocks define nothing else)."""
    incoming: dict[Value, Value] = {}
    block, passed = start, list(args)
    seen: set[Block] = set()
    while _is_forwarding(block, fn):
        if block in seen:
            return None
        seen.add(block)
        incoming.update(zip(block.args, passed))
        term = block.instructions[0]
        assert isinstance(term, BranchInst)
        passed = [incoming.get(v, v) for v in term.operands]
        block = term.dest
    return block, passed


def _thread_empty_blocks(fn: Function, counts: Counter[Block], differentiated: bool = False) -> int:
    """Thread every edge; a rewritten terminator is replaced at the end of its block, and the
    replaced ones drop their uses together (one filter of each use-list, not one scan per
    terminator: a condition or a value many branches use has a long one)."""
    threaded = 0
    retired: list[Instruction] = []
    for block in fn.blocks:
        term = block.terminator
        if isinstance(term, BranchInst | CondBranchInst):
            threaded += _thread_branch(term, fn, counts, retired, differentiated)
        elif isinstance(term, SwitchEnumInst):
            threaded += _thread_switch(term, fn, counts, retired)
    release_instructions(retired)
    return threaded


def _replacing(term: Instruction, retired: list[Instruction]) -> Builder:
    """A builder for the terminator replacing ``term``, which is retired."""
    block = term.block
    assert block is not None
    retired.append(block.retire_terminator())
    return Builder.at_end(block)


def _thread_branch(
    term: Instruction,
    fn: Function,
    counts: Counter[Block],
    retired: list[Instruction],
    differentiated: bool = False,
) -> int:
    original = [(dest, list(args)) for dest, args in term.successor_args()]
    edges = [_forward(dest, args, fn) or (dest, args) for dest, args in original]
    if differentiated and _one_block_twice(edges):
        # Differentiation's trace names the predecessor, not the edge: thread one edge at most.
        edges = next(
            (e for e in ([edges[0], original[1]], [original[0], edges[1]]) if not _one_block_twice(e)),
            original,
        )
    same = len(edges) == 2 and edges[0][0] is edges[1][0] and _same_values(edges[0][1], edges[1][1])
    changed = 0
    for (dest, _), (target, _) in zip(original, edges):
        if target is not dest:
            counts[dest] -= 1
            counts[target] += 1
            changed += 1
    if not changed and not same:
        return 0
    b = _replacing(term, retired)
    if isinstance(term, BranchInst) or same:
        if same:
            counts[edges[1][0]] -= 1
        b.br(edges[0][0], *edges[0][1])
    else:
        assert isinstance(term, CondBranchInst)
        b.cond_br(term.operands[0], edges[0][0], edges[0][1], edges[1][0], edges[1][1])
    return changed + same


def _one_block_twice(edges: Sequence[tuple[Block, Sequence[Value]]]) -> bool:
    """Whether two edges reach one block with different arguments."""
    return len(edges) == 2 and edges[0][0] is edges[1][0] and not _same_values(edges[0][1], edges[1][1])


def _same_values(a: Sequence[Value], b: Sequence[Value]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _thread_switch(
    term: SwitchEnumInst, fn: Function, counts: Counter[Block], retired: list[Instruction]
) -> int:
    """Thread a ``switch_enum``'s targets, where the chain passes the payload (or nothing) on
    unchanged: a switch passes no other values."""
    targets: list[Block] = []
    for dest in term.successors():
        end = _forward(dest, dest.args, fn)
        targets.append(end[0] if end is not None and _same_values(end[1], dest.args) else dest)
    changed = sum(t is not d for t, d in zip(targets, term.successors()))
    if not changed:
        return 0
    for old, new in zip(term.successors(), targets):
        counts[old] -= 1
        counts[new] += 1
    cases = [(case, target) for (case, _), target in zip(term.cases, targets)]
    default = targets[-1] if term.default is not None else None
    _replacing(term, retired).switch_enum(term.operands[0], cases, default)
    return changed
