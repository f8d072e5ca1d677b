"""Liveness of SSA values across blocks: which values a block needs from the blocks before it.

A value is live into a block when some path from the block's start reaches a use of it before
leaving its definition's scope. Branch operands are uses in the branching block (a block argument
is defined by its own block), so a value passed to a successor is not live out of the branch
unless the successor reads it by name. The reverse-mode emitter passes the adjoints of exactly
these values between pullback blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

import attrs

from sil.cfg import reverse_postorder
from sil.ir import Block, Function, Instruction, Value


@attrs.frozen
class Liveness:
    """Values live into and out of each reachable block, each in definition order."""

    live_in: dict[Block, tuple[Value, ...]]
    live_out: dict[Block, tuple[Value, ...]]


def compute_liveness(
    fn: Function,
    tracked: Callable[[Value], bool] = lambda v: True,
    also_uses: Mapping[Instruction, Sequence[Value]] | None = None,
    within: Collection[Block] | None = None,
) -> Liveness:
    """The liveness of the ``tracked`` values of ``fn`` (all by default), over its reachable blocks
    (only those ``within``, when given: paths through other blocks do not count).

    ``also_uses`` adds uses an instruction makes beyond its operands: a derivative's call of a
    closure uses the values the closure bound, wherever it was made.
    """
    order = [b for b in reverse_postorder(fn) if within is None or b in within]
    extra = also_uses or {}
    position: dict[Value, int] = {}
    uses: dict[Block, set[Value]] = {}
    defs: dict[Block, set[Value]] = {}
    for block in order:
        defined: set[Value] = set()
        for arg in block.args:
            position[arg] = len(position)
            defined.add(arg)
        used: set[Value] = set()
        for inst in block.instructions:
            for op in (*inst.operands, *extra.get(inst, ())):
                if op not in defined and tracked(op):
                    used.add(op)
            for r in inst.results:
                position[r] = len(position)
                defined.add(r)
        uses[block], defs[block] = used, defined
    live_in: dict[Block, set[Value]] = {b: set(uses[b]) for b in order}
    live_out: dict[Block, set[Value]] = {b: set() for b in order}
    changed = True
    while changed:  # backwards to a fixed point; postorder converges fastest
        changed = False
        for block in reversed(order):
            out: set[Value] = set()
            for succ in block.successors():
                out |= live_in.get(succ, set())
            if out != live_out[block]:
                live_out[block] = out
                new_in = uses[block] | (out - defs[block])
                if new_in != live_in[block]:
                    live_in[block] = new_in
                changed = True

    def ordered(values: set[Value]) -> tuple[Value, ...]:
        return tuple(sorted(values, key=position.__getitem__))

    return Liveness({b: ordered(v) for b, v in live_in.items()}, {b: ordered(v) for b, v in live_out.items()})
