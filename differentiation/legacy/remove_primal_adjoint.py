"""``-remove-primal-adjoint``, the step of SR-9395 that ends the legacy form: each
``reverse_differentiable … primal … adjoint …`` attribute goes once a ``differentiable … vjp …``
attribute answers the same configuration; the primal and adjoint stay, as ordinary functions that
the VJP calls. An attribute with no VJP to take over is refused (run -synthesize-vjp first)."""

from __future__ import annotations

from differentiation.legacy.pairs import answering_vjp, legacy_config
from sil.diagnostics import Diagnostic, SILError
from sil.ir import LegacyDifferentiableAttr, Module
from sil.passes import Pass, PassContext, register_pass


@register_pass
class RemovePrimalAdjoint(Pass):
    """Drops the legacy attributes that a VJP attribute has taken over."""

    name = "remove-primal-adjoint"
    description = "Drop reverse_differentiable attributes whose configuration a VJP now answers"

    def run(self, module: Module, ctx: PassContext) -> None:
        problems = []
        for fn in module.functions.values():
            for attr in fn.attributes:
                if isinstance(attr, LegacyDifferentiableAttr):
                    config = legacy_config(module, fn, attr)
                    if answering_vjp(module, fn, attr) is None:
                        problems.append(
                            Diagnostic(
                                "error",
                                f"cannot remove the primal and adjoint of '@{fn.name}': no VJP answers "
                                f"{config.describe()} (run -synthesize-vjp first)",
                                attr.span,
                            )
                        )
        if problems:
            raise SILError(problems)
        for fn in module.functions.values():
            fn.attributes = [a for a in fn.attributes if not isinstance(a, LegacyDifferentiableAttr)]
