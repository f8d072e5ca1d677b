"""Scalar replacement of aggregates: a tuple or struct that is only taken apart becomes its fields.

Two places hold aggregates that an optimizer cannot fold away by looking at one function's
values: block arguments, and the parameters of functions.

- A block argument (of a block every predecessor reaches by ``br`` or ``cond_br``) whose every
  use is a ``tuple_extract``, ``struct_extract`` or ``destructure_*`` becomes one argument per
  field, and each predecessor passes the fields: the operands of a known ``tuple``/``struct``, or
  the results of a ``destructure_*`` inserted before the branch (which -canonicalize folds where
  the aggregate becomes known). A field that is itself only taken apart splits too. An enum
  payload, which a ``switch_enum`` delivers whole, is left alone.
- A synthesized function (``AD__…``, SIL-SPEC §6) whose references are all callees of ``apply``
  or ``partial_apply`` takes the fields of such a parameter instead (Swift's function signature
  optimization calls this argument explosion); every call site passes, or binds, the fields. This
  turns a VJP's checkpoints record into the pullback's parameters. A function a user wrote keeps
  its signature: it is the module's interface.

Splitting an aggregate that is never used would only trade one unused value for several, so an
aggregate splits only when it is used, or has no fields at all (an empty record then goes).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import TypeAlias

from sil.builder import Builder
from sil.instructions import (
    ApplyInst,
    BranchInst,
    CondBranchInst,
    DestructureStructInst,
    DestructureTupleInst,
    FunctionRefInst,
    PartialApplyInst,
    StructExtractInst,
    StructInst,
    TupleExtractInst,
    TupleInst,
    set_edge_arguments,
)
from sil.ir import (
    Block,
    BlockArgument,
    DifferentiableAttr,
    Function,
    Instruction,
    LegacyDifferentiableAttr,
    Module,
    Result,
    Value,
    release_instructions,
)
from sil.passes import Pass, PassContext, register_pass
from sil.references import referenced_functions
from sil.transforms.before_ad import differentiated_functions, optimizable_functions
from sil.transforms.dead_function_elim import SYNTHESIZED_PREFIX
from sil.types import FunctionType, NominalType, TupleType, Type

Split: TypeAlias = "list[Split | None]"
"""How a value is split: one entry per field, None for a field kept whole."""

_PROJECTIONS = (TupleExtractInst, StructExtractInst, DestructureTupleInst, DestructureStructInst)


@register_pass
class ScalarReplacementOfAggregates(Pass):
    """Splits tuples and structs that are only taken apart, in block arguments and in the
    parameters of synthesized functions, into their fields."""

    name = "sroa"
    description = (
        "Split tuple and struct block arguments, and parameters of synthesized (AD__) functions, "
        "that are only taken apart into their fields"
    )

    def run(self, module: Module, ctx: PassContext) -> None:
        if optimizable_functions(module, ctx):  # none: differentiation rejects the module as written
            sroa(module)


def sroa(module: Module) -> int:
    """Split what can be split in ``module``; how many arguments and parameters were split."""
    differentiated = differentiated_functions(module)

    def split_all() -> int:
        return sum(
            split_block_arguments(fn, module, fn.name in differentiated) for fn in module.functions.values()
        )

    splits = split_all()
    exploded = explode_parameters(module)
    if exploded:  # a call site took apart a caller's block argument: it may split now
        splits += split_all()
    return splits + exploded


# --- which values split --------------------------------------------------------------------------


def field_types(t: Type, module: Module) -> tuple[Type, ...] | None:
    """The fields of a tuple or a declared struct, in order; None for any other type."""
    if isinstance(t, TupleType):
        return t.elements
    decl = module.struct(t.name) if isinstance(t, NominalType) else None
    return None if decl is None else tuple(f.type for f in decl.fields)


def _projections(values: Sequence[Value]) -> list[Instruction]:
    """The instructions that use ``values`` (each once)."""
    return list(dict.fromkeys(user for v in values for user in v.uses))


def _field_groups(projections: Sequence[Instruction], count: int, module: Module) -> list[list[Value]]:
    """For each of the ``count`` fields, the results of ``projections`` that stand for it (one
    walk over them: a record can have thousands of fields, each extracted once)."""
    groups: list[list[Value]] = [[] for _ in range(count)]
    positions: dict[str, int] | None = None
    for inst in projections:
        if isinstance(inst, TupleExtractInst):
            groups[inst.index].append(inst.result)
        elif isinstance(inst, StructExtractInst):
            if positions is None:
                t = inst.operands[0].type
                decl = module.struct(t.name) if isinstance(t, NominalType) else None
                assert decl is not None
                positions = {f.name: i for i, f in enumerate(decl.fields)}
            groups[positions[inst.field]].append(inst.result)
        else:
            for group, result in zip(groups, inst.results, strict=True):
                group.append(result)
    return groups


def plan_split(
    values: Sequence[Value], t: Type, module: Module, differentiated: bool = False
) -> Split | None:
    """How values of type ``t`` (all standing for one aggregate) split: None when one of them is
    used other than by a projection, or when nothing uses them and ``t`` has fields. In a function
    differentiation will differentiate (``differentiated``), a differentiable struct with a
    ``@noDerivative`` field stays whole: its projections are what stops the field's derivative."""
    fields = field_types(t, module)
    if fields is None or (differentiated and _guards_a_field(t, module)):
        return None
    users = _projections(values)
    if (fields and not users) or not all(isinstance(u, _PROJECTIONS) for u in users):
        return None
    groups = _field_groups(users, len(fields), module)
    return [plan_split(group, f, module, differentiated) for group, f in zip(groups, fields, strict=True)]


