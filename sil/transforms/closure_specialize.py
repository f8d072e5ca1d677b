"""Closure specialization: calls of known closures become direct calls, and a function given a
known closure is copied for it (Swift's ClosureSpecializer and its autodiff variant, SR-13390).

A closure is known when it is ``partial_apply [callee_guaranteed]`` of a ``function_ref`` (or of
a known closure) or ``thin_to_thick_function`` of one, seen through projections of known
aggregates and through block arguments every incoming value of which is that same closure (or
the argument itself, carried around a loop). A closure that comes out of a call's result, a
switch_enum's payload or a struct built in another function (a VJP's checkpoints record) is not
known here: -inline and -sroa bring those into sight.

1. ``apply %c(args)`` of a known closure ``%c = partial_apply %g(bound…)`` becomes
   ``apply %g(args…, bound…)``: partial application binds the trailing arguments (SIL-SPEC §4).
2. ``apply`` (or ``partial_apply``) of ``function_ref @h`` that passes a known closure of ``@g``
   for parameter ``p``, which ``@h`` applies or passes on in a call, calls
   ``@AD__h__closure_spec_p_g`` instead: a copy of ``@h`` that takes the closure's bound values
   in place of the closure (as its last parameters) and makes the closure itself, so that step 1
   turns its applies into direct calls. One copy serves every call with
   that (function, parameter, callee); the copy is synthesized (``AD__``), so -dead-function-elim
   erases it once nothing calls it. A function with a derivative attribute is not copied (the
   copy would lose its registered derivative), and copies of copies stop at ``MAX_DEPTH``, so
   that a recursion that wraps its closure again on every call cannot make an unbounded chain.

A closure nothing uses any more goes with its ``function_ref`` (making one runs nothing).
"""

from __future__ import annotations

from collections import deque

import attrs

from sil.builder import Builder
from sil.cfg import DominatorTree, predecessors
from sil.cloning import clone_blocks
from sil.instructions import ApplyInst, FunctionRefInst, PartialApplyInst, ThinToThickFunctionInst
from sil.ir import (
    Block,
    BlockArgument,
    DifferentiableAttr,
    FlagAttr,
    Function,
    FunctionAttr,
    Instruction,
    LegacyDifferentiableAttr,
    Module,
    Result,
    Value,
)
from sil.passes import Pass, PassContext, register_pass
from sil.transforms.before_ad import optimizable_functions
from sil.transforms.canonicalize import erase_with_dead_operands, known_projection
from sil.transforms.dead_function_elim import SYNTHESIZED_PREFIX
from sil.types import FunctionType, Type

SPEC_MARK = "__closure_spec_"
MAX_DEPTH = 3
"""How many closure specializations a copy's name may hold, its own, its original's and its
closure callee's together (``@AD__AD__h__closure_spec_0_g__closure_spec_1_k`` holds two): each
removes a closure a caller made, so real programs need few, and a recursion that passes itself
a closure of a copy of itself would otherwise make copies forever."""


@register_pass
class ClosureSpecialize(Pass):
    """Calls known closures directly, and copies functions for the known closures they are given."""

    name = "closure-specialize"
    description = (
        "Call a known closure (partial_apply or thin_to_thick_function of a function_ref) directly, "
        "and specialize a function for a known closure argument"
    )

    def run(self, module: Module, ctx: PassContext) -> None:
        if optimizable_functions(module, ctx):  # none: differentiation rejects the module as written
            specialize_closures(module)


def specialize_closures(module: Module) -> int:
    """Run both steps on every function, and on each copy made; how many calls changed."""
    work = deque(fn for fn in module.functions.values() if not fn.is_declaration)
    changed = 0
    while work:
        fn = work.popleft()
        resolver = ClosureResolver(fn, module)  # the steps add and erase instructions, not blocks
        with fn.batched_edits():  # an insertion or an erase costs O(1), not a scan of the block
            changed += call_closures_directly(fn, resolver)
            made, copies = specialize_call_sites(fn, resolver)
        changed += made
        work.extend(copies)
    return changed


@attrs.frozen
class KnownClosure:
    """A closure whose callee is known: ``apply`` of it is ``apply callee(args…, *bound)``.
    ``made_by`` (a ``partial_apply`` or ``thin_to_thick_function``) dominates every use resolved
    to it, and so do ``callee`` and ``bound``."""

    callee: Result
    bound: tuple[Value, ...]
    made_by: Instruction

    @property
    def function_name(self) -> str:
        owner = self.callee.owner
        assert isinstance(owner, FunctionRefInst)
        return owner.function_name


def _is_closure_type(t: Type) -> bool:
    return isinstance(t, FunctionType) and t.convention == "callee_guaranteed" and not t.differentiable


