"""Subset-parameters thunks: a registered derivative for more parameters than a request asks for,
adapted to exactly those, as Swift's ``getOrCreateSubsetParametersThunkForDerivativeFunction``
does. A VJP thunk's pullback keeps the tangents asked for; a JVP thunk's differential passes zero
tangents for the others. So a registered derivative answers wherever its parameters cover the
request's, whatever type the request needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.activity import Config
from differentiation.linear_map_info import linear_map_type
from differentiation.naming import subset_thunk_name
from differentiation.tangents import TangentBuilder
from sil import derivative_types as dt
from sil.builder import Builder
from sil.ir import Function, Value
from sil.types import TENSOR_SHAPE, FunctionType, TensorType

if TYPE_CHECKING:
    from differentiation.differentiator import Differentiator


def pick_tangents(b: Builder, tangents: Value, covered: tuple[int, ...], wrt: tuple[int, ...]) -> Value:
    """The tangents for the parameters ``wrt`` out of a pullback's for ``covered``."""
    if covered == wrt:
        return tangents
    parts = [tangents] if len(covered) == 1 else list(b.destructure_tuple(tangents))
    picked = [parts[covered.index(i)] for i in wrt]
    return picked[0] if len(picked) == 1 else b.tuple(*picked)


def subset_parameters_thunk(
    d: Differentiator, fn: Function, config: Config, registered: Function, covered: tuple[int, ...], kind: str
) -> Function:
    """The ``kind`` ("jvp" or "vjp") of ``fn`` for exactly ``config``, calling ``registered``, which
    is for the parameters ``covered`` (a superset of ``config.wrt``)."""
    module = d.module
    make = dt.jvp_type if kind == "jvp" else dt.vjp_type
    derivative_type = make(module, fn.type, config.sources, config.wrt)
    name = subset_thunk_name(fn.name, kind, config)
    earlier = module.functions.get(name)  # made by an earlier pass
    if earlier is not None and earlier.type == derivative_type:
        return earlier
    shaped = _zero_tensors(fn, config, covered, kind)
    linear_map = _linear_map_thunk(d, fn, config, registered, covered, kind, derivative_type, shaped)
    thunk = Function(name, derivative_type)
    d.add_function(thunk)
    entry = thunk.add_block("bb0")
    b = Builder.at_end(entry, module)
    params = [entry.add_argument(t) for t in derivative_type.params]
    result, registered_map = b.destructure_tuple(b.apply(b.function_ref(registered), *params))
    shapes = [b.builtin("shape", params[i], type=TENSOR_SHAPE) for i in shaped]
    closure = b.partial_apply(b.function_ref(linear_map), *shapes, registered_map)
    b.return_(b.tuple(result, closure))
    if d.statistics is not None:
        d.statistics.synthesized(f"subset-parameters thunk ({kind.upper()})", thunk)
        d.statistics.synthesized(
            f"subset-parameters thunk ({'differential' if kind == 'jvp' else 'pullback'})", linear_map
        )
    return thunk


def _zero_tensors(fn: Function, config: Config, covered: tuple[int, ...], kind: str) -> list[int]:
    """The tensor parameters a JVP thunk's differential passes a zero tangent for: their shapes
    are bound into its closure."""
    if kind != "jvp":
        return []
    return [i for i in covered if i not in config.wrt and isinstance(fn.type.params[i], TensorType)]


def _linear_map_thunk(
    d: Differentiator,
    fn: Function,
    config: Config,
    registered: Function,
    covered: tuple[int, ...],
    kind: str,
    derivative_type: FunctionType,
    shaped: list[int],
) -> Function:
    """``(own linear map's parameters, the shapes of the ``shaped`` parameters, registered linear
    map) -> own linear map's result``."""
    module = d.module
    own, theirs = (linear_map_type(t) for t in (derivative_type, registered.type))
    linear_kind = "differential" if kind == "jvp" else "pullback"
    params = (*own.params, *[TENSOR_SHAPE] * len(shaped), theirs)
    thunk = Function(subset_thunk_name(fn.name, linear_kind, config), FunctionType(params, own.result))
    d.add_function(thunk)
    entry = thunk.add_block("bb0")
    b = Builder.at_end(entry, module)
    args = [entry.add_argument(t) for t in thunk.type.params]
    inputs, shapes, registered_map = args[: len(own.params)], args[len(own.params) : -1], args[-1]
    if kind == "vjp":
        b.return_(pick_tangents(b, b.apply(registered_map, *inputs), covered, config.wrt))
    else:
        given = dict(zip(config.wrt, inputs))
        zeros = TangentBuilder(b, module, fn.span)
        shape_of = dict(zip(shaped, shapes))
        tangents = [
            given[i]
            if i in given
            else b.builtin("zeros", shape_of[i], type=fn.type.params[i])
            if i in shape_of
            else zeros.materialize(None, fn.type.params[i])
            for i in covered
        ]
        b.return_(b.apply(registered_map, *tangents))
    return thunk
