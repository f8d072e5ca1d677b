"""``-differentiation`` and ``-lower-gradient``: answer the module's derivative requests."""

from __future__ import annotations

import attrs

from analysis.activity import Config
from differentiation.diagnostics import DifferentiabilityChecker
from differentiation.differentiator import Differentiator
from differentiation.legacy.pairs import legacy_pair
from differentiation.naming import gradient_name
from differentiation.requests import attribute_config, bundle_requests, gradient_requests
from differentiation.thunks import pick_tangents
from sil import derivative_types as dt
from sil.builder import Builder
from sil.diagnostics import SILError
from sil.instructions import (
    DifferentiableFunctionExtractInst,
    DifferentiableFunctionInst,
    FunctionRefInst,
    GradientInst,
)
from sil.ir import DifferentiableAttr, Function, FunctionAttr, Instruction, Module, Result, Value
from sil.passes import Pass, PassContext, register_pass
from sil.types import TensorType


def _check(module: Module) -> None:
    errors = DifferentiabilityChecker(module).check_module()
    if errors:
        raise SILError(errors)


def _stand_in(request: Instruction, *values: Value) -> None:
    """The instructions defining ``values`` replace ``request``: they take its place in the source,
    so that a fault or a diagnostic at one of them (``--max-steps`` running out there, a check of
    the bundle) points at the line the user wrote."""
    for value in values:
        if isinstance(value, Result) and value.owner is not None:
            value.owner.span = request.span


@register_pass
class Differentiation(Pass):
    """Answers every derivative request, after checking that all can be differentiated: the JVP
    and VJP a ``[differentiable]`` attribute lacks, the derivatives of each ``differentiable_function``
    of a ``function_ref`` (which then names them: ``with_derivative``), and the VJP of each function
    a ``gradient`` differentiates."""

    name = "differentiation"
    description = "Synthesize JVPs, VJPs, differentials and pullbacks for the module's derivative requests"

    def run(self, module: Module, ctx: PassContext) -> None:
        _check(module)
        d = Differentiator(module)
        saved: list[tuple[Function, list[FunctionAttr]]] = []
        try:
            for fn in list(module.functions.values()):
                if fn.is_declaration:
                    continue
                for i, attr in enumerate(fn.attributes):
                    if isinstance(attr, DifferentiableAttr) and (attr.vjp is None or attr.jvp is None):
                        config = attribute_config(module, fn, attr)
                        jvp_name = attr.jvp or d.jvp_for(fn, config).name
                        vjp_name = attr.vjp or d.vjp_for(fn, config).name
                        saved.append((fn, list(fn.attributes)))
                        fn.attributes[i] = attrs.evolve(attr, jvp=jvp_name, vjp=vjp_name)
            bundles = [
                (inst, d.jvp_for(original, config), d.vjp_for(original, config))
                for original, inst, config in bundle_requests(module)
            ]
            for original, inst in gradient_requests(module):
                config = Config(inst.source, inst.wrt)
                if legacy_pair(module, original, config) is None:
                    d.derivative_for(original, config, "vjp", exact=False)
        except SILError:
            for fn, attributes in reversed(saved):
                fn.attributes = attributes
            d.roll_back()
            raise
        for request, jvp, vjp in bundles:
            b = Builder.before(request, module)
            jvp_ref, vjp_ref = b.function_ref(jvp), b.function_ref(vjp)
            bundle = b.differentiable_function(
                request.original, request.parameters, jvp_ref, vjp_ref, request.result_indices
            )
            _stand_in(request, jvp_ref, vjp_ref, bundle)
            request.result.replace_all_uses_with(bundle)
            request.erase()


