"""Which functions are still in the legacy form: a ``reverse_differentiable`` attribute naming a
primal and an adjoint, for a configuration no modern VJP answers; and how a ``gradient`` of such a
function calls them (registered with the core's gradient lowering, ``requests.py``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import attrs

from analysis.activity import Config
from differentiation.legacy.forms import stated_adjoint_forms
from differentiation.requests import registered_derivative
from sil import derivative_types as dt
from sil.builder import Builder
from sil.ir import Function, LegacyDifferentiableAttr, Module, Value


def legacy_pairs(module: Module) -> Iterator[tuple[Function, LegacyDifferentiableAttr]]:
    """Each function with a legacy attribute naming both a primal and an adjoint, with it."""
    for fn in module.functions.values():
        for attr in fn.attributes:
            if isinstance(attr, LegacyDifferentiableAttr) and attr.primal and attr.adjoint:
                yield fn, attr


def legacy_config(module: Module, fn: Function, attr: LegacyDifferentiableAttr) -> Config:
    """What a legacy attribute of ``fn`` differentiates: its one result, for its parameters
    resolved (DerivativeTypeError where the verifier objects)."""
    return Config((attr.source,), dt.resolve_wrt(module, fn.type, attr.wrt))


def answering_vjp(module: Module, fn: Function, attr: LegacyDifferentiableAttr) -> Function | None:
    """The VJP a ``[differentiable]`` attribute of ``fn`` registers for exactly what its legacy
    ``attr`` differentiates (-synthesize-vjp adds one), which then answers instead of the pair."""
    try:
        config = legacy_config(module, fn, attr)
    except dt.DerivativeTypeError:  # the verifier reports it
        return None
    found = registered_derivative(module, fn, config, "vjp", exact=True)
    return found[0] if found is not None else None


def legacy_pair(module: Module, fn: Function, config: Config) -> tuple[Function, Function, str] | None:
    """The primal and adjoint of ``fn``'s legacy attribute for ``config``, and the form the adjoint
    is in (``original``, ``reversed``, ``moved``: see ``legacy_adjoint_forms``); None when ``fn``
    has none, or a modern VJP for ``config`` answers instead."""
    for attr in fn.attributes:
        if not isinstance(attr, LegacyDifferentiableAttr) or attr.primal is None or attr.adjoint is None:
            continue
        if legacy_config(module, fn, attr) != config:
            continue
        if answering_vjp(module, fn, attr) is not None:
            return None
        form = legacy_form(module, fn, attr)
        if form is not None:
            return module.functions[attr.primal], module.functions[attr.adjoint], form
    return None


def legacy_form(module: Module, fn: Function, attr: LegacyDifferentiableAttr) -> str | None:
    """The form the attribute's adjoint is in (see ``legacy_adjoint_forms``): the order the
    attribute states (``seed_first`` or the 2018 order), never one guessed from types, which cannot
    tell it (``(R, C, R, R)`` reads both ways); of the two seed-first forms, the one of the adjoint's
    arity. None: no primal and adjoint, or an adjoint of another type (the verifier reports it)."""
    if attr.primal is None or attr.adjoint is None:
        return None
    primal, adjoint = module.functions[attr.primal], module.functions[attr.adjoint]
    wrt = dt.resolve_wrt(module, fn.type, attr.wrt)
    checkpoints = primal.type.results[0]
    forms = stated_adjoint_forms(module, fn.type, attr.source, wrt, checkpoints, attr.seed_first)
    return next((name for name, t in forms.items() if t == adjoint.type), None)


@attrs.define
class LegacyGradient:
    """A gradient of a function in the legacy form, as it is: its primal gives the checkpoints and
    the result, then its adjoint, in its form's order, the gradients."""

    primal: Function
    adjoint: Function
    form: str
    arguments: list[Value] = attrs.field(factory=list)
    checkpoints: Value | None = None
    result: Value | None = None

    def call(self, b: Builder, arguments: Sequence[Value]) -> Value:
        self.arguments = list(arguments)
        self.checkpoints, self.result = b.destructure_tuple(b.apply(b.function_ref(self.primal), *arguments))
        return self.result

    def tangents(self, b: Builder, seed: Value) -> Value:
        assert self.checkpoints is not None and self.result is not None
        passed = {
            "original": [*self.arguments, self.checkpoints, self.result, seed],
            "reversed": [seed, self.checkpoints, self.result, *self.arguments],
            "moved": [seed, self.checkpoints],
        }[self.form]
        return b.apply(b.function_ref(self.adjoint), *passed)


def legacy_gradient(module: Module, fn: Function, config: Config) -> LegacyGradient | None:
    """How a ``gradient`` of ``fn`` for ``config`` calls its legacy pair; None when it has none
    (or a modern VJP answers)."""
    pair = legacy_pair(module, fn, config)
    return None if pair is None else LegacyGradient(*pair)