class ClosureResolver:
    """Finds the known closure behind a value of ``fn`` (memoized; ``fn``'s blocks must not
    change while it is in use, its instructions may)."""

    def __init__(self, fn: Function, module: Module) -> None:
        self.module = module
        self.tree = DominatorTree(fn)
        self._preds: dict[Block, list[Block]] | None = None
        self._fn = fn
        self._memo: dict[Value, KnownClosure | None] = {}
        self._visiting: set[Value] = set()

    def resolve(self, value: Value) -> KnownClosure | None:
        """The known closure ``value`` always is, or None."""
        if not _is_closure_type(value.type):
            return None
        if value in self._memo:
            return self._memo[value]
        if value in self._visiting:  # a cycle through block arguments: not known (and not cached)
            return None
        self._visiting.add(value)
        try:
            found = self._resolve(value)
        finally:
            self._visiting.discard(value)
        self._memo[value] = found
        return found

    def _resolve(self, value: Value) -> KnownClosure | None:
        if isinstance(value, BlockArgument):
            return self._merge(value)
        owner = value.owner if isinstance(value, Result) else None
        if isinstance(owner, ThinToThickFunctionInst):
            ref = owner.operands[0]
            if isinstance(ref, Result) and isinstance(ref.owner, FunctionRefInst):
                return KnownClosure(ref, (), owner)
            return None
        if isinstance(owner, PartialApplyInst):
            ref = owner.callee
            if isinstance(ref, Result) and isinstance(ref.owner, FunctionRefInst):
                return KnownClosure(ref, tuple(owner.args), owner)
            inner = self.resolve(ref)  # a partial application of a known closure binds before it
            return None if inner is None else KnownClosure(inner.callee, (*owner.args, *inner.bound), owner)
        if owner is not None and isinstance(value, Result):
            forwarded = known_projection(owner, self.module)
            if forwarded is not None:
                return self.resolve(forwarded[value.index])
        return None

    def _merge(self, arg: BlockArgument) -> KnownClosure | None:
        """The closure every predecessor passes to ``arg`` (or ``arg`` itself, around a loop), when
        it is one and the same, made in a block that strictly dominates ``arg``'s: no path then
        makes the closure again without passing it to ``arg`` again, so its bound values at a use
        of ``arg`` are the ones it was made with."""
        block = arg.block
        if block is None or block is self._fn.entry or not self.tree.is_reachable(block):
            return None
        if self._preds is None:
            self._preds = predecessors(self._fn)
        index = block.args.index(arg)
        found: KnownClosure | None = None
        for pred in dict.fromkeys(self._preds[block]):
            term = pred.terminator
            passed = [vals for succ, vals in term.successor_args() if succ is block] if term else []
            if not passed or any(len(vals) != len(block.args) for vals in passed):
                return None  # a switch_enum's payload, or a malformed edge
            for vals in passed:
                if vals[index] is arg:  # carried around a loop: the value it had on entry
                    continue
                closure = self.resolve(vals[index])
                if closure is None or (found is not None and closure.made_by is not found.made_by):
                    return None
                found = closure
        if found is None or found.made_by.block is None or found.made_by.block is block:
            return None
        return found if self.tree.dominates(found.made_by.block, block) else None


def call_closures_directly(fn: Function, resolver: ClosureResolver) -> int:
    """Step 1 on ``fn``: each ``apply`` of a known closure calls its callee; how many."""
    applies = [
        inst for block in resolver.tree.order for inst in block.instructions if isinstance(inst, ApplyInst)
    ]
    rewritten = 0
    for inst in applies:
        closure = resolver.resolve(inst.callee) if inst.block is not None else None
        if closure is None:
            continue
        direct = Builder.before(inst).apply(closure.callee, *inst.args, *closure.bound)
        direct.name = inst.result.name
        inst.result.replace_all_uses_with(direct)
        erase_with_dead_operands(inst)
        rewritten += 1
    return rewritten


def specialize_call_sites(fn: Function, resolver: ClosureResolver) -> tuple[int, list[Function]]:
    """Step 2 on ``fn``: each call of a function passing a known closure calls a copy made for it
    (a call may pass several: its rewrite is looked at again); how many calls changed, and the
    copies made (not reused)."""
    module = resolver.module
    calls: list[Instruction] = [
        inst
        for block in reversed(resolver.tree.order)
        for inst in reversed(block.instructions)
        if isinstance(inst, ApplyInst | PartialApplyInst)
    ]
    made: list[Function] = []
    rewritten = 0
    while calls:
        inst = calls.pop()
        assert isinstance(inst, ApplyInst | PartialApplyInst)
        if inst.block is None:
            continue
        found = _specializable_argument(inst, resolver, module)
        if found is None:
            continue
        position, closure, callee = found
        param = _param(inst, callee, position)
        copy = module.functions.get(specialization_name(callee.name, param, closure))
        if copy is None:
            if callee is fn:  # a recursive call: the copy is of the body as edited so far
                for block in fn.blocks:
                    block.commit_edits()
                    block.begin_edits()
            copy = specialize(callee, param, closure, module)
            made.append(copy)
        calls.append(_call_copy(inst, position, closure, copy))
        rewritten += 1
    return rewritten, made