@register_pass
class LowerGradient(Pass):
    """Replaces each ``gradient`` with a reference to a synthesized ``@AD__f__grad_…`` function: it
    calls the VJP, seeds the pullback with 1 (or the seed argument, ``[seedable]``) and returns the
    gradients (after the original result, ``[preserving_result]``)."""

    name = "lower-gradient"
    description = "Turn gradient into calls of synthesized gradient functions, and extracts into references"

    def run(self, module: Module, ctx: PassContext) -> None:
        self._lower_extracts(module)
        requests = gradient_requests(module)
        if not requests:
            return
        _check(module)
        d = Differentiator(module)
        try:
            built: dict[str, Function] = {}
            for original, inst in requests:
                name = gradient_name(
                    original.name, Config(inst.source, inst.wrt), inst.seedable, inst.preserving_result
                )
                if name not in built:
                    built[name] = self._gradient_function(d, original, inst, name)
        except SILError:
            d.roll_back()
            raise
        for original, inst in requests:
            name = gradient_name(
                original.name, Config(inst.source, inst.wrt), inst.seedable, inst.preserving_result
            )
            ref = Builder.before(inst, module).function_ref(built[name])
            _stand_in(inst, ref)
            inst.result.replace_all_uses_with(ref)
            inst.erase()

    @staticmethod
    def _lower_extracts(module: Module) -> None:
        """``differentiable_function_extract`` of a bundle that names its derivatives becomes the
        value it extracts; a bundle left unused goes."""
        for fn in module.functions.values():
            for inst in list(fn.instructions()):
                if not isinstance(inst, DifferentiableFunctionExtractInst):
                    continue
                bundle = inst.operands[0]
                owner = bundle.owner if isinstance(bundle, Result) else None
                if not isinstance(owner, DifferentiableFunctionInst) or len(owner.operands) != 3:
                    continue
                part = {"original": 0, "jvp": 1, "vjp": 2}[inst.extractee]
                inst.result.replace_all_uses_with(owner.operands[part])
                inst.erase()
                if not owner.result.uses:
                    references = [op for op in owner.operands[1:] if isinstance(op, Result)]
                    owner.erase()
                    for ref in references:  # the derivatives' function_refs, if nothing else uses them
                        if isinstance(ref.owner, FunctionRefInst) and not ref.uses:
                            ref.owner.erase()

    @staticmethod
    def _gradient_function(d: Differentiator, original: Function, inst: GradientInst, name: str) -> Function:
        """``@AD__f__grad_…``: the VJP (registered or synthesized) and its pullback, or for a
        function still in the legacy form, its primal and then its adjoint."""
        module = d.module
        config = Config(inst.source, inst.wrt)
        existing = module.functions.get(name)
        if existing is not None:
            if existing.type != inst.type:
                raise SILError.at(inst.span, f"'@{name}' exists with another type than this gradient's")
            return existing
        legacy = legacy_pair(module, original, config)
        vjp: Function | None = None
        covered = inst.wrt
        if legacy is None:  # a registered VJP for more parameters answers too
            vjp, covered = d.derivative_for(original, config, "vjp", exact=False)
        grad = Function(name, inst.type)
        d.add_function(grad)
        block = grad.add_block("bb0")
        params = [block.add_argument(t) for t in inst.type.params]
        b = Builder.at_end(block, module)
        arguments = params[:-1] if inst.seedable else params
        if legacy is not None:
            primal, adjoint, form = legacy
            checkpoints, result = b.destructure_tuple(b.apply(b.function_ref(primal), *arguments))
        else:
            assert vjp is not None
            result, pullback = b.destructure_tuple(b.apply(b.function_ref(vjp), *arguments))
        seed_type = dt.source_tangent(module, original.type, inst.source)
        seed: Value
        if inst.seedable:
            seed = params[-1]
        elif isinstance(seed_type, TensorType):
            raise SILError.at(inst.span, "a gradient of a tensor result needs a seed: use [seedable]")
        else:
            seed = b.float_literal(seed_type, 1.0)
        tangents: Value
        if legacy is not None:
            adjoint_arguments = {
                "original": [*arguments, checkpoints, result, seed],
                "reversed": [seed, checkpoints, result, *arguments],
                "moved": [seed, checkpoints],
            }[form]
            tangents = b.apply(b.function_ref(adjoint), *adjoint_arguments)
        else:
            tangents = pick_tangents(b, b.apply(pullback, seed), covered, inst.wrt)
        if inst.preserving_result:
            parts = [tangents] if len(inst.wrt) == 1 else list(b.destructure_tuple(tangents))
            b.return_(b.tuple(result, *parts))
        else:
            b.return_(tangents)
        return grad
