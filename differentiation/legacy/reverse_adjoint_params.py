"""``-reverse-adjoint-params``, the first SR-9395 step: an adjoint's parameters go from the 2018
order ``(A…, Checkpoints, R, R')`` to the order Swift adopted, ``(R', Checkpoints, R, A…)``: the
seed first, so that partial application (which binds trailing arguments) can later bind everything
but the seed. Every call of the adjoint is rewritten to match; a use of the adjoint the pass cannot
follow (passing it as a value, partially applying it) is refused with a diagnostic. Each attribute
naming a reversed adjoint then ends in ``seed_first`` (SIL-SPEC §6): the order is read from there,
never from types, so a second run changes nothing."""

from __future__ import annotations

import attrs

from differentiation.legacy.pairs import legacy_form, legacy_pairs
from differentiation.legacy.records import references_to
from sil.diagnostics import Diagnostic, SILError, note
from sil.instructions import ApplyInst, FunctionRefInst
from sil.ir import Function, Instruction, LegacyDifferentiableAttr, Module
from sil.passes import Pass, PassContext, register_pass
from sil.types import FunctionType


def _original_form_adjoints(module: Module) -> list[tuple[Function, LegacyDifferentiableAttr]]:
    """(adjoint, attribute) for each legacy attribute whose adjoint is in the 2018 order: one
    that does not end in ``seed_first``."""
    found = []
    seen: set[str] = set()
    for fn, attr in legacy_pairs(module):
        assert attr.adjoint is not None
        adjoint = module.functions[attr.adjoint]
        if legacy_form(module, fn, attr) == "original" and adjoint.name not in seen:
            seen.add(adjoint.name)
            found.append((adjoint, attr))
    return found


def reversed_order(count: int) -> list[int]:
    """For an adjoint of ``count`` parameters ``(A…, C, R, R')``: the old index of each new one."""
    originals = count - 3
    return [count - 1, originals, originals + 1, *range(originals)]


@register_pass
class ReverseAdjointParams(Pass):
    """Puts each legacy adjoint's seed first and the original arguments last."""

    name = "reverse-adjoint-params"
    description = "Reorder legacy adjoints' parameters to (seed, checkpoints, result, arguments)"

    def run(self, module: Module, ctx: PassContext) -> None:
        plans: list[tuple[Function, list[int], list[FunctionRefInst]]] = []
        problems: list[Diagnostic] = []
        for adjoint, attr in _original_form_adjoints(module):
            order = reversed_order(len(adjoint.type.params))
            references = references_to(module, adjoint.name)
            for ref in references:
                for user in ref.result.uses:
                    if not (
                        isinstance(user, ApplyInst)
                        and user.callee is ref.result
                        and ref.result not in user.args
                    ):
                        problems.append(_cannot_follow(user, adjoint, attr))
            plans.append((adjoint, order, references))
        if problems:
            raise SILError(problems)
        for adjoint, order, references in plans:
            t = adjoint.type
            new_type = FunctionType(tuple(t.params[i] for i in order), t.result, t.convention)
            if adjoint.blocks:
                adjoint.blocks[0].permute_args(order)
            adjoint.set_type(new_type)
            for ref in references:
                ref.retarget(new_type)
                for user in list(dict.fromkeys(ref.result.uses)):
                    assert isinstance(user, ApplyInst)
                    args = user.args
                    user.set_operands([user.callee, *[args[i] for i in order]])
        _state_seed_first(module, {adjoint.name for adjoint, _, _ in plans})


def _state_seed_first(module: Module, adjoints: set[str]) -> None:
    """Every attribute naming one of ``adjoints`` ends in ``seed_first`` from now on."""
    for fn in module.functions.values():
        fn.attributes = [
            attrs.evolve(a, seed_first=True)
            if isinstance(a, LegacyDifferentiableAttr) and a.adjoint in adjoints
            else a
            for a in fn.attributes
        ]


def _cannot_follow(user: Instruction, adjoint: Function, attr: LegacyDifferentiableAttr) -> Diagnostic:
    return Diagnostic(
        "error",
        f"cannot reverse the parameters of '@{adjoint.name}': this '{user.opname}' uses it other than "
        "by calling it",
        user.span,
        [note(attr.span, "the adjoint of this attribute")],
    )
