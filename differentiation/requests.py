"""What a module asks the differentiation passes for, and the derivatives it registers.

The checker (``diagnostics.py``) and the passes (``passes.py``) read requests from here, so that
what is checked is what is emitted; every lookup of a registered derivative goes through
``registered_derivative``, so that a registered derivative wins wherever one answers.
"""

from __future__ import annotations

import attrs

from analysis.activity import Config
from sil import derivative_types as dt
from sil.instructions import DifferentiableFunctionInst, FunctionRefInst, GradientInst
from sil.ir import DifferentiableAttr, Function, Instruction, Module, Result

KINDS = ("jvp", "vjp")


def registered_derivative(
    module: Module, fn: Function, config: Config, kind: str, exact: bool = False
) -> tuple[Function, tuple[int, ...]] | None:
    """The derivative of ``kind`` ("jvp" or "vjp") a ``[differentiable]`` attribute of ``fn``
    registers for ``config``, and the parameters it covers: those of ``config`` when one registers
    exactly them, else (unless ``exact``) one for a superset of them, as Swift's derivative lookup
    allows (a request that needs exactly ``config``'s type then gets a subset-parameters thunk:
    ``thunks.py``). None when no attribute answers."""
    superset = None
    for attr in fn.attributes:
        if not isinstance(attr, DifferentiableAttr):
            continue
        name = attr.jvp if kind == "jvp" else attr.vjp
        derivative = module.functions.get(name) if name is not None else None
        if derivative is None:
            continue
        try:
            registered = attribute_config(module, fn, attr)
        except dt.DerivativeTypeError:  # the verifier reports it
            continue
        if registered.sources != config.sources:  # results are answered exactly
            continue
        covered = registered.wrt
        if covered == config.wrt:
            return derivative, covered
        if superset is None and not exact and set(config.wrt) <= set(covered):
            superset = derivative, covered
    return superset


def attribute_config(module: Module, fn: Function, attr: DifferentiableAttr) -> Config:
    """What a ``[differentiable]`` attribute of ``fn`` registers or asks for, its omitted
    ``source`` and ``wrt`` resolved (SIL-SPEC §3); DerivativeTypeError where the verifier objects."""
    return Config(dt.resolve_sources(module, fn.type, attr.source), dt.resolve_wrt(module, fn.type, attr.wrt))


def bundle_config(module: Module, original: Function, inst: DifferentiableFunctionInst) -> Config:
    """What a ``differentiable_function`` of ``original`` asks for: its parameters, and every
    result of differentiable type, which is all its ``[results …]`` may list."""
    return Config(dt.resolve_sources(module, original.type, None), inst.parameters)


@attrs.frozen
class Request:
    """Derivatives of the kinds ``kinds`` of ``function`` for ``config``, asked for by ``site`` (a
    ``differentiable_function`` or a ``gradient``; None for a ``[differentiable]`` attribute)."""

    function: Function
    config: Config
    kinds: tuple[str, ...]
    site: Instruction | None

    def unanswered(self, module: Module) -> tuple[str, ...]:
        """The kinds no registered derivative answers (one for more parameters answers through
        a subset-parameters thunk): those to synthesize from the body."""
        fn, config = self.function, self.config
        return tuple(k for k in self.kinds if registered_derivative(module, fn, config, k) is None)


def derivative_requests(module: Module) -> list[Request]:
    """Every request of the module: the derivatives ``[differentiable]`` attributes of functions
    with a body lack, then each ``differentiable_function`` and ``gradient`` of a ``function_ref``."""
    found = []
    for fn in list(module.functions.values()):
        if fn.is_declaration:
            continue
        for attr in fn.attributes:
            if not isinstance(attr, DifferentiableAttr) or (attr.jvp is not None and attr.vjp is not None):
                continue
            try:
                config = attribute_config(module, fn, attr)
            except dt.DerivativeTypeError:  # the verifier reports it
                continue
            lacking = tuple(k for k in KINDS if getattr(attr, k) is None)
            found.append(Request(fn, config, lacking, None))
    for original, inst, config in bundle_requests(module):
        found.append(Request(original, config, KINDS, inst))
    for original, gradient in gradient_requests(module):
        config = Config(gradient.source, gradient.wrt)
        found.append(Request(original, config, ("vjp",), gradient))
    return found


def bundle_requests(module: Module) -> list[tuple[Function, DifferentiableFunctionInst, Config]]:
    """Each ``differentiable_function`` of a ``function_ref`` without derivatives yet, with the
    function it bundles (with a body or not) and the configuration it asks for."""
    found = []
    for fn in list(module.functions.values()):
        for inst in fn.instructions():
            if isinstance(inst, DifferentiableFunctionInst) and len(inst.operands) == 1:
                original = _referenced(module, inst.original)
                if original is None:
                    continue
                try:
                    found.append((original, inst, bundle_config(module, original, inst)))
                except dt.DerivativeTypeError:  # the verifier reports it
                    continue
    return found


def gradient_requests(module: Module) -> list[tuple[Function, GradientInst]]:
    """Each ``gradient`` of a ``function_ref``, with the function it differentiates (with a body
    or not)."""
    found = []
    for fn in list(module.functions.values()):
        for inst in fn.instructions():
            if isinstance(inst, GradientInst):
                original = _referenced(module, inst.operands[0])
                if original is not None:
                    found.append((original, inst))
    return found


def _referenced(module: Module, value: object) -> Function | None:
    if isinstance(value, Result) and isinstance(value.owner, FunctionRefInst):
        return module.functions.get(value.owner.function_name)
    return None
