"""Dead code elimination."""

from __future__ import annotations

from collections.abc import Collection

from sil.builtins import may_fault
from sil.instructions import BuiltinInst
from sil.ir import Function, Instruction, Module, Result, Value
from sil.passes import Pass, PassContext, register_pass


def _removable(inst: Instruction) -> bool:
    """Whether erasing ``inst`` when unused changes nothing a run shows. A builtin that can fault
    (``may_fault``: an ``sdiv`` by zero, a ``matmul`` of sizes that disagree) stays: the run must
    still stop there."""
    if isinstance(inst, BuiltinInst) and may_fault(inst.name, [op.type for op in inst.operands], inst.type):
        return False
    return not inst.is_terminator and not inst.has_effects


@register_pass
class DeadCodeElimination(Pass):
    """Removes instructions whose results are unused and that have no effects."""

    name = "dce"
    description = "Remove instructions whose results are unused and that have no effects"

    def run(self, module: Module, ctx: PassContext) -> None:
        for fn in module.functions.values():
            eliminate_dead_code(fn)


def eliminate_dead_code(fn: Function, keep: Collection[Value] = ()) -> int:
    """Erase dead instructions of ``fn`` (including those dead only because of other dead ones);
    returns how many were erased. The definitions of ``keep`` stay, as if used (a function still
    being built uses them later)."""
    dead: set[Instruction] = set()
    kept = {v.owner for v in keep if isinstance(v, Result)}
    worklist = [
        inst
        for inst in fn.instructions()
        if _removable(inst) and not any(r.uses for r in inst.results) and inst not in kept
    ]
    while worklist:
        inst = worklist.pop()
        if inst in dead:
            continue
        dead.add(inst)
        for op in inst.operands:
            owner = getattr(op, "owner", None)
            if (
                owner is not None
                and owner not in dead
                and owner not in kept
                and _removable(owner)
                and all(user in dead for r in owner.results for user in r.uses)
            ):
                worklist.append(owner)
    for block in fn.blocks:
        block.erase_instructions(dead)
    return len(dead)
