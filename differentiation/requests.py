"""What a module asks the differentiation passes for, and the derivatives it registers.

The checker (``diagnostics.py``) and the passes (``passes.py``) read requests from here, so that
what is checked is what is emitted; every lookup of a registered derivative goes through
``registered_derivative``, so that a registered derivative wins wherever one answers.

A form of derivative the core does not know (the legacy primal and adjoint) answers ``gradient``
requests by registering a ``GradientForm`` (``register_gradient_form``): ``differentiation/legacy``
does, when it is imported, as every lookup of a pass imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import attrs

from analysis.activity import Config
from sil import derivative_types as dt
from sil.builder import Builder
from sil.instructions import (
    BUNDLE_PARTS,
    DifferentiableFunctionExtractInst,
    DifferentiableFunctionInst,
    FunctionRefInst,
    GradientInst,
)
from sil.ir import DifferentiableAttr, Function, Instruction, Module, Result, Value

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


class GradientParts(Protocol):
    """How a gradient function gets what it returns, emitted through ``b`` in it: ``call`` on the
    original's arguments gives the original's result, then ``tangents`` of the seed the gradients
    (for the parameters the gradient asks for)."""

    def call(self, b: Builder, arguments: Sequence[Value]) -> Value: ...

    def tangents(self, b: Builder, seed: Value) -> Value: ...


GradientForm = Callable[[Module, Function, Config], GradientParts | None]
"""What answers a ``gradient`` of a function for a configuration, if anything does."""

_GRADIENT_FORMS: list[GradientForm] = []


def register_gradient_form(form: GradientForm) -> None:
    """Let ``form`` answer ``gradient`` requests, before a VJP is looked for or synthesized."""
    if form not in _GRADIENT_FORMS:
        _GRADIENT_FORMS.append(form)


def gradient_form(module: Module, fn: Function, config: Config) -> GradientParts | None:
    """What a registered form answers a ``gradient`` of ``fn`` for ``config`` with; None: a VJP,
    registered or synthesized, answers it."""
    for form in _GRADIENT_FORMS:
        found = form(module, fn, config)
        if found is not None:
            return found
    return None


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
        a subset-parameters thunk; a registered form a ``gradient``): those to synthesize from
        the body."""
        fn, config = self.function, self.config
        if isinstance(self.site, GradientInst) and gradient_form(module, fn, config) is not None:
            return ()
        return tuple(k for k in self.kinds if registered_derivative(module, fn, config, k) is None)


Lowered = Mapping[Value, Value]
"""What -lower-gradient will replace: each ``differentiable_function_extract`` of a bundle that
names its derivatives, by the value it extracts (``named_extracts``). A check run before the
rewrite sees the module through it, as the emitters will see it after."""

NOTHING_LOWERED: Lowered = {}


def named_extracts(module: Module) -> list[tuple[DifferentiableFunctionExtractInst, int]]:
    """Each ``differentiable_function_extract`` of a bundle that names its derivatives, with the
    operand of the bundle it extracts (0 the original, 1 the JVP, 2 the VJP), in module order."""
    found = []
    for fn in module.functions.values():
        for inst in fn.instructions():
            if isinstance(inst, DifferentiableFunctionExtractInst):
                bundle = inst.operands[0]
                owner = bundle.owner if isinstance(bundle, Result) else None
                if isinstance(owner, DifferentiableFunctionInst) and owner.has_derivatives:
                    found.append((inst, BUNDLE_PARTS[inst.extractee]))
    return found


def lowered_view(extracts: list[tuple[DifferentiableFunctionExtractInst, int]]) -> Lowered:
    """The ``Lowered`` of ``named_extracts``."""
    view: dict[Value, Value] = {}
    for inst, part in extracts:
        bundle = inst.operands[0]
        assert isinstance(bundle, Result) and bundle.owner is not None
        view[inst.result] = bundle.owner.operands[part]
    return view


def seen_lowered(value: Value, lowered: Lowered) -> Value:
    """What ``value`` will be once the extracts ``lowered`` holds are lowered."""
    while value in lowered:
        value = lowered[value]
    return value


def derivative_requests(module: Module, lowered: Lowered = NOTHING_LOWERED) -> list[Request]:
    """Every request of the module: the derivatives ``[differentiable]`` attributes of functions
    with a body lack, then each ``differentiable_function`` and ``gradient`` of a ``function_ref``
    (once ``lowered`` is)."""
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
    for original, inst, config in bundle_requests(module, lowered):
        found.append(Request(original, config, KINDS, inst))
    for original, gradient in gradient_requests(module, lowered):
        config = Config(gradient.source, gradient.wrt)
        found.append(Request(original, config, ("vjp",), gradient))
    return found


def bundle_requests(
    module: Module, lowered: Lowered = NOTHING_LOWERED
) -> list[tuple[Function, DifferentiableFunctionInst, Config]]:
    """Each ``differentiable_function`` of a ``function_ref`` (once ``lowered`` is) without
    derivatives yet, with the function it bundles (with a body or not) and the configuration it
    asks for."""
    found = []
    for fn in list(module.functions.values()):
        for inst in fn.instructions():
            if isinstance(inst, DifferentiableFunctionInst) and not inst.has_derivatives:
                original = _referenced(module, seen_lowered(inst.original, lowered))
                if original is None:
                    continue
                try:
                    found.append((original, inst, bundle_config(module, original, inst)))
                except dt.DerivativeTypeError:  # the verifier reports it
                    continue
    return found


def gradient_requests(
    module: Module, lowered: Lowered = NOTHING_LOWERED
) -> list[tuple[Function, GradientInst]]:
    """Each ``gradient`` of a ``function_ref`` (once ``lowered`` is), with the function it
    differentiates (with a body or not)."""
    found = []
    for fn in list(module.functions.values()):
        for inst in fn.instructions():
            if isinstance(inst, GradientInst):
                original = _referenced(module, seen_lowered(inst.operands[0], lowered))
                if original is not None:
                    found.append((original, inst))
    return found


def _referenced(module: Module, value: object) -> Function | None:
    if isinstance(value, Result) and isinstance(value.owner, FunctionRefInst):
        return module.functions.get(value.owner.function_name)
    return None
