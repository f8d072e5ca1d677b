"""``-move-originals-into-checkpoints``, an SR-9395 step: the original result and arguments, which
an adjoint took as parameters, move into its checkpoints record, and the adjoint becomes
``(R', Checkpoints)``. The primal stores them in the record it builds; the adjoint reads them from
it; calls of the adjoint and partial applications of it (the VJPs of -synthesize-vjp) stop passing
them. What the pass cannot follow is refused with a located diagnostic: a record built elsewhere
than by its primal, a primal that does not build the record it returns, an adjoint not yet in
seed-first order, or used other than by calls and partial applications."""

from __future__ import annotations

import attrs

from differentiation.legacy.pairs import legacy_form, legacy_pairs
from differentiation.legacy.records import references_to, reread_record, rewrite_unless_refused
from sil.builder import Builder
from sil.diagnostics import Diagnostic, Span
from sil.instructions import (
    ApplyInst,
    FunctionRefInst,
    PartialApplyInst,
    ReturnInst,
    StructInst,
    TupleInst,
)
from sil.ir import FieldDecl, Function, LegacyDifferentiableAttr, Module, Result, StructDecl, Value
from sil.passes import Pass, PassContext, register_pass
from sil.types import FunctionType


@attrs.define
class _Plan:
    """One legacy pair to rewrite, with everything the rewrite touches, found before any change."""

    original: Function
    primal: Function
    adjoint: Function
    record: StructDecl
    built: StructInst  # the primal's construction of the record it returns
    returned: Value  # the primal's result value
    new_fields: list[str]
    references: list[FunctionRefInst]


@register_pass
class MoveOriginalsIntoCheckpoints(Pass):
    """Moves each adjoint's original result and arguments into its checkpoints record."""

    name = "move-originals-into-checkpoints"
    description = (
        "Move the original result and arguments into the checkpoints; adjoints take (seed, checkpoints)"
    )

    def run(self, module: Module, ctx: PassContext) -> None:
        plans: list[_Plan] = []
        problems: list[Diagnostic] = []
        for fn, attr in legacy_pairs(module):
            plan = self._plan(module, fn, attr, problems)
            if plan is not None:
                plans.append(plan)
        rewrite_unless_refused(plans, problems, lambda plan: self._rewrite(module, plan))

    def _plan(
        self, module: Module, fn: Function, attr: LegacyDifferentiableAttr, problems: list[Diagnostic]
    ) -> _Plan | None:
        assert attr.primal is not None and attr.adjoint is not None
        form = legacy_form(module, fn, attr)
        if form == "moved":
            return None
        primal, adjoint = module.functions[attr.primal], module.functions[attr.adjoint]

        def refuse(message: str, span: Span | None = attr.span) -> None:
            problems.append(Diagnostic("error", message, span))

        if form != "reversed":
            refuse(
                f"cannot move the originals of '@{fn.name}' into its checkpoints: "
                "run -reverse-adjoint-params first"
            )
            return None
        record = module.struct(str(primal.type.results[0]))
        assert record is not None
        found = _returned_record(primal)
        if found is None:
            refuse(
                f"cannot move originals into the checkpoints: '@{primal.name}' "
                "does not build the record it returns"
            )
            return None
        built, returned = found
        for other in module.functions.values():
            for inst in other.instructions():
                if isinstance(inst, StructInst) and inst.type == record.type and inst is not built:
                    refuse(f"cannot move originals into '{record.name}': it is built here too", inst.span)
        references = references_to(module, adjoint.name)
        for ref in references:
            for user in ref.result.uses:
                calls = isinstance(user, ApplyInst | PartialApplyInst) and user.operands[0] is ref.result
                if not calls or ref.result in user.operands[1:]:
                    refuse(f"cannot rewrite this use of '@{adjoint.name}'", user.span)
        taken = {f.name for f in record.fields}
        arguments = [
            a.name if a.name and not a.name.isdigit() else f"arg{i}"
            for i, a in enumerate(primal.blocks[0].args)
        ]
        new_fields = []
        for name in ["result", *arguments]:
            while name in taken:
                name = "original_" + name
            taken.add(name)
            new_fields.append(name)
        return _Plan(fn, primal, adjoint, record, built, returned, new_fields, references)

    def _rewrite(self, module: Module, plan: _Plan) -> None:
        original, record = plan.original, plan.record
        types = [original.type.result, *original.type.params]
        record.fields = [*record.fields, *[FieldDecl(n, t) for n, t in zip(plan.new_fields, types)]]
        # The primal stores the result and its arguments.
        b = Builder.before(plan.built, module)
        stored = b.struct(record.type, *plan.built.operands, plan.returned, *plan.primal.blocks[0].args)
        stored.name = plan.built.result.name
        plan.built.result.replace_all_uses_with(stored)
        plan.built.erase()
        reread_record(module, record)  # taking the record apart now gives the new fields too
        # The adjoint reads them from the record.
        adjoint = plan.adjoint
        seed_type, record_type = adjoint.type.params[:2]
        if adjoint.blocks:
            entry = adjoint.blocks[0]
            moved = entry.args[2:]
            b = Builder.at_start(entry, module)
            for arg, name in zip(moved, plan.new_fields):
                if arg.uses:
                    value = b.struct_extract(entry.args[1], name)
                    value.name = arg.name
                    arg.replace_all_uses_with(value)
            for arg in moved:
                entry.erase_arg(arg)
        adjoint.set_type(FunctionType((seed_type, record_type), adjoint.type.result, adjoint.type.convention))
        # Calls (seed, record, result, arguments) and partial applications (record, result,
        # arguments) stop passing them.
        for ref in plan.references:
            ref.retarget(adjoint.type)
            for user in list(dict.fromkeys(ref.result.uses)):
                b = Builder.before(user, module)
                if isinstance(user, ApplyInst):
                    replacement = b.apply(user.operands[0], *user.operands[1:3])
                else:
                    replacement = b.partial_apply(user.operands[0], user.operands[1])
                replacement.name = user.result.name
                user.result.replace_all_uses_with(replacement)
                user.erase()


def _returned_record(primal: Function) -> tuple[StructInst, Value] | None:
    """The ``struct`` instruction that builds the record the primal returns, and the returned
    result value, when the primal returns ``tuple (record, result)`` of a record it builds."""
    if len(primal.blocks) != 1:
        return None
    term = primal.blocks[0].terminator
    if not isinstance(term, ReturnInst):
        return None
    pair = term.operands[0]
    if not (isinstance(pair, Result) and isinstance(pair.owner, TupleInst)):
        return None
    record, result = pair.owner.operands
    if isinstance(record, Result) and isinstance(record.owner, StructInst):
        return record.owner, result
    return None
