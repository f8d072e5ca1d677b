"""Control-flow facts of a function: predecessors, reverse postorder, dominators, natural loops."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

import attrs

from sil.ir import Block, Function

N = TypeVar("N", bound=Hashable)


def reverse_postorder(fn: Function) -> list[Block]:
    """The blocks reachable from the entry, in reverse postorder."""
    if not fn.blocks:
        return []
    return reverse_postorder_from(fn.blocks[0], Block.successors)


def reverse_postorder_from(start: N, successors: Callable[[N], Iterable[N]]) -> list[N]:
    """The nodes reachable from ``start`` through ``successors``, in reverse postorder (each after
    the nodes before it, when the edges followed make no cycle). Iterative: a long chain does not
    exhaust Python's recursion limit."""
    order: list[N] = []
    seen = {start}
    stack = [(start, iter(successors(start)))]
    while stack:
        node, rest = stack[-1]
        for succ in rest:
            if succ not in seen:
                seen.add(succ)
                stack.append((succ, iter(successors(succ))))
                break
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    return order


def predecessors(fn: Function) -> dict[Block, list[Block]]:
    """Each block's predecessors (a block branching twice to one target is listed twice)."""
    preds: dict[Block, list[Block]] = {b: [] for b in fn.blocks}
    for b in fn.blocks:
        for succ in b.successors():
            if succ in preds:
                preds[succ].append(b)
    return preds


class DominatorTree:
    """Immediate dominators of the reachable blocks (Cooper, Harvey and Kennedy's algorithm).

    A block's dominator is the meeting point of its predecessors' dominator chains, found by
    climbing them. The climbs for one block mark what they pass: a marked block lies below the
    meeting point found so far, so a climb that reaches one stops there. A block with many
    predecessors deep in a long chain (a shared ``unreachable`` after each block of a long
    sequence) then costs the length of the chain once, not once per predecessor.
    """

    def __init__(self, fn: Function) -> None:
        self.order = reverse_postorder(fn)
        index = {b: i for i, b in enumerate(self.order)}
        preds = predecessors(fn)
        idom: list[int] = [-1] * len(self.order)
        if self.order:
            idom[0] = 0
        marks = [0] * len(self.order)  # the stamp of the last block whose climbs passed here
        stamp = 0
        changed = True
        while changed:
            changed = False
            for i in range(1, len(self.order)):
                stamp += 1
                new = -1
                for p in preds[self.order[i]]:
                    j = index.get(p)
                    if j is None or idom[j] == -1:
                        continue
                    if new == -1:
                        new = j
                        marks[j] = stamp
                        continue
                    x, y = j, new
                    while x != y:
                        while x > y:
                            if marks[x] == stamp:  # below the meeting point so far: that is y
                                x = y
                                break
                            marks[x] = stamp
                            x = idom[x]
                        while y > x:
                            marks[y] = stamp
                            y = idom[y]
                    new = x
                if idom[i] != new:
                    idom[i] = new
                    changed = True
        self.idom: dict[Block, Block | None] = {
            b: (self.order[idom[i]] if i else None) for i, b in enumerate(self.order)
        }
        self.children: dict[Block, list[Block]] = {b: [] for b in self.order}
        for b, parent in self.idom.items():
            if parent is not None:
                self.children[parent].append(b)
        self._interval: dict[Block, tuple[int, int]] | None = None

    def is_reachable(self, b: Block) -> bool:
        return b in self.idom

    def dominates(self, a: Block, b: Block) -> bool:
        """Whether ``a`` dominates ``b`` (every block dominates itself). Constant time: ``a``
        dominates ``b`` when ``b``'s interval of the dominator tree's depth-first numbering lies
        in ``a``'s, so a pass asking of every edge stays linear on a long chain of blocks."""
        if a is b:
            return True
        intervals = self._interval if self._interval is not None else self._number()
        ia, ib = intervals.get(a), intervals.get(b)
        return ia is not None and ib is not None and ia[0] <= ib[0] and ib[1] <= ia[1]

    def _number(self) -> dict[Block, tuple[int, int]]:
        """Each reachable block's entry and exit numbers in a depth-first walk of the tree."""
        intervals: dict[Block, tuple[int, int]] = {}
        if self.order:
            counter = 0
            entered: dict[Block, int] = {}
            stack: list[tuple[Block, bool]] = [(self.order[0], False)]
            while stack:
                block, done = stack.pop()
                counter += 1
                if done:
                    intervals[block] = (entered[block], counter)
                    continue
                entered[block] = counter
                stack.append((block, True))
                stack.extend((child, False) for child in reversed(self.children[block]))
        self._interval = intervals
        return intervals


def blocks_that_return(fn: Function) -> set[Block]:
    """The blocks reachable from the entry from which a ``return`` can be reached (the others
    trap or loop forever)."""
    order = reverse_postorder(fn)
    into: dict[Block, list[Block]] = {b: [] for b in order}
    for b in order:
        for s in b.successors():
            into[s].append(b)
    returning = [b for b in order if b.terminator is not None and b.terminator.opname == "return"]
    found = set(returning)
    while returning:
        for p in into[returning.pop()]:
            if p not in found:
                found.add(p)
                returning.append(p)
    return found


@attrs.frozen(eq=False)
class Loop:
    """A natural loop: the blocks of its body (``header`` first, then in function order), the
    blocks that branch back to the header (``latches``), and the loop it is nested in, if any."""

    header: Block
    blocks: tuple[Block, ...]
    latches: tuple[Block, ...]
    parent: Loop | None


def natural_loops(fn: Function, tree: DominatorTree | None = None) -> list[Loop]:
    """The natural loops of ``fn``, outer loops before the loops they hold, each header once.

    A back edge goes from a block to one that dominates it (its loop's header); the loop is the
    header and every block that reaches a latch without passing the header. The edges of an
    irreducible cycle (entered at two blocks) are not back edges: such a cycle is no loop."""
    tree = tree or DominatorTree(fn)
    preds = predecessors(fn)
    position = {b: i for i, b in enumerate(fn.blocks)}
    latches: dict[Block, list[Block]] = {}
    for b in tree.order:
        for s in dict.fromkeys(b.successors()):
            if tree.dominates(s, b):
                latches.setdefault(s, []).append(b)
    bodies: dict[Block, set[Block]] = {}
    for header, ends in latches.items():
        body = {header}
        stack = [e for e in ends if e is not header]
        while stack:
            b = stack.pop()
            if b not in body and tree.is_reachable(b):
                body.add(b)
                stack.extend(preds[b])
        bodies[header] = body
    # Outer loops first: a loop holds every loop whose header is in its body, and is larger.
    headers = sorted(bodies, key=lambda h: (-len(bodies[h]), position[h]))
    loops: dict[Block, Loop] = {}
    for h in headers:
        around = [loops[o] for o in loops if h in bodies[o]]
        parent = min(around, key=lambda o: len(o.blocks), default=None)
        blocks = (h, *sorted(bodies[h] - {h}, key=position.__getitem__))
        loops[h] = Loop(h, blocks, tuple(sorted(latches[h], key=position.__getitem__)), parent)
    return list(loops.values())
