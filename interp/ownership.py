"""When the compiled code lets go of a tensor, and when ``with_element`` may write in place.

Each SIL value is a local of the compiled function, alive until the function returns. For a
scalar that costs nothing; a tensor kept so holds its buffer. A gradient compiled as one function
(its VJP and pullback inline, ``interp/inlining.py``) would keep every activation and cotangent of
the sweep to the end, about twice the memory of a hand-written forward and backward pass. And
``with_element(t, v, i…)`` makes a new tensor, a copy of ``t``: a loop updating each element once
(a pullback accumulating the adjoints of ``element`` reads, SIL-SPEC §5) would cost O(n^2).

So the compiled code lets go of a tensor where it is read for the last time (``Lifetimes``): it is
deleted after the last instruction that reads it (or after its definition, when nothing does); a
branch passing it to a block argument drops the variable's reference; and ``with_element``, when
it is the last reader, takes the tensor from its variable as it is called. Last means not live
after (``analysis.liveness``): a later read would come only after the definition ran again. Then,
as Swift's copy-on-write, ``with_element`` writes in place when the tensor's reference count shows
that nothing else holds it (no variable, record, closure, caller or view) and it owns its buffer
(``Backend.owns_buffer``); otherwise it copies.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

from analysis.liveness import compute_liveness
from interp.inlining import InlinePlan
from sil.instructions import ApplyInst, BuiltinInst
from sil.ir import Block, Function, Instruction, Value
from sil.types import TensorType

WithElement = Callable[..., Any]


def reusing(
    in_place: WithElement, copy: WithElement, owns: Callable[[Any], bool], unshared: int
) -> WithElement:
    """``with_element`` that writes into its operand where at most ``unshared`` references to it
    exist, as for a value nothing else holds, and it owns its buffer."""
    count = sys.getrefcount

    def with_element(a: Any, value: Any, *indices: int) -> Any:
        if count(a) <= unshared and owns(a):
            return in_place(a, value, *indices)
        return copy(a, value, *indices)

    return with_element


def _references_of_a_temporary() -> int:
    """The reference count ``reusing``'s function sees for an operand nothing else holds.

    Measured rather than assumed: CPython versions count the references of call arguments
    differently (3.14 borrows the caller's stack references)."""
    for unshared in range(1, 16):
        probe = reusing(lambda *_: True, lambda *_: False, lambda _: True, unshared)
        held = object()
        if probe(object(), 0.0, 0):
            assert not probe(held, 0.0, 0), "a held operand counts no more than a temporary"
            return unshared
    raise AssertionError("no reference count tells a temporary operand")


UNSHARED = _references_of_a_temporary()


class Lifetimes:
    """Where the compiled code of ``fn`` (as ``plan`` compiles it: inlined callees' bodies in
    place of their calls, projections forwarded to the variables they read) lets go of tensors.

    Values are followed by variable: a forwarded value is its holder's (``plan.forward``)."""

    def __init__(self, fn: Function, plan: InlinePlan) -> None:
        self.plan = plan
        self.released: dict[Instruction, list[Value]] = {}
        """The tensors deleted right after each instruction, in the order they were defined."""
        self.moved: set[Instruction] = set()
        """The ``with_element``s that take their tensor operand from its variable."""
        self.live_in: dict[Block, tuple[Value, ...]] = {}
        self._escaping: set[Value] = set()
        if not any(isinstance(a.type, TensorType) for b in fn.blocks for a in b.args) and not any(
            isinstance(r.type, TensorType) for b in fn.blocks for i in self._emitted(b) for r in i.results
        ):
            return  # no tensor to follow (a tensor parameter, a block argument, is one)
        own = {v for b in fn.blocks for v in (*b.args, *(r for i in b.instructions for r in i.results))}
        reads = {inst: list(self._reads(inst)) for b in fn.blocks for inst in b.instructions}
        # An inlined callee's values are defined in the block of the call, and followed there
        # only: one read in any other block (a result returned through forwarding) keeps it.
        defined_in: dict[Value, Block] = {
            r: b for b in fn.blocks for i in self._emitted(b) for r in i.results if r not in own
        }
        self._escaping.update(
            v
            for b in fn.blocks
            for inst in b.instructions
            for v in reads[inst]
            if v not in own and defined_in.get(v) is not b
        )
        liveness = compute_liveness(
            fn, self._followed, {i: [v for v in r if v in own] for i, r in reads.items()}
        )
        self.live_in = liveness.live_in
        for block, live_out in liveness.live_out.items():
            self._release_in(block, set(live_out) | self._escaping)

    def _followed(self, v: Value) -> bool:
        return isinstance(v.type, TensorType) and v not in self.plan.forward

    def holder(self, v: Value) -> Value:
        return self.plan.forward.get(v, v)

    def _reads(self, inst: Instruction) -> Iterator[Value]:
        """The variables ``inst`` reads as compiled: an inlined call, its callee's body's."""
        callee = self.plan.inlined.get(inst) if isinstance(inst, ApplyInst) else None
        if callee is None:
            yield from (self.holder(op) for op in inst.operands)
            return
        for inner in self._expand(callee.blocks[0].instructions[:-1]):
            yield from (self.holder(op) for op in inner.operands)

    def _emitted(self, block: Block) -> Iterator[Instruction]:
        return self._expand(block.instructions[:-1])

    def _expand(self, instructions: list[Instruction]) -> Iterator[Instruction]:
        """The instructions the compiled code runs in place of ``instructions``, in order: inlined
        calls replaced by their callees' bodies, folded ones left out."""
        for inst in instructions:
            if inst in self.plan.folded:
                continue
            callee = self.plan.inlined.get(inst) if isinstance(inst, ApplyInst) else None
            if callee is None:
                yield inst
            else:
                yield from self._expand(callee.blocks[0].instructions[:-1])

    def _release_in(self, block: Block, live_out: set[Value]) -> None:
        """The tensors ``block``'s code reads for the last time, or defines for nothing."""
        last: dict[Value, Instruction] = {}
        defined: dict[Value, Instruction] = {}
        for inst in self._emitted(block):
            for op in inst.operands:
                last[self.holder(op)] = inst
            for r in inst.results:
                if self._followed(r):
                    defined[r] = inst
        kept = live_out | {self.holder(op) for op in block.instructions[-1].operands}
        for v in dict.fromkeys([*defined, *last]):  # what the block defines, then what it reads
            if not self._followed(v) or v in kept:
                continue
            if v not in last:  # defined for nothing
                self.released.setdefault(defined[v], []).append(v)
            elif not self._moves_into(last[v], v):
                self.released.setdefault(last[v], []).append(v)

    def _moves_into(self, inst: Instruction, v: Value) -> bool:
        """Whether ``inst`` is a ``with_element`` that takes ``v`` as its tensor, read once."""
        if not (isinstance(inst, BuiltinInst) and inst.name == "with_element"):
            return False
        holders = [self.holder(op) for op in inst.operands]
        if holders[0] is not v or holders.count(v) != 1:
            return False
        self.moved.add(inst)
        return True

    def passed_on(self, dest: Block, values: list[Value]) -> list[Value]:
        """The tensors of ``values``, which a branch passes to ``dest``, not read after it but
        through ``dest``'s arguments (not live into ``dest``), each passed once (a block's own
        argument passed back to it excepted: the branch assigns it)."""
        live_in = set(self.live_in.get(dest, ()))
        holders = [self.holder(v) for v in values]
        return [
            v
            for v in dict.fromkeys(holders)
            if self._followed(v)
            and v not in live_in
            and v not in self._escaping
            and holders.count(v) == 1
            and v not in dest.args
        ]
