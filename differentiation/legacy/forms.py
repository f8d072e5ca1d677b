"""The types of the legacy form (SIL-SPEC §6): a ``reverse_differentiable`` attribute's primal,
and its adjoint in each form the SR-9395 migration leaves it in. The core's derivative types are
in ``sil/derivative_types.py``; these are built from the same pieces."""

from __future__ import annotations

from sil import derivative_types as dt
from sil.ir import Module
from sil.types import FunctionType, TupleType, Type, tuple_or_single


def legacy_primal_type(fn: FunctionType, checkpoints: Type) -> FunctionType:
    """``(A, B) -> (Checkpoints, R)``."""
    return FunctionType(fn.params, TupleType((checkpoints, fn.result)))


def legacy_adjoint_forms(
    module: Module, fn: FunctionType, source: int, wrt: tuple[int, ...], checkpoints: Type
) -> dict[str, FunctionType]:
    """The types an adjoint takes along the SR-9395 migration (SIL-SPEC §6): ``original``
    ``(A, B, Checkpoints, R, R')``; ``reversed`` by -reverse-adjoint-params, ``(R', Checkpoints, R,
    A, B)``; ``moved`` by -move-originals-into-checkpoints, ``(R', Checkpoints)``."""
    seed = dt.source_tangent(module, fn, source)
    result = tuple_or_single(dt.wrt_tangents(module, fn, wrt))
    return {
        "original": FunctionType((*fn.params, checkpoints, fn.result, seed), result),
        "reversed": FunctionType((seed, checkpoints, fn.result, *fn.params), result),
        "moved": FunctionType((seed, checkpoints), result),
    }


def stated_adjoint_forms(
    module: Module, fn: FunctionType, source: int, wrt: tuple[int, ...], checkpoints: Type, seed_first: bool
) -> dict[str, FunctionType]:
    """The forms of ``legacy_adjoint_forms`` that a legacy attribute allows: ``original`` where it
    does not end in ``seed_first``, else ``reversed`` or ``moved`` (which differ in arity). The
    attribute states the order because types cannot: ``(Float, C, Float, Float)`` reads both ways."""
    forms = legacy_adjoint_forms(module, fn, source, wrt, checkpoints)
    return {name: t for name, t in forms.items() if (name != "original") == seed_first}
