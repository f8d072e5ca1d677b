"""Dead code elimination."""

from __future__ import annotations

from sil.ir import Function, Instruction, Module
from sil.passes import Pass, PassContext, register_pass


def _removable(inst: Instruction) -> bool:
    return not inst.is_terminator and not inst.has_effects


@register_pass
class DeadCodeElimination(Pass):
    """Removes instructions whose results are unused and that have no effects."""

    name = "dce"
    description = "Remove instructions whose results are unused and that have no effects"

    def run(self, module: Module, ctx: PassContext) -> None:
        for fn in module.functions.values():
            eliminate_dead_code(fn)


def eliminate_dead_code(fn: Function) -> int:
    """Erase dead instructions of ``fn`` (including those dead only because of other dead ones);
    returns how many were erased."""
    dead: set[Instruction] = set()
    worklist = [
        inst for inst in fn.instructions() if _removable(inst) and not any(r.uses for r in inst.results)
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
                and _removable(owner)
                and all(user in dead for r in owner.results for user in r.uses)
            ):
                worklist.append(owner)
    for block in fn.blocks:
        block.erase_instructions(dead)
    return len(dead)