def _param(call: ApplyInst | PartialApplyInst, callee: Function, position: int) -> int:
    """The parameter of ``callee`` that argument ``position`` of ``call`` is given to."""
    return len(callee.type.params) - len(call.args) + position


def _specializable_argument(
    call: ApplyInst | PartialApplyInst, resolver: ClosureResolver, module: Module
) -> tuple[int, KnownClosure, Function] | None:
    """The first argument of ``call`` that is a known closure its callee can be specialized for:
    the argument's position, the closure and the callee."""
    ref = call.callee.owner if isinstance(call.callee, Result) else None
    if not isinstance(ref, FunctionRefInst):
        return None
    callee = module.functions.get(ref.function_name)
    if callee is None:
        return None
    for position, arg in enumerate(call.args):
        closure = resolver.resolve(arg)
        if closure is None or not _copyable(callee):
            continue
        param = _param(call, callee, position)
        name = specialization_name(callee.name, param, closure)
        if name.count(SPEC_MARK) > MAX_DEPTH:
            continue
        existing = module.functions.get(name)
        expected = specialized_type(callee, param, closure, module)
        if expected is None or not _closure_is_used(callee, param):
            continue
        if existing is None or existing.type == expected:
            return position, closure, callee
    return None


def _copyable(fn: Function) -> bool:
    """Whether copies of ``fn`` may stand for it: it has a body whose entry no branch targets
    (its parameters are not block arguments of a loop), and no derivative registered or to be
    synthesized (a copy would have none)."""
    if fn.is_declaration or any(
        isinstance(a, DifferentiableAttr | LegacyDifferentiableAttr) for a in fn.attributes
    ):
        return False
    return not any(fn.entry in block.successors() for block in fn.blocks)


def _closure_is_used(fn: Function, param: int) -> bool:
    """Whether ``fn`` applies its parameter ``param`` or passes it on in a call (where it may be
    specialized in turn): otherwise a copy gains nothing."""
    arg = fn.entry.args[param]
    return any(isinstance(user, ApplyInst | PartialApplyInst) for user in arg.uses)


def specialization_name(function: str, param: int, closure: KnownClosure) -> str:
    """``AD__h__closure_spec_<param>_<callee>``: deterministic, and synthesized (not a root)."""
    return f"{SYNTHESIZED_PREFIX}{function}{SPEC_MARK}{param}_{closure.function_name}"


def specialized_type(fn: Function, param: int, closure: KnownClosure, module: Module) -> FunctionType | None:
    """``fn``'s type with parameter ``param`` replaced by the closure's bound values (last); None
    when the closure's callee cannot be made again inside the copy with the parameter's type."""
    target = module.functions.get(closure.function_name)
    t = fn.type
    kept = len(target.type.params) - len(closure.bound) if target is not None else -1
    if target is None or kept < 0 or param >= len(t.params):
        return None
    remade = FunctionType(target.type.params[:kept], target.type.result, "callee_guaranteed")
    if remade != t.params[param]:
        return None
    bound = tuple(v.type for v in closure.bound)
    if bound != target.type.params[kept:]:
        return None
    return FunctionType((*t.params[:param], *t.params[param + 1 :], *bound), t.result, "thin")


def specialize(fn: Function, param: int, closure: KnownClosure, module: Module) -> Function:
    """Add the copy of ``fn`` that takes ``closure``'s bound values for parameter ``param`` and
    makes the closure itself, its applies of it made direct."""
    t = specialized_type(fn, param, closure, module)
    assert t is not None
    hints: list[FunctionAttr] = [a for a in fn.attributes if isinstance(a, FlagAttr)]
    copy = Function(specialization_name(fn.name, param, closure), t, hints, span=fn.span)
    body = clone_blocks(fn, copy)
    entry = body.blocks[fn.entry]
    old = entry.args[param]
    values = [entry.add_argument(v.type) for v in closure.bound]
    b = Builder.at_start(entry)
    ref = b.function_ref(module.functions[closure.function_name])
    made = b.partial_apply(ref, *values) if values else b.thin_to_thick_function(ref)
    old.replace_all_uses_with(made)
    entry.erase_arg(old)
    module.add_function(copy)
    return copy


def _call_copy(
    call: ApplyInst | PartialApplyInst, position: int, closure: KnownClosure, copy: Function
) -> Instruction:
    """Replace ``call`` by a call of ``copy`` that passes the closure's bound values in place of
    argument ``position``; the new call."""
    args = [*call.args[:position], *call.args[position + 1 :], *closure.bound]
    b = Builder.before(call)
    ref = b.function_ref(copy)
    new = b.apply(ref, *args) if isinstance(call, ApplyInst) else b.partial_apply(ref, *args)
    new.name = call.result.name
    call.result.replace_all_uses_with(new)
    erase_with_dead_operands(call)
    owner = new.owner
    assert owner is not None
    return owner