def _guards_a_field(t: Type, module: Module) -> bool:
    decl = module.struct(t.name) if isinstance(t, NominalType) else None
    return decl is not None and decl.differentiable and any(f.no_derivative for f in decl.fields)


def _leaf_types(t: Type, split: Split | None, module: Module) -> Iterator[Type]:
    """The types of the values an aggregate of type ``t`` split by ``split`` becomes."""
    if split is None:
        yield t
        return
    fields = field_types(t, module)
    assert fields is not None
    for f, sub in zip(fields, split, strict=True):
        yield from _leaf_types(f, sub, module)


# --- splitting ------------------------------------------------------------------------------------


def _replace_argument(arg: BlockArgument, split: Split, module: Module) -> None:
    """Put the leaves of ``split`` in place of ``arg`` (erased), its projections replaced by them
    and erased (each use-list filtered once: ``release_instructions``, within batched edits)."""
    block = arg.block
    assert block is not None
    position = block.args.index(arg) + 1
    dead: list[Instruction] = []

    def replace(values: list[Value], t: Type, split: Split | None) -> None:
        nonlocal position
        if split is None:
            name = next((v.name for v in values if v.name is not None and v is not arg), None)
            leaf = block.insert_arg(t, position, name)
            position += 1
            for v in values:
                v.replace_all_uses_with(leaf)
            return
        projections = _projections(values)
        fields = field_types(t, module)
        assert fields is not None
        groups = _field_groups(projections, len(fields), module)
        for group, f, sub in zip(groups, fields, split, strict=True):
            replace(group, f, sub)
        dead.extend(projections)

    replace([arg], arg.type, split)
    release_instructions(dead)
    block.erase_arg(arg)


