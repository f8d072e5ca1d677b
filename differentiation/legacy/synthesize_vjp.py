"""``-synthesize-vjp``, the second SR-9395 step: for each legacy primal/adjoint pair, a VJP made by
partial application. It applies the primal, then binds the adjoint's trailing parameters (the
checkpoints, the result and the original arguments; the adjoint must take the seed first, so
``-reverse-adjoint-params`` runs before, and the attribute says so: ``seed_first``) and returns the
result with that closure, the pullback.
The function gains ``[differentiable source S wrt … vjp @AD__f__vjp_src_S_wrt_…]``."""

from __future__ import annotations

from analysis.activity import Config
from differentiation.legacy.pairs import answering_vjp, legacy_config, legacy_form, legacy_pairs
from differentiation.naming import vjp_name
from sil import derivative_types as dt
from sil.builder import Builder
from sil.diagnostics import Diagnostic, SILError, note
from sil.ir import DifferentiableAttr, Function, LegacyDifferentiableAttr, Module
from sil.passes import Pass, PassContext, register_pass


@register_pass
class SynthesizeVJP(Pass):
    """Gives each legacy pair a VJP: the primal, then the adjoint partially applied."""

    name = "synthesize-vjp"
    description = "Synthesize a VJP from each legacy primal and adjoint, by partial application"

    def run(self, module: Module, ctx: PassContext) -> None:
        work: list[tuple[Function, LegacyDifferentiableAttr, Config, str, str]] = []
        problems: list[Diagnostic] = []
        for fn, attr in legacy_pairs(module):
            config = legacy_config(module, fn, attr)
            if answering_vjp(module, fn, attr) is not None:
                continue
            form = legacy_form(module, fn, attr)
            name = vjp_name(fn.name, config)
            if form is None:  # an adjoint of a type its attribute does not state: the verifier says so
                continue
            if form == "original":
                problems.append(
                    Diagnostic(
                        "error",
                        f"cannot synthesize a VJP from '@{attr.adjoint}': "
                        "its seed is not its first parameter (the attribute does not end in "
                        "'seed_first')",
                        attr.span,
                        [note(None, "run -reverse-adjoint-params first")],
                    )
                )
            elif name in module.functions:
                problems.append(
                    Diagnostic("error", f"cannot synthesize '@{name}': the name is taken", attr.span)
                )
            else:
                work.append((fn, attr, config, name, form))
        if problems:
            raise SILError(problems)
        for fn, attr, config, name, form in work:
            vjp = _vjp(module, fn, attr, config, name, form)
            fn.attributes.append(DifferentiableAttr((attr.source,), attr.wrt, None, vjp.name))


def _vjp(
    module: Module, fn: Function, attr: LegacyDifferentiableAttr, config: Config, name: str, form: str
) -> Function:
    assert attr.primal is not None and attr.adjoint is not None
    primal, adjoint = module.functions[attr.primal], module.functions[attr.adjoint]
    vjp = module.add_function(Function(name, dt.vjp_type(module, fn.type, config.sources, config.wrt)))
    block = vjp.add_block("bb0")
    names = [a.name for a in fn.blocks[0].args] if fn.blocks else [None] * len(fn.type.params)
    arguments = [block.add_argument(t, n) for t, n in zip(fn.type.params, names)]
    b = Builder.at_end(block, module)
    checkpoints, result = b.destructure_tuple(b.apply(b.function_ref(primal), *arguments))
    checkpoints.name, result.name = "checkpoints", "result"
    bound = [checkpoints, result, *arguments] if form == "reversed" else [checkpoints]
    pullback = b.partial_apply(b.function_ref(adjoint), *bound)
    b.return_(b.tuple(result, pullback))
    return vjp
