"""``-checkpoint-active-applies``, an SR-9395 step: in a primal, a call of another function's primal
whose checkpoints go into the record and, in the adjoint, to that function's adjoint, becomes a call
of that function's VJP; the record keeps the VJP's pullback instead of the nested checkpoints, and
the adjoint calls the pullback instead of the other adjoint. Nested primal values disappear.

The rewrite is safe when the adjoint's call passes exactly what the VJP binds: the checkpoints the
primal call returned, and (seed-first form) its result and arguments, each read back from the
record or from the adjoint's own original arguments. Anything else is left as it is, and a nested
call the pass cannot follow is reported, so it never miscompiles. Needs the callee's VJP
(-synthesize-vjp) and a seed-first adjoint (-reverse-adjoint-params).
"""

from __future__ import annotations

import attrs

from differentiation.legacy.pairs import answering_vjp, legacy_form, legacy_pairs
from differentiation.legacy.records import reread_record, rewrite_unless_refused
from sil.builder import Builder
from sil.diagnostics import Diagnostic
from sil.instructions import (
    ApplyInst,
    DestructureStructInst,
    DestructureTupleInst,
    FunctionRefInst,
    ReturnInst,
    StructExtractInst,
    StructInst,
    TupleInst,
)
from sil.ir import (
    Function,
    Instruction,
    LegacyDifferentiableAttr,
    Module,
    Result,
    StructDecl,
    Value,
)
from sil.passes import Pass, PassContext, register_pass


@attrs.define
class _Rewrite:
    """One nested call to turn into a VJP call, found and checked before anything changes."""

    record: StructDecl
    field: int  # the record field that held the callee's checkpoints
    call: ApplyInst  # the primal's call of the callee's primal
    parts: DestructureTupleInst  # (checkpoints, result) of that call
    vjp: Function  # the callee's VJP
    adjoint_call: ApplyInst  # the adjoint's call of the callee's adjoint


class _Pair:
    """A legacy function's primal and adjoint, and how adjoint values stand for primal values."""

    def __init__(self, module: Module, fn: Function, attr: LegacyDifferentiableAttr, form: str) -> None:
        assert attr.primal is not None and attr.adjoint is not None
        self.module = module
        self.fn = fn
        self.primal = module.functions[attr.primal]
        self.adjoint = module.functions[attr.adjoint]
        self.form = form
        record = module.struct(str(self.primal.type.results[0]))
        assert record is not None
        self.record = record
        self.built = _built_record(self.primal)

    def primal_value(self, v: Value) -> Value | None:
        """The primal value an adjoint value is a copy of: a record field read back, or (in the
        seed-first form) the original result or an original argument passed again."""
        if isinstance(v, Result) and self.built is not None:
            owner = v.owner
            if isinstance(owner, StructExtractInst) and self._is_record_param(owner.operands[0]):
                index = [f.name for f in self.record.fields].index(owner.field)
                return self.built.operands[index]
            if isinstance(owner, DestructureStructInst) and self._is_record_param(owner.operands[0]):
                return self.built.operands[owner.results.index(v)]
        if self.form == "reversed" and self.adjoint.blocks and self.primal.blocks:
            args = self.adjoint.blocks[0].args
            if v is args[2] and self.built is not None:
                return _returned_result(self.primal)
            if v in args[3:]:
                return self.primal.blocks[0].args[args.index(v) - 3]
        return None

    def _is_record_param(self, v: Value) -> bool:
        return bool(self.adjoint.blocks) and v is self.adjoint.blocks[0].args[1]


def _built_record(primal: Function) -> StructInst | None:
    if len(primal.blocks) != 1:
        return None
    term = primal.blocks[0].terminator
    if isinstance(term, ReturnInst):
        pair = term.operands[0]
        if isinstance(pair, Result) and isinstance(pair.owner, TupleInst):
            record = pair.owner.operands[0]
            if isinstance(record, Result) and isinstance(record.owner, StructInst):
                return record.owner
    return None


def _returned_result(primal: Function) -> Value | None:
    term = primal.blocks[0].terminator
    assert isinstance(term, ReturnInst)
    pair = term.operands[0]
    return pair.owner.operands[1] if isinstance(pair, Result) and isinstance(pair.owner, TupleInst) else None


def _referenced(v: Value) -> str | None:
    if isinstance(v, Result) and isinstance(v.owner, FunctionRefInst):
        return v.owner.function_name
    return None


