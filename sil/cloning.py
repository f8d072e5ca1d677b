"""Copying instructions and whole function bodies, with their operands (and blocks) replaced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from sil.cfg import reverse_postorder
from sil.ir import Block, Function, Instruction, Value


def clone_instruction(
    inst: Instruction,
    values: Mapping[Value, Value],
    blocks: Mapping[Block, Block] | None = None,
    attributes: Mapping[str, object] | None = None,
) -> Instruction:
    """A copy of ``inst`` whose operands are ``values[op]``; its attributes (names, types,
    indices) are shared, being immutable, except those ``attributes`` gives anew (a type, for a
    copy into a retyped function). A terminator's successors become ``blocks[succ]``; without
    ``blocks``, one that names blocks cannot be cloned. The copy keeps the original's source
    location."""
    fields = {}
    for field in attrs.fields(type(inst)):
        if not field.init or field.name == "operands":
            continue
        if attributes is not None and field.name in attributes:
            fields[field.name] = attributes[field.name]
        else:
            fields[field.name] = _mapped(getattr(inst, field.name), blocks, inst)
    copy = type(inst)([values[op] for op in inst.operands], **fields)
    copy.span = inst.span
    return copy


def _mapped(value: object, blocks: Mapping[Block, Block] | None, inst: Instruction) -> object:
    """A field of ``inst`` for its copy: a block, or the blocks of ``switch_enum``'s cases, mapped."""
    names_blocks = isinstance(value, Block) or (
        isinstance(value, list) and any(isinstance(x, tuple) for x in value)
    )
    if not names_blocks:
        return value
    if blocks is None:
        raise ValueError(f"cannot clone '{inst.opname}': it names blocks")
    if isinstance(value, Block):
        return blocks[value]
    assert isinstance(value, list)
    return [(case, blocks[dest]) for case, dest in value]


@attrs.define
class ClonedBody:
    """What ``clone_blocks`` made: each reachable block's copy and each value's copy."""

    blocks: dict[Block, Block]
    values: dict[Value, Value]


def clone_blocks(source: Function, into: Function, entry_values: Sequence[Value] | None = None) -> ClonedBody:
    """Copies of the blocks of ``source`` that its entry reaches, appended to ``into`` in
    ``source``'s order, with names, locations and terminators kept (successors mapped to the
    copies). With ``entry_values``, the entry's arguments stand for those values and its copy
    takes none (inlining); without, the copy takes arguments like the entry's (specializing)."""
    reached = reverse_postorder(source)
    order = {block: i for i, block in enumerate(source.blocks)}
    values: dict[Value, Value] = {}
    blocks: dict[Block, Block] = {}
    for block in sorted(reached, key=order.__getitem__):
        copy = into.add_block(block.name)
        copy.span = block.span
        blocks[block] = copy
        if block is source.entry and entry_values is not None:
            values.update(zip(block.args, entry_values, strict=True))
            continue
        for arg in block.args:
            values[arg] = copy.add_argument(arg.type, arg.name)
    clone_instructions(reached, blocks, values)
    return ClonedBody(blocks, values)


def clone_instructions(
    region: Sequence[Block],
    blocks: Mapping[Block, Block],
    values: dict[Value, Value],
    successors: Mapping[Block, Block] | None = None,
) -> None:
    """Append copies of the instructions of ``region``'s blocks to their copies ``blocks[b]``,
    recording each result's copy in ``values``, which must already map what the region uses from
    outside and its blocks' arguments. ``region`` lists each definition's block before its uses'
    (reverse postorder does); successors are mapped through ``successors`` (default ``blocks``)."""
    targets = blocks if successors is None else successors
    for block in region:
        copy = blocks[block]
        for inst in block.instructions:
            made = copy.append(clone_instruction(inst, values, targets))
            for old, new in zip(inst.results, made.results, strict=True):
                values[old] = new
                new.name = old.name
