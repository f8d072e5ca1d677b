"""``-differentiation`` and ``-lower-gradient``: answer the module's derivative requests."""

from __future__ import annotations

import attrs

from analysis.activity import Config
from differentiation.diagnostics import DifferentiabilityChecker
from differentiation.differentiator import Differentiator
from differentiation.naming import gradient_name
from sil import derivative_types as dt
from sil.builder import Builder
from sil.diagnostics import SILError
from sil.instructions import FunctionRefInst, GradientInst
from sil.ir import DifferentiableAttr, Function, FunctionAttr, Module, Result, Value
from sil.passes import Pass, PassContext, register_pass
from sil.types import TensorType


def _check(module: Module) -> None:
    errors = DifferentiabilityChecker(module).check_module()
    if errors:
        raise SILError(errors)


@register_pass
class Differentiation(Pass):
    """Synthesizes the VJP of every ``[differentiable]`` function that lacks one, and of every
    function a ``gradient`` differentiates, after checking that all of them can be differentiated."""

    name = "differentiation"
    description = "Synthesize VJPs and pullbacks for the module's derivative requests"

    def run(self, module: Module, ctx: PassContext) -> None:
        _check(module)
        d = Differentiator(module)
        saved: list[tuple[Function, list[FunctionAttr]]] = []
        try:
            for fn in list(module.functions.values()):
                if fn.is_declaration:
                    continue
                for i, attr in enumerate(fn.attributes):
                    if isinstance(attr, DifferentiableAttr) and attr.vjp is None:
                        config = Config(attr.source, dt.resolve_wrt(module, fn.type, attr.wrt))
                        vjp = d.vjp(fn, config)
                        saved.append((fn, list(fn.attributes)))
                        fn.attributes[i] = attrs.evolve(attr, vjp=vjp.name)
            for original, inst in gradient_requests(module):
                d.vjp(original, Config(inst.source, inst.wrt))
        except SILError:
            for fn, attributes in reversed(saved):
                fn.attributes = attributes
            d.roll_back()
            raise


def gradient_requests(module: Module) -> list[tuple[Function, GradientInst]]:
    """Each ``gradient`` of a ``function_ref`` of a function with a body, with that function."""
    found = []
    for fn in list(module.functions.values()):
        for inst in fn.instructions():
            if not isinstance(inst, GradientInst):
                continue
            operand = inst.operands[0]
            if isinstance(operand, Result) and isinstance(operand.owner, FunctionRefInst):
                original = module.functions.get(operand.owner.function_name)
                if original is not None and not original.is_declaration:
                    found.append((original, inst))
    return found


@register_pass
class LowerGradient(Pass):
    """Replaces each ``gradient`` with a reference to a synthesized ``@AD__f__grad_…`` function: it
    calls the VJP, seeds the pullback with 1 (or the seed argument, ``[seedable]``) and returns the
    gradients (after the original result, ``[preserving_result]``)."""

    name = "lower-gradient"
    description = "Turn each gradient instruction into a call of a synthesized gradient function"

    def run(self, module: Module, ctx: PassContext) -> None:
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
            inst.result.replace_all_uses_with(ref)
            inst.erase()

    @staticmethod
    def _gradient_function(d: Differentiator, original: Function, inst: GradientInst, name: str) -> Function:
        module = d.module
        config = Config(inst.source, inst.wrt)
        existing = module.functions.get(name)
        if existing is not None:
            if existing.type != inst.type:
                raise SILError.at(inst.span, f"'@{name}' exists with another type than this gradient's")
            return existing
        vjp = d.vjp(original, config)
        grad = Function(name, inst.type)
        d.add_function(grad)
        block = grad.add_block("bb0")
        params = [block.add_argument(t) for t in inst.type.params]
        b = Builder.at_end(block, module)
        arguments = params[:-1] if inst.seedable else params
        result, pullback = b.destructure_tuple(b.apply(b.function_ref(vjp), *arguments))
        seed_type = dt.source_tangent(module, original.type, inst.source)
        seed: Value
        if inst.seedable:
            seed = params[-1]
        elif isinstance(seed_type, TensorType):
            raise SILError.at(inst.span, "a gradient of a tensor result needs a seed: use [seedable]")
        else:
            seed = b.float_literal(seed_type, 1.0)
        tangents = b.apply(pullback, seed)
        if inst.preserving_result:
            parts = [tangents] if len(inst.wrt) == 1 else list(b.destructure_tuple(tangents))
            b.return_(b.tuple(result, *parts))
        else:
            b.return_(tangents)
        return grad
