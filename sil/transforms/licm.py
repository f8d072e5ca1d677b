"""Loop-invariant code motion: a pure instruction of a loop whose operands do not change in it
leaves the loop for the loop's preheader, and is computed once instead of on every trip.

Only instructions that cannot fault move (``canonicalize.cannot_fault``): one hoisted from a block a
trip may skip, or from a loop that runs no trip, is then computed where it was not, which must change
nothing a run shows. A loop without a preheader (a unique predecessor outside the loop that branches
only to the header) is left as it is: this pass creates none.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from sil.cfg import Loop, natural_loops, predecessors
from sil.instructions import BranchInst
from sil.ir import Block, BlockArgument, Function, Instruction, Module, Result, Value
from sil.passes import Pass, PassContext, register_pass
from sil.transforms.before_ad import block_bound, differentiated_functions, optimizable_functions
from sil.transforms.canonicalize import cannot_fault


@register_pass
class LoopInvariantCodeMotion(Pass):
    """Hoists loop-invariant pure instructions into the loop's preheader."""

    name = "licm"
    description = "Move pure instructions whose operands a loop does not change out of it, into its preheader"

    def run(self, module: Module, ctx: PassContext) -> None:
        differentiated = differentiated_functions(module)
        for fn in optimizable_functions(module, ctx):
            stays = functools.partial(block_bound, module=module) if fn.name in differentiated else None
            hoist_loop_invariants(fn, stays)


def hoist_loop_invariants(fn: Function, stays: Callable[[Instruction], bool] | None = None) -> int:
    """Hoist the invariant instructions of every loop of ``fn``, inner loops first (what leaves an
    inner loop may then leave the outer one too), but those ``stays`` holds in place (before
    differentiation: ``sil.transforms.before_ad.block_bound``); how many moves were made."""
    if not fn.blocks:
        return 0
    preds = predecessors(fn)
    moved = 0
    for loop in reversed(natural_loops(fn)):
        preheader = _preheader(loop, preds)
        if preheader is not None:
            moved += _hoist(loop, preheader, stays)
    return moved


def _preheader(loop: Loop, preds: dict[Block, list[Block]]) -> Block | None:
    body = set(loop.blocks)
    outside = [p for p in preds[loop.header] if p not in body]
    if len(outside) != 1 or not isinstance(outside[0].terminator, BranchInst):
        return None
    return outside[0]


def _hoist(loop: Loop, preheader: Block, stays: Callable[[Instruction], bool] | None) -> int:
    """Move the loop's invariant instructions before ``preheader``'s branch, in an order where
    each comes after what it uses."""
    body = set(loop.blocks)
    invariant: dict[Instruction, None] = {}  # in the order found: definitions before uses
    changed = True
    while changed:
        changed = False
        for block in loop.blocks:
            for inst in block.instructions:
                if inst in invariant or not cannot_fault(inst) or (stays is not None and stays(inst)):
                    continue
                if all(_defined_outside(op, body, invariant) for op in inst.operands):
                    invariant[inst] = None
                    changed = True
    if not invariant:
        return 0
    for block in loop.blocks:
        block.instructions = [inst for inst in block.instructions if inst not in invariant]
    branch = preheader.instructions.pop()
    for inst in invariant:
        preheader.append(inst)
    preheader.instructions.append(branch)
    return len(invariant)


def _defined_outside(value: Value, body: set[Block], invariant: dict[Instruction, None]) -> bool:
    """Whether ``value`` is the same on every trip: defined outside the loop, or invariant."""
    if isinstance(value, Result):
        owner = value.owner
        return owner is not None and (owner.block not in body or owner in invariant)
    return isinstance(value, BlockArgument) and value.block not in body
