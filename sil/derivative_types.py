"""The types SIL-SPEC §6 derives from an original function's type.

Used by the verifier to check ``[differentiable]`` attributes, ``differentiable_function`` and
``gradient``, and by the transforms to build what they synthesize. The legacy primal and adjoint
types are ``differentiation/legacy``'s (``forms.py``), built from these.
"""

from __future__ import annotations

from typing import TypeGuard

from sil.ir import Module
from sil.types import FunctionType, TupleType, Type, tuple_or_single


class DerivativeTypeError(Exception):
    """The original cannot be differentiated as asked; the message says why."""


def differentiable_params(module: Module, fn: FunctionType) -> tuple[int, ...]:
    """Indices of the parameters of differentiable type not marked ``@noDerivative``."""
    return tuple(
        i
        for i, (param, nd) in enumerate(zip(fn.params, fn.no_derivative))
        if not nd and module.tangent_type(param) is not None
    )


def resolve_wrt(module: Module, fn: FunctionType, wrt: tuple[int, ...] | None) -> tuple[int, ...]:
    """The parameter indices to differentiate with respect to (None: every differentiable one)."""
    if wrt is None:
        found = differentiable_params(module, fn)
        if not found:
            raise DerivativeTypeError("function has no parameter of differentiable type")
        return found
    if not wrt:
        raise DerivativeTypeError("'wrt' lists no parameter")
    if list(wrt) != sorted(set(wrt)):
        raise DerivativeTypeError("'wrt' indices must be increasing and distinct")
    for i in wrt:
        if not 0 <= i < len(fn.params):
            raise DerivativeTypeError(
                f"'wrt' index {i} is out of range: the function has {len(fn.params)} parameters"
            )
        if fn.no_derivative[i]:
            raise DerivativeTypeError(f"parameter {i} is marked @noDerivative")
        if module.tangent_type(fn.params[i]) is None:
            raise DerivativeTypeError(f"parameter {i} of type {fn.params[i]} is not differentiable")
    return wrt


def several_results(t: Type) -> TypeGuard[TupleType]:
    """Whether a function whose result has type ``t`` has several results: a tuple of more than
    one element has one per element (SIL-SPEC §3)."""
    return isinstance(t, TupleType) and len(t.elements) > 1


def differentiable_results(module: Module, fn: FunctionType) -> tuple[int, ...]:
    """Indices of the results of differentiable type: what ``source`` omitted means (§3)."""
    results = fn.results if several_results(fn.result) else (fn.result,)
    return tuple(i for i, r in enumerate(results) if module.tangent_type(r) is not None)


def resolve_sources(module: Module, fn: FunctionType, sources: tuple[int, ...] | None) -> tuple[int, ...]:
    """The results to differentiate (None: every one of differentiable type, SIL-SPEC §3; of a
    function with one result, that result, so that a result without a tangent is named)."""
    if sources is None:
        if not several_results(fn.result):
            sources = (0,)
        else:
            found = differentiable_results(module, fn)
            if not found:
                raise DerivativeTypeError("function has no result of differentiable type")
            return found
    if not sources:
        raise DerivativeTypeError("'source' lists no result")
    if list(sources) != sorted(set(sources)):
        raise DerivativeTypeError("'source' indices must be increasing and distinct")
    for i in sources:
        source_tangent(module, fn, i)
    return sources


def source_tangent(module: Module, fn: FunctionType, source: int) -> Type:
    """The tangent type of result ``source`` (an element when the result is a tuple)."""
    results = fn.results
    if isinstance(fn.result, TupleType) and len(results) != 1:
        if not 0 <= source < len(results):
            raise DerivativeTypeError(
                f"'source' index {source} is out of range: the function has {len(results)} results"
            )
        chosen = results[source]
    else:
        if source != 0:
            raise DerivativeTypeError(f"'source' index {source} is out of range: one result")
        chosen = fn.result
    tangent = module.tangent_type(chosen)
    if tangent is None:
        raise DerivativeTypeError(f"result {source} of type {chosen} is not differentiable")
    return tangent


def wrt_tangents(module: Module, fn: FunctionType, wrt: tuple[int, ...]) -> tuple[Type, ...]:
    """The tangent types of the parameters ``wrt``, in order."""
    tangents = []
    for i in wrt:
        tangent = module.tangent_type(fn.params[i])
        assert tangent is not None
        tangents.append(tangent)
    return tuple(tangents)


def results_tangent(module: Module, fn: FunctionType, sources: tuple[int, ...]) -> Type:
    """The tangent of the results ``sources``: one result's, or a tuple of theirs (labeled as the
    result tuple is), which for every result of differentiable type is the result's tangent."""
    tangents = tuple(source_tangent(module, fn, i) for i in sources)
    if len(tangents) == 1:
        return tangents[0]
    assert isinstance(fn.result, TupleType)
    return TupleType(tangents, tuple(fn.result.labels[i] for i in sources))


def jvp_type(
    module: Module, fn: FunctionType, sources: tuple[int, ...], wrt: tuple[int, ...]
) -> FunctionType:
    """``(A, B) -> (R, @callee_guaranteed (A', B') -> R')``."""
    differential = FunctionType(
        wrt_tangents(module, fn, wrt), results_tangent(module, fn, sources), "callee_guaranteed"
    )
    return FunctionType(fn.params, TupleType((fn.result, differential)))


def vjp_type(
    module: Module, fn: FunctionType, sources: tuple[int, ...], wrt: tuple[int, ...]
) -> FunctionType:
    """``(A, B) -> (R, @callee_guaranteed (R') -> (A', B'))``; one parameter: a bare tangent."""
    pullback = FunctionType(
        (results_tangent(module, fn, sources),),
        tuple_or_single(wrt_tangents(module, fn, wrt)),
        "callee_guaranteed",
    )
    return FunctionType(fn.params, TupleType((fn.result, pullback)))


def gradient_type(
    module: Module,
    fn: FunctionType,
    source: int,
    wrt: tuple[int, ...],
    seedable: bool,
    preserving_result: bool,
) -> FunctionType:
    """What ``gradient`` yields: the original's parameters (and the seed last, if seedable) to the
    gradients (after the original result, if preserving it)."""
    seed = source_tangent(module, fn, source)
    params = (*fn.params, seed) if seedable else fn.params
    grads = wrt_tangents(module, fn, wrt)
    result = TupleType((fn.result, *grads)) if preserving_result else tuple_or_single(grads)
    return FunctionType(params, result)


def differentiable_bundle_type(fn: FunctionType, params: tuple[int, ...]) -> FunctionType:
    """The ``@differentiable(reverse)`` type of ``fn`` bundled for ``params``: the others become
    ``@noDerivative``."""
    no_derivative = tuple(i not in params for i in range(len(fn.params)))
    return FunctionType(fn.params, fn.result, fn.convention, "reverse", no_derivative)