def flatten(value: Value, t: Type, split: Split | None, b: Builder, module: Module) -> list[Value]:
    """The leaves of ``value`` split by ``split``: a known aggregate's operands, else the results
    of a ``destructure_*`` made with ``b``."""
    if split is None:
        return [value]
    owner = value.owner if isinstance(value, Result) else None
    if isinstance(owner, TupleInst | StructInst):
        parts: Sequence[Value] = owner.operands
    elif isinstance(t, TupleType):
        parts = b.destructure_tuple(value)
    else:
        parts = b.destructure_struct(value)
    fields = field_types(t, module)
    assert fields is not None
    return [
        leaf for p, f, sub in zip(parts, fields, split, strict=True) for leaf in flatten(p, f, sub, b, module)
    ]


def _erase_if_unused(value: Value) -> None:
    """Erase the known aggregate ``value`` when its last use went with the split (nested ones
    too): -canonicalize would, but the pass should not leave its own leftovers."""
    owner = value.owner if isinstance(value, Result) else None
    if not isinstance(owner, TupleInst | StructInst) or owner.block is None or owner.result.uses:
        return
    parts = list(owner.operands)
    owner.erase()
    for part in parts:
        _erase_if_unused(part)


# --- block arguments ------------------------------------------------------------------------------


def split_block_arguments(fn: Function, module: Module, differentiated: bool = False) -> int:
    """Split the aggregate arguments of ``fn``'s blocks that are only taken apart; how many.
    ``differentiated``: differentiation will differentiate ``fn`` (``plan_split``)."""
    if not fn.blocks:
        return 0
    predecessors: dict[Block, list[Instruction]] = {}
    for block in fn.blocks:
        for succ in dict.fromkeys(block.successors()):
            term = block.terminator
            assert term is not None
            predecessors.setdefault(succ, []).append(term)
    splittable = {
        block
        for block in fn.blocks[1:]
        if all(isinstance(t, BranchInst | CondBranchInst) for t in predecessors.get(block, []))
    }
    # Later blocks first: a split there may make a predecessor's argument splittable.
    worklist = [arg for block in fn.blocks if block in splittable for arg in reversed(block.args)]
    if not any(field_types(arg.type, module) is not None for arg in worklist):
        return 0
    splits = 0
    with fn.batched_edits():
        while worklist:
            arg = worklist.pop()
            home = arg.block
            split = plan_split([arg], arg.type, module, differentiated) if home in splittable else None
            if home is None or split is None:
                continue
            splits += 1
            index = home.args.index(arg)
            _replace_argument(arg, split, module)
            worklist += _pass_leaves(home, index, arg.type, split, predecessors.get(home, []), module)
    return splits


def _pass_leaves(
    block: Block, index: int, t: Type, split: Split, predecessors: list[Instruction], module: Module
) -> list[BlockArgument]:
    """Have each predecessor pass the leaves of what it passed as ``block``'s argument ``index``
    (split by ``split``); the block arguments a ``destructure_*`` inserted before a branch now
    takes apart (they may split in turn)."""
    again: list[BlockArgument] = []
    for term in predecessors:
        b = Builder.before(term, module)
        edges: list[list[Value]] = []
        passed: list[Value] = []
        for dest, args in term.successor_args():
            if dest is block:
                passed.append(args[index])
                args = _spliced(args, index, flatten(args[index], t, split, b, module))
            edges.append(list(args))
        set_edge_arguments(term, edges)
        for value in passed:
            _erase_if_unused(value)
        again += [v for v in passed if isinstance(v, BlockArgument)]
    return again


def _spliced(args: Sequence[Value], index: int, leaves: list[Value]) -> list[Value]:
    return [*args[:index], *leaves, *args[index + 1 :]]


# --- parameters of synthesized functions -----------------------------------------------------------


def explode_parameters(module: Module) -> int:
    """Give each synthesized function the fields of its parameters that are only taken apart,
    at every call site too, to a fixed point (a call site's ``destructure_*`` may take apart a
    parameter of its caller); how many parameters were exploded."""
    refs = _function_refs(module)
    pinned = _named_by_attributes(module)
    differentiated = differentiated_functions(module)
    total = 0
    while True:
        exploded = 0
        for fn in module.functions.values():
            if fn.name.startswith(SYNTHESIZED_PREFIX) and fn.blocks and fn.name not in pinned:
                exploded += _explode(fn, refs.get(fn.name, []), module, fn.name in differentiated)
        if not exploded:
            return total
        total += exploded