@register_pass
class CheckpointActiveApplies(Pass):
    """Turns nested primal/adjoint calls into a VJP call whose pullback the record keeps."""

    name = "checkpoint-active-applies"
    description = "Call callees' VJPs in primals and keep their pullbacks instead of nested checkpoints"

    def run(self, module: Module, ctx: PassContext) -> None:
        pairs: dict[str, tuple[Function, LegacyDifferentiableAttr]] = {}  # callee primal -> its function
        for fn, attr in legacy_pairs(module):
            assert attr.primal is not None
            pairs[attr.primal] = (fn, attr)
        rewrites: list[_Rewrite] = []
        problems: list[Diagnostic] = []
        for fn, attr in pairs.values():
            form = legacy_form(module, fn, attr)
            if form not in ("reversed", "moved"):
                continue
            pair = _Pair(module, fn, attr, form)
            for inst in pair.primal.instructions():
                callee = _referenced(inst.operands[0]) if isinstance(inst, ApplyInst) else None
                if callee is None or callee not in pairs:
                    continue
                assert isinstance(inst, ApplyInst)
                found = self._plan(module, pair, inst, *pairs[callee])
                if isinstance(found, Diagnostic):
                    problems.append(found)
                else:
                    rewrites.append(found)
        rewrite_unless_refused(rewrites, problems, lambda rewrite: self._rewrite(module, rewrite))

    def _plan(
        self, module: Module, pair: _Pair, call: ApplyInst, callee: Function, attr: LegacyDifferentiableAttr
    ) -> _Rewrite | Diagnostic:
        def refuse(message: str, where: Instruction = call) -> Diagnostic:
            return Diagnostic(
                "error", f"cannot checkpoint this call of '@{attr.primal}': {message}", where.span
            )

        vjp = answering_vjp(module, callee, attr)
        if vjp is None:
            return refuse(f"'@{callee.name}' has no VJP (run -synthesize-vjp first)")
        parts = [u for u in call.result.uses if isinstance(u, DestructureTupleInst)]
        if len(call.result.uses) != 1 or len(parts) != 1:
            return refuse("its (checkpoints, result) pair is not simply taken apart")
        checkpoints, result = parts[0].results
        if pair.built is None or [u for u in checkpoints.uses] != [pair.built]:
            return refuse("its checkpoints go elsewhere than into the record")
        field = pair.built.operands.index(checkpoints)
        callee_form = legacy_form(module, callee, attr)
        calls = [
            inst
            for inst in pair.adjoint.instructions()
            if isinstance(inst, ApplyInst) and _referenced(inst.operands[0]) == attr.adjoint
        ]
        matching = [c for c in calls if pair.primal_value(c.operands[2]) is checkpoints]
        if len(matching) != 1:
            return refuse(
                f"'@{pair.adjoint.name}' does not call '@{attr.adjoint}' once with these checkpoints"
            )
        adjoint_call = matching[0]
        if callee_form == "reversed":
            expected = [result, *call.args]
            passed = [pair.primal_value(v) for v in adjoint_call.operands[3:]]
            if passed != expected:
                return refuse("the adjoint is not given the result and arguments of this call", adjoint_call)
        elif callee_form != "moved":
            return refuse(f"'@{attr.adjoint}' is not seed-first (run -reverse-adjoint-params first)")
        reads = adjoint_call.operands[2]
        if len(reads.uses) != 1:
            return refuse("the adjoint uses these checkpoints for more than this call", adjoint_call)
        return _Rewrite(pair.record, field, call, parts[0], vjp, adjoint_call)

    def _rewrite(self, module: Module, r: _Rewrite) -> None:
        # The primal calls the VJP; the record keeps its pullback.
        b = Builder.before(r.call, module)
        value, pullback = b.destructure_tuple(b.apply(b.function_ref(r.vjp), *r.call.args))
        old_checkpoints, old_result = r.parts.results
        value.name, pullback.name = old_result.name, old_checkpoints.name
        old_result.replace_all_uses_with(value)
        field = r.record.fields[r.field]
        r.record.fields[r.field] = attrs.evolve(field, type=pullback.type)
        built = old_checkpoints.uses[0]
        assert isinstance(built, StructInst)
        operands = [pullback if op is old_checkpoints else op for op in built.operands]
        rebuilt = Builder.before(built, module).struct(built.type, *operands)
        rebuilt.name = built.result.name
        built.result.replace_all_uses_with(rebuilt)
        built.erase()
        r.parts.erase()
        callee_ref = r.call.operands[0]
        r.call.erase()
        _erase_unused_ref(callee_ref)
        # Everything that reads the record reads the new field type; the adjoint calls the pullback.
        reads = r.adjoint_call.operands[2]
        seed = r.adjoint_call.operands[1]
        reads = reread_record(module, r.record).get(reads, reads)
        new_call = Builder.before(r.adjoint_call, module).apply(reads, seed)
        new_call.name = r.adjoint_call.result.name
        r.adjoint_call.result.replace_all_uses_with(new_call)
        adjoint_ref = r.adjoint_call.operands[0]
        r.adjoint_call.erase()
        _erase_unused_ref(adjoint_ref)


def _erase_unused_ref(v: Value) -> None:
    if isinstance(v, Result) and isinstance(v.owner, FunctionRefInst) and not v.uses:
        v.owner.erase()
