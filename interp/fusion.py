"""Which scalar builtins the compiler writes as expressions inside their one user.

Each SIL value is a Python local of the compiled function, and each builtin one statement. A
value used once, by the next arithmetic, pays for a store and a load it does not need, and its
``float`` stays alive until the function returns, so CPython cannot hand that memory to the next
result. Written inside its user (``v5 = (v3 * v1) + v4``), the value costs neither: the
intermediate is freed by the operation that reads it, and the next result reuses it. Pullbacks
are mostly such chains (``g' = g + g * y * cos``), so a gradient gains more than its primal.
"""

from __future__ import annotations

import functools

from interp.semantics import scalar_template
from sil.instructions import BuiltinInst
from sil.ir import Function, Instruction, Value
from sil.types import ScalarType, TensorType

ASSIGN = "{r} = "  # how the templates that can be fused begin
_PLACEHOLDERS = ("{a}", "{b}")
# How deeply fused expressions may nest: deep enough for the arithmetic between two stored values,
# shallow enough for Python's parser and value stack whatever the function.
MAX_FUSED_DEPTH = 8


def scalar_builtin_template(inst: Instruction) -> str | None:
    """The template of a builtin on scalars (None: another instruction, or tensors)."""
    if type(inst) is not BuiltinInst or not isinstance(inst.type, ScalarType):
        return None
    operands = inst.operands
    operand = operands[0].type if operands else inst.type
    if not isinstance(operand, ScalarType):
        return None
    for other in operands[1:]:
        if isinstance(other.type, TensorType):
            return None
    return scalar_template(inst.name, operand, inst.type)


def is_pure_builtin(inst: Instruction) -> bool:
    """Whether ``inst`` is a builtin on scalars that cannot fault: the templates of those that
    can take their ``{site}``."""
    template = scalar_builtin_template(inst)
    return template is not None and "{site}" not in template


@functools.cache
def _is_expression(template: str) -> bool:
    """Whether a template is one assignment of an expression that cannot fault."""
    return (
        template.startswith(ASSIGN)
        and "\n" not in template
        and "{site}" not in template
        and template.count("{r}") == 1
    )


def fused_results(fn: Function) -> set[Value]:
    """The results of scalar builtins written as an expression inside their one user.

    A result is fused when its template is a pure expression and its one use is by a scalar
    builtin in the same block whose template reads that operand once: so the expression is
    evaluated exactly once, between its operands' definitions and its user, where no variable it
    reads is assigned again. Being pure, when it runs within that span is unobservable.
    """
    fused: set[Value] = set()
    for block in fn.blocks:
        templates: dict[Instruction, str | None] = {
            inst: scalar_builtin_template(inst) for inst in block.instructions if type(inst) is BuiltinInst
        }
        depth: dict[Value, int] = {}
        for inst, template in templates.items():
            if template is None or not _is_expression(template):
                continue
            uses = inst.result.uses
            if len(uses) != 1 or not _reads_once(templates.get(uses[0]), uses[0], inst.result):
                continue
            level = 1 + max((depth.get(o, 0) for o in inst.operands), default=0)
            if level <= MAX_FUSED_DEPTH:
                depth[inst.result] = level
                fused.add(inst.result)
    return fused


def _reads_once(template: str | None, user: Instruction, value: Value) -> bool:
    """Whether ``user``, a builtin on scalars of this block with this template, reads ``value``
    exactly once (an expression read twice would be evaluated twice)."""
    return template is not None and _reads_operand_once(template, user.operands.index(value))


@functools.cache
def _reads_operand_once(template: str, index: int) -> bool:
    return index < len(_PLACEHOLDERS) and template.count(_PLACEHOLDERS[index]) == 1
