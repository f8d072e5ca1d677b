"""Copy-on-write for ``with_element``: write in place into a tensor no one else holds.

``with_element(t, v, i…)`` makes a new tensor, a copy of ``t``: in a loop that updates every
element once (a pullback accumulating the adjoints of ``element`` reads, SIL-SPEC §5), copies
cost O(n) each and the loop O(n^2). Swift avoids them with copy-on-write: a buffer is written in
place when it is uniquely referenced. So does the interpreter:

- statically, where a tensor value is used for the last time (not live after the instruction or
  the branch that passes it on), the compiled code drops its variable's reference as it passes the
  value on (``Moves``);
- at run time, ``with_element`` writes in place when the tensor's reference count shows that
  nothing else holds it (no variable, record, closure, caller or view), and it owns its buffer
  (``Backend.owns_buffer``); otherwise it copies, as before.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection
from typing import Any

from analysis.liveness import compute_liveness
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


class Moves:
    """Where the compiled code of ``fn`` can drop a tensor variable's reference: at the last use
    of its value, by ``with_element`` or by a branch passing it to a block argument. A use is the
    last where the value is not live after it (``analysis.liveness``): a later read would come
    only after the definition ran again and assigned the variable anew.

    ``fixed`` are values whose variables other values share (an inlined callee's parameters, the
    projections the inliner forwards): dropping theirs would lose a value still to be read."""

    def __init__(self, fn: Function, fixed: Collection[Value]) -> None:
        self.fixed = fixed
        liveness = compute_liveness(fn, self._followed)
        self.live_in = liveness.live_in
        self.last_uses: set[tuple[Instruction, Value]] = set()
        for block, live_out in liveness.live_out.items():
            last: dict[Value, Instruction] = {}
            for inst in block.instructions:
                for op in inst.operands:
                    last[op] = inst
            after = set(live_out)
            self.last_uses.update(
                (inst, v) for v, inst in last.items() if v not in after and self._followed(v)
            )

    def _followed(self, v: Value) -> bool:
        return isinstance(v.type, TensorType) and v not in self.fixed

    def last_use(self, inst: Instruction, v: Value) -> bool:
        """Whether ``inst`` reads ``v``, a tensor, for the last time, and only once."""
        return (inst, v) in self.last_uses and inst.operands.count(v) == 1

    def passed_on(self, dest: Block, values: list[Value]) -> list[Value]:
        """The tensors of ``values``, which a branch passes to ``dest``, not read after it but
        through ``dest``'s arguments (not live into ``dest``), each passed once (a block's own
        argument passed back to it excepted: the branch assigns it)."""
        live_in = set(self.live_in.get(dest, ()))
        return [
            v
            for v in dict.fromkeys(values)
            if self._followed(v) and v not in live_in and values.count(v) == 1 and v not in dest.args
        ]
