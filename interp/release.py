"""Where the compiled code lets go of a tensor it will not read again.

Each SIL value is a local of the compiled function and lives until the function returns. For a
scalar that costs nothing, but a tensor kept so holds its buffer: a gradient compiled as one
function (its VJP and pullback inline, see ``interp/inlining.py``) would keep every activation,
every partial and every cotangent of the whole sweep alive to the end, about twice the memory
of a hand-written forward and backward pass, which drops each temporary as soon as it is used.

So a tensor that an instruction of the compiled code defines, and that only the instructions of
its own block read (inlined callees' included, terminators excluded), is deleted (``del v7``)
right after the last of them, or right after its definition when nothing reads it. Values are
SSA: a block that runs again defines the value again before reading it, so the deletion never
meets an unassigned variable. Whatever else is read (by a terminator, in another block, or is a
parameter) is kept as before; scalars are never deleted, so scalar code is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

from interp.inlining import InlinePlan
from sil.instructions import ApplyInst
from sil.ir import Block, Function, Instruction, Value
from sil.types import TensorType


def released_tensors(fn: Function, plan: InlinePlan) -> dict[Instruction, list[Value]]:
    """For each instruction of the compiled code, the tensors to delete right after it (values
    as the plan forwards them: their variables'), in order of definition."""
    if not _defines_tensors(plan):
        return {}
    where: dict[Value, Block | None] = {}  # a read's block; None once read in two blocks
    last: dict[Value, Instruction] = {}
    defined: dict[Value, tuple[Block, Instruction]] = {}
    for block in fn.blocks:
        *body, terminator = block.instructions
        for inst in _emitted(body, plan):
            for op in inst.operands:
                value = plan.forward.get(op, op)
                where[value] = block if where.get(value, block) is block else None
                last[value] = inst
            for r in inst.results:
                if isinstance(r.type, TensorType) and r not in plan.forward:
                    defined[r] = (block, inst)
        for op in terminator.operands:
            where[plan.forward.get(op, op)] = None
    releases: dict[Instruction, list[Value]] = {}
    for value, (block, definition) in defined.items():
        if value not in where:
            releases.setdefault(definition, []).append(value)
        elif where[value] is block:
            releases.setdefault(last[value], []).append(value)
    return releases


def _defines_tensors(plan: InlinePlan) -> bool:
    """Whether a function compiled here defines a tensor (scalar code skips the analysis)."""
    for fn in plan.functions:
        for block in fn.blocks:
            for inst in block.instructions:
                for r in inst.results:
                    if type(r.type) is TensorType:
                        return True
    return False


def _emitted(instructions: list[Instruction], plan: InlinePlan) -> Iterator[Instruction]:
    """The instructions the compiled code runs in place of ``instructions``, in order: inlined
    calls replaced by their callees' bodies, folded ones left out."""
    for inst in instructions:
        if inst in plan.folded:
            continue
        callee = plan.inlined.get(inst) if isinstance(inst, ApplyInst) else None
        if callee is None:
            yield inst
        else:
            yield from _emitted(callee.blocks[0].instructions[:-1], plan)
