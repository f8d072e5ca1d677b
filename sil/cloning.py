"""Copying instructions into another function, with their operands replaced."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from sil.ir import Block, Instruction, Value


def clone_instruction(inst: Instruction, values: Mapping[Value, Value]) -> Instruction:
    """A copy of ``inst`` whose operands are ``values[op]``; its attributes (names, types,
    indices) are shared, being immutable. Terminators that name blocks cannot be cloned this way.
    The copy keeps the original's source location."""
    fields = {}
    for field in attrs.fields(type(inst)):
        if not field.init or field.name == "operands":
            continue
        value = getattr(inst, field.name)
        if isinstance(value, Block) or (isinstance(value, list) and any(isinstance(x, tuple) for x in value)):
            raise ValueError(f"cannot clone '{inst.opname}': it names blocks")
        fields[field.name] = value
    copy = type(inst)([values[op] for op in inst.operands], **fields)
    copy.span = inst.span
    return copy
