"""Common-subexpression elimination: a pure instruction that repeats one in a dominating position
(same opcode, same operands, same attributes, same result types) is replaced by it.

The walk is the classic scoped one (as MLIR's CSE and LLVM's EarlyCSE do): a preorder walk of the
dominator tree with a table of the instructions available, each block's entries dropped when its
subtree is done, so an instruction is looked up once, in constant time.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Hashable

import attrs

from sil.cfg import DominatorTree
from sil.instructions import DifferentiableFunctionExtractInst, DifferentiableFunctionInst, GradientInst
from sil.ir import Block, Function, Instruction, Module
from sil.passes import Pass, PassContext, register_pass
from sil.transforms.before_ad import block_bound, differentiated_functions, optimizable_functions

_NOT_ATTRIBUTES = frozenset({"operands", "_results", "block", "location"})

# Requests to the differentiation passes are left one per place written: a diagnostic about one
# must stay located where the source asked for it.
_KEPT = (GradientInst, DifferentiableFunctionInst, DifferentiableFunctionExtractInst)


@register_pass
class CommonSubexpressionElimination(Pass):
    """Reuses the value of a pure instruction computed in a dominating position."""

    name = "cse"
    description = (
        "Replace a pure instruction by an identical one (operands, attributes, literal bit "
        "patterns) that dominates it"
    )

    def run(self, module: Module, ctx: PassContext) -> None:
        differentiated = differentiated_functions(module)
        for fn in optimizable_functions(module, ctx):
            stays = functools.partial(block_bound, module=module) if fn.name in differentiated else None
            eliminate_common_subexpressions(fn, stays)


_ATTRIBUTES: dict[type[Instruction], tuple[str, ...]] = {}


def _attribute_names(cls: type[Instruction]) -> tuple[str, ...]:
    """The fields of an instruction class besides operands and place (its schema's attributes)."""
    names = _ATTRIBUTES.get(cls)
    if names is None:
        names = _ATTRIBUTES[cls] = tuple(f.name for f in attrs.fields(cls) if f.name not in _NOT_ATTRIBUTES)
    return names


def _hashable(value: object) -> Hashable:
    """An attribute as a key: a float by its bits (-0.0 is not 0.0, NaN payloads differ), a list
    as a tuple."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    assert isinstance(value, Hashable)
    return value


def instruction_key(inst: Instruction) -> Hashable | None:
    """What two instructions must share to compute the same value; None when ``inst`` is not a
    candidate (a terminator, an instruction with effects, a differentiation request)."""
    if inst.is_terminator or inst.has_effects or isinstance(inst, _KEPT):
        return None
    cls = type(inst)
    attributes = tuple(_hashable(getattr(inst, name)) for name in _attribute_names(cls))
    types = tuple(r.type for r in inst.results)
    return (cls, tuple(inst.operands), attributes, types)  # values hash by identity


def eliminate_common_subexpressions(fn: Function, stays: Callable[[Instruction], bool] | None = None) -> int:
    """Replace each pure instruction of ``fn`` that a dominating identical one makes redundant;
    returns how many were erased. Blocks no path reaches are left alone, and so are the
    instructions ``stays`` holds (before differentiation: ``sil.transforms.before_ad.block_bound``)."""
    if not fn.blocks:
        return 0
    tree = DominatorTree(fn)
    available: dict[Hashable, Instruction] = {}
    erased = 0
    # Preorder: (block, None) enters the block; (None, keys) leaves a subtree, forgetting its keys.
    stack: list[tuple[Block | None, list[Hashable] | None]] = [(fn.entry, None)]
    while stack:
        block, added = stack.pop()
        if block is None:
            assert added is not None
            for key in added:
                del available[key]
            continue
        added = []
        dead: set[Instruction] = set()
        for inst in block.instructions:
            key = instruction_key(inst)
            if key is None or (stays is not None and stays(inst)):
                continue
            known = available.get(key)
            if known is None:
                available[key] = inst
                added.append(key)
                continue
            for old, new in zip(inst.results, known.results, strict=True):
                old.replace_all_uses_with(new)
            dead.add(inst)
        if dead:
            block.erase_instructions(dead)
            erased += len(dead)
        stack.append((None, added))
        stack.extend((child, None) for child in reversed(tree.children[block]))
    return erased
