"""The verifier's checks of ``[reverse_differentiable]`` attributes (SIL-SPEC §6), registered with
``sil.verifier`` by this package: the primal returns ``(Checkpoints, R)`` with Checkpoints a
struct, and the adjoint has the type of a form the attribute's stated order allows."""

from __future__ import annotations

from differentiation.legacy.forms import legacy_primal_type, stated_adjoint_forms
from sil.diagnostics import note
from sil.ir import Function, LegacyDifferentiableAttr, StructDecl
from sil.types import TupleType, Type
from sil.verifier import AttributeChecker, Verifier


class LegacyAttributeChecker(AttributeChecker[LegacyDifferentiableAttr]):
    """Checks each legacy attribute's primal and adjoint, and that attributes sharing an adjoint
    agree on the order of its parameters."""

    def __init__(self, verifier: Verifier) -> None:
        super().__init__(verifier)
        self._adjoint_orders: dict[str, LegacyDifferentiableAttr] = {}  # adjoint -> first attribute

    def stated(self, attr: LegacyDifferentiableAttr) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
        return (attr.source,), attr.wrt

    def check(
        self, fn: Function, attr: LegacyDifferentiableAttr, sources: tuple[int, ...], wrt: tuple[int, ...]
    ) -> None:
        v = self.verifier
        checkpoints = self._primal_checkpoints(fn, attr)
        if attr.adjoint is None:
            if attr.seed_first:
                v.error(
                    attr.span, "'seed_first' states the order of an adjoint, but the attribute names none"
                )
            return
        adjoint = v.module.functions.get(attr.adjoint)
        if adjoint is None:
            v.error(attr.span, f"adjoint '@{attr.adjoint}' is not defined")
            return
        self._check_stated_order(attr)
        if checkpoints is None:  # no primal tells it
            checkpoints = self._adjoint_checkpoints(fn, attr, adjoint)
        if checkpoints is None:
            return
        forms = stated_adjoint_forms(v.module, fn.type, attr.source, wrt, checkpoints, attr.seed_first)
        if adjoint.type not in forms.values():
            if attr.seed_first:
                expected = (
                    f"{forms['reversed']} (or {forms['moved']}, its originals moved into the "
                    "checkpoints): the attribute ends in 'seed_first'"
                )
            else:
                expected = f"{forms['original']}: without 'seed_first', the adjoint takes the 2018 order"
            v.error(
                attr.span,
                f"adjoint '@{attr.adjoint}' has type {adjoint.type}, but must have type {expected}",
                [note(adjoint.span, f"'@{attr.adjoint}' defined here")],
            )

    def _primal_checkpoints(self, fn: Function, attr: LegacyDifferentiableAttr) -> Type | None:
        """The checkpoints struct the primal returns, once its type is checked; None when there is
        no primal or it is wrong (reported)."""
        v = self.verifier
        if attr.primal is None:
            return None
        primal = v.module.functions.get(attr.primal)
        if primal is None:
            v.error(attr.span, f"primal '@{attr.primal}' is not defined")
            return None
        results = primal.type.result
        if isinstance(results, TupleType) and len(results.elements) == 2:
            checkpoints = results.elements[0]
            if isinstance(v.module.lookup_type(str(checkpoints)), StructDecl):
                v.check_derivative(attr, "primal", attr.primal, legacy_primal_type(fn.type, checkpoints))
                return checkpoints
        v.error(
            attr.span,
            f"primal '@{attr.primal}' must return (Checkpoints, {fn.type.result}), with Checkpoints a struct",
        )
        return None

    def _adjoint_checkpoints(
        self, fn: Function, attr: LegacyDifferentiableAttr, adjoint: Function
    ) -> Type | None:
        """The checkpoints type an adjoint takes, where no primal tells it: after the original's
        parameters, or after the seed where the attribute says ``seed_first``."""
        v = self.verifier
        params = adjoint.type.params
        at = 1 if attr.seed_first else len(fn.type.params)
        if at >= len(params):
            v.error(attr.span, f"adjoint '@{attr.adjoint}' takes too few parameters")
            return None
        if isinstance(v.module.lookup_type(str(params[at])), StructDecl):
            return params[at]
        where = "after the seed" if attr.seed_first else "after the original's parameters"
        v.error(attr.span, f"adjoint '@{attr.adjoint}' must take the checkpoints struct {where}")
        return None

    def _check_stated_order(self, attr: LegacyDifferentiableAttr) -> None:
        """Attributes that share an adjoint state the same order of its parameters."""
        assert attr.adjoint is not None
        first = self._adjoint_orders.setdefault(attr.adjoint, attr)
        if first.seed_first != attr.seed_first:
            self.verifier.error(
                attr.span,
                f"the attributes naming adjoint '@{attr.adjoint}' disagree on 'seed_first'",
                [note(first.span, "another attribute naming it here")],
            )