def _function_refs(module: Module) -> dict[str, list[FunctionRefInst]]:
    refs: dict[str, list[FunctionRefInst]] = {}
    for fn in module.functions.values():
        for inst in fn.instructions():
            if isinstance(inst, FunctionRefInst) and inst.block is not None:
                refs.setdefault(inst.function_name, []).append(inst)
    return refs


def _named_by_attributes(module: Module) -> set[str]:
    """Functions whose signature an attribute fixes: those that have one (its indices name
    parameters) and the derivatives one names."""
    pinned: set[str] = set()
    for fn in module.functions.values():
        if any(isinstance(a, DifferentiableAttr | LegacyDifferentiableAttr) for a in fn.attributes):
            pinned.add(fn.name)
            pinned.update(name for name in referenced_functions(fn, module) if name != fn.name)
    return pinned


def _call_sites(refs: list[FunctionRefInst]) -> list[ApplyInst | PartialApplyInst] | None:
    """The applies and partial applies calling through ``refs``; None when a reference is used
    any other way (passed as a value, converted, bundled)."""
    sites: list[ApplyInst | PartialApplyInst] = []
    for ref in refs:
        for user in dict.fromkeys(ref.result.uses):
            if not isinstance(user, ApplyInst | PartialApplyInst) or ref.result in user.args:
                return None
            sites.append(user)
    return sites


def _explode(fn: Function, refs: list[FunctionRefInst], module: Module, differentiated: bool) -> int:
    sites = _call_sites(refs)
    if sites is None or fn.type.differentiable:
        return 0
    params = len(fn.type.params)
    first_bound = max((params - len(s.args) for s in sites if isinstance(s, PartialApplyInst)), default=0)
    splits: dict[int, Split] = {}
    for i, arg in enumerate(fn.entry.args):
        split = plan_split([arg], arg.type, module, differentiated) if i >= first_bound else None
        if split is not None:
            splits[i] = split
    if not splits:
        return 0
    with fn.batched_edits():
        for i in sorted(splits, reverse=True):
            _replace_argument(fn.entry.args[i], splits[i], module)
    new_type = _exploded_type(fn.type, splits, module)
    fn.set_type(new_type)
    for ref in refs:
        ref.retarget(new_type)
    callers = {site.block.function: None for site in sites if site.block is not None}
    with ExitStack() as batches:
        for caller in callers:
            if caller is not None:
                batches.enter_context(caller.batched_edits())
        for site in sites:
            _explode_call(site, params, splits, module)
    return len(splits)


def _exploded_type(t: FunctionType, splits: dict[int, Split], module: Module) -> FunctionType:
    params: list[Type] = []
    no_derivative: list[bool] = []
    for i, (param, nd) in enumerate(zip(t.params, t.no_derivative, strict=True)):
        leaves = list(_leaf_types(param, splits.get(i), module))
        params += leaves
        no_derivative += [nd] * len(leaves)
    return FunctionType(tuple(params), t.result, t.convention, t.differentiable, tuple(no_derivative))


def _explode_call(
    site: ApplyInst | PartialApplyInst, params: int, splits: dict[int, Split], module: Module
) -> None:
    """Pass (or bind) the leaves of the exploded parameters at ``site``; ``params``: how many
    parameters the callee had before."""
    first = params - len(site.args)  # the parameter the first argument is given to
    given = site.args
    b = Builder.before(site, module)
    args: list[Value] = []
    for i, value in enumerate(given, start=first):
        args += flatten(value, value.type, splits.get(i), b, module)
    site.set_operands([site.callee, *args])
    for value in given:
        _erase_if_unused(value)
