"""Which functions are still in the legacy form: a ``reverse_differentiable`` attribute naming a
primal and an adjoint, for a configuration no modern VJP answers."""

from __future__ import annotations

from analysis.activity import Config
from differentiation.requests import registered_derivative
from sil import derivative_types as dt
from sil.ir import Function, LegacyDifferentiableAttr, Module


def legacy_pair(module: Module, fn: Function, config: Config) -> tuple[Function, Function, str] | None:
    """The primal and adjoint of ``fn``'s legacy attribute for ``config``, and the form the adjoint
    is in (``original``, ``reversed``, ``moved``: see ``legacy_adjoint_forms``); None when ``fn``
    has none, or a modern VJP for ``config`` answers instead."""
    if answering_vjp(module, fn, config) is not None:
        return None
    for attr in fn.attributes:
        if not isinstance(attr, LegacyDifferentiableAttr) or attr.primal is None or attr.adjoint is None:
            continue
        if ((attr.source,), dt.resolve_wrt(module, fn.type, attr.wrt)) != (config.sources, config.wrt):
            continue
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
    forms = dt.stated_adjoint_forms(module, fn.type, attr.source, wrt, checkpoints, attr.seed_first)
    return next((name for name, t in forms.items() if t == adjoint.type), None)


def answering_vjp(module: Module, fn: Function, config: Config) -> Function | None:
    """The VJP a ``[differentiable]`` attribute of ``fn`` names for exactly ``config``."""
    found = registered_derivative(module, fn, config, "vjp", exact=True)
    return found[0] if found is not None else None
