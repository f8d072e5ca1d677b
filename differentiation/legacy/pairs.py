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
        if (attr.source, dt.resolve_wrt(module, fn.type, attr.wrt)) != (config.source, config.wrt):
            continue
        form = legacy_form(module, fn, attr)
        if form is not None:
            return module.functions[attr.primal], module.functions[attr.adjoint], form
    return None


def _matching_forms(module: Module, fn: Function, attr: LegacyDifferentiableAttr) -> list[str]:
    """The forms (``legacy_adjoint_forms``) whose type the attribute's adjoint has: several when the
    types cannot tell (one parameter of the seed's and the result's type: ``(R, C, R, R)``)."""
    if attr.primal is None or attr.adjoint is None:
        return []
    primal, adjoint = module.functions[attr.primal], module.functions[attr.adjoint]
    wrt = dt.resolve_wrt(module, fn.type, attr.wrt)
    forms = dt.legacy_adjoint_forms(module, fn.type, attr.source, wrt, primal.type.results[0])
    return [name for name, t in forms.items() if t == adjoint.type]


def module_form(module: Module) -> str:
    """The migration step the module's adjoints are at, told by the adjoints whose type is
    unambiguous (the passes move every adjoint of a module at once); ``original`` when none tells."""
    for fn in module.functions.values():
        for attr in fn.attributes:
            if isinstance(attr, LegacyDifferentiableAttr):
                forms = _matching_forms(module, fn, attr)
                if len(forms) == 1:
                    return forms[0]
    return "original"


def legacy_form(module: Module, fn: Function, attr: LegacyDifferentiableAttr) -> str | None:
    """The form the attribute's adjoint is in (None: none of the three)."""
    forms = _matching_forms(module, fn, attr)
    if len(forms) > 1:
        return module_form(module) if module_form(module) in forms else forms[0]
    return forms[0] if forms else None


def answering_vjp(module: Module, fn: Function, config: Config) -> Function | None:
    """The VJP a ``[differentiable]`` attribute of ``fn`` names for exactly ``config``."""
    found = registered_derivative(module, fn, config, "vjp", exact=True)
    return found[0] if found is not None else None
