"""Derivatives of derivatives without -O (issue 17, item 1): the four compositions on the golden
differentiation cases, each giving the Hessian of a case's function, checked against central
differences of its gradient, against each other, and for symmetry.

A case's function ``@f`` gets two first derivatives, made by ``-differentiation -lower-gradient``:
``@ho_grad``, its gradient (a call of its VJP and of the pullback that returns), and ``@ho_dir``,
its directional derivative ``x, v -> f'(x) v`` (a call of its JVP and of the differential that
returns). Then, as a researcher would compose them, a second ``-differentiation
-lower-gradient`` differentiates those again, through the closures they apply:

- forward over reverse: the JVP of ``@ho_grad``, whose differential at ``v`` is ``H v``;
- reverse over reverse: the gradient of each result of ``@ho_grad``, a row of ``H``;
- forward over forward: the JVP of ``@ho_dir`` in ``x``, whose differential at ``u`` is ``uᵀ H v``;
- reverse over forward: the gradient of ``@ho_dir`` in ``x``, ``H v``.

A derivative of code with control flow keeps trace enums in its records: the defunctionalized
copies of those enums are ``Differentiable``, their tangents the payloads' with a ``zero`` case.
A tensor's zero, in a record or a payload, is made to the shape the records keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from accel.numpy_backend import NumpyBackend
from interp import Program
from sil import parse
from sil.builder import Builder
from sil.ir import Function, Module, Value
from sil.passes import PassManager, registered_passes
from sil.types import FunctionType, TupleType, Type

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "golden" / "differentiation"
AD = ("differentiation", "lower-gradient")


@attrs.frozen
class Case:
    """A golden case's function, differentiated in parameters ``wrt`` for result ``source``, at
    points near ``point`` (one value a parameter: the others stay as given). A struct parameter's
    value is a tuple of its fields, ``fields[i]`` those of parameter ``i`` its tangent has."""

    path: str
    function: str
    wrt: tuple[int, ...]
    point: tuple[Any, ...]
    source: int | None = None
    fields: dict[int, tuple[int, ...]] = attrs.field(factory=dict, hash=False)

    def start(self) -> np.ndarray:
        """The parameters differentiated at ``point``, flattened."""
        parts = []
        for i in self.wrt:
            value = self.point[i]
            if i in self.fields:
                value = [value[k] for k in self.fields[i]]
            parts.append(np.ravel(np.asarray(value, dtype=np.float64)))
        return np.concatenate(parts)

    @property
    def id(self) -> str:
        return f"{self.path}@{self.function}"


W = np.array([[0.3, -0.2], [0.5, 0.1]])
X = np.array([[0.4, 1.0], [-0.7, 0.2], [0.6, -0.3]])
CASES = [
    Case("vjp_scalars.sil", "poly", (0, 1), (0.7, -1.3)),
    Case("vjp_scalars.sil", "unary_chain", (0,), (0.7,)),
    Case("vjp_calls.sil", "g", (0, 1), (0.6, 1.1)),
    Case("vjp_calls.sil", "cube", (0,), (0.8,)),
    Case("vjp_tuples.sil", "through_tuple", (0,), (0.9,)),
    Case("tuple_calls.sil", "use_second", (0, 1), (0.4, 1.7)),
    Case("tuple_calls.sil", "swap_stats", (0, 1), (0.4, 1.7), source=1),
    Case("structs.sil", "shifted", (0,), (0.3,)),
    Case("structs.sil", "predict", (0, 1), ((0.6, -0.4, 1.5), 0.8), fields={0: (0, 1)}),
    Case("result_selection.sil", "both", (0, 1), (0.7, 0.3)),
    Case("subset_thunks.sil", "mul", (0, 1), (0.7, 0.3)),
    Case("tensors.sil", "layer_mean", (0,), (W, X, 0.1)),
    Case("bias_add.sil", "dense", (0, 1), (W, np.array([[0.2, -0.1]]), X)),
    Case("bias_add.sil", "dense_implicit", (0, 1), (W, np.array([0.2, -0.1]), X)),
    Case("cf/if_else.sil", "piecewise", (0, 1), (0.7, 0.4)),
    Case("cf/if_without_else.sil", "squash", (0,), (0.7,)),
    Case("cf/early_return.sil", "guarded_log", (0, 1), (0.7, 0.4)),
    Case("cf/unreachable.sil", "checked_sqrt", (0,), (0.7,)),
    Case("cf/switch_enum.sil", "activate", (0,), (0.7, 1)),
    Case("cf/counted_loop.sil", "power", (0,), (0.7, 3)),
    Case("cf/while_loop.sil", "grow", (0,), (0.7,)),
    Case("cf/nested_loops.sil", "nested", (0,), (0.7, 2)),
    Case("cf/recursion.sil", "rpow", (0,), (0.7, 3)),
    Case("cf/element_reads.sil", "sum_of_squares", (0,), (W,)),
    Case("cf/tensor_loops.sil", "power_loop", (0,), (W, 3)),
    Case("cf/tensor_loops.sil", "accumulate", (0,), (W, 3)),
]
"""The cases: scalars, structs, calls, tensors, branches, loops and recursion (trace enums carry
derivatives), element reads. Float ones run in their Double shadow, where central differences
are as exact as for Double."""


def _passes(module: Module, names: Sequence[str]) -> None:
    registry = registered_passes()
    PassManager([registry[name]() for name in names], verify_each=True).run(module)


def _function(
    module: Module, name: str, params: Sequence[Any], result: Any
) -> tuple[Function, Builder, list[Value]]:
    fn = module.add_function(Function(name, FunctionType(tuple(params), result)))
    block = fn.add_block("bb0")
    args: list[Value] = [block.add_argument(t) for t in params]
    return fn, Builder.at_end(block, module), args


def _tangent_type(module: Module, t: Type) -> Type:
    tangent = module.tangent_type(t)
    assert tangent is not None
    return tangent


def _first_derivatives(module: Module, case: Case) -> None:
    """``@ho_grad`` and ``@ho_dir`` of the case's function."""
    f = module.functions[case.function]
    params = list(f.type.params)
    tangents = [_tangent_type(module, params[i]) for i in case.wrt]
    source = case.source or 0
    result = f.type.result.elements[source] if isinstance(f.type.result, TupleType) else f.type.result
    grad_type = tangents[0] if len(tangents) == 1 else TupleType(tuple(tangents))
    _, b, args = _function(module, "ho_grad", params, grad_type)
    g = b.gradient(b.function_ref(f), case.wrt, source)
    b.return_(b.apply(g, *args))
    _, b, args = _function(module, "ho_dir", [*params, *tangents], result)
    jvp = b.differentiable_function_extract("jvp", b.differentiable_function(b.function_ref(f), case.wrt))
    value_and_differential = b.apply(jvp, *args[: len(params)])
    tangent = b.apply(b.tuple_extract(value_and_differential, 1), *args[len(params) :])
    # A bundle is of every result (of differentiable type: the cases' are all Double).
    b.return_(tangent if case.source is None else b.tuple_extract(tangent, source))


def _second_derivatives(module: Module, case: Case) -> None:
    """The four compositions of ``@ho_grad`` and ``@ho_dir`` (see the module's docstring)."""
    grad, direction = module.functions["ho_grad"], module.functions["ho_dir"]
    params = list(grad.type.params)
    tangents = [_tangent_type(module, params[i]) for i in case.wrt]
    n = len(params)
    _, b, args = _function(module, "ho_for", [*params, *tangents], grad.type.result)
    jvp = b.differentiable_function_extract("jvp", b.differentiable_function(b.function_ref(grad), case.wrt))
    b.return_(b.apply(b.tuple_extract(b.apply(jvp, *args[:n]), 1), *args[n:]))
    _, b, args = _function(module, "ho_ror", [*params, *tangents], grad.type.result)
    vjp = b.differentiable_function_extract("vjp", b.differentiable_function(b.function_ref(grad), case.wrt))
    cotangent = b.tuple(*args[n:]) if len(tangents) > 1 else args[n]
    b.return_(b.apply(b.tuple_extract(b.apply(vjp, *args[:n]), 1), cotangent))
    _, b, args = _function(module, "ho_fof", [*params, *tangents, *tangents], direction.type.result)
    bundle = b.differentiable_function(b.function_ref(direction), case.wrt)
    jvp = b.differentiable_function_extract("jvp", bundle)
    b.return_(
        b.apply(b.tuple_extract(b.apply(jvp, *args[: n + len(tangents)]), 1), *args[n + len(tangents) :])
    )
    _, b, args = _function(module, "ho_rof", [*params, *tangents], grad.type.result)
    b.return_(b.apply(b.gradient(b.function_ref(direction), case.wrt), *args))


def _vector(value: Any) -> np.ndarray:
    """A value of the parameters' tangents (a scalar, a tensor or a tuple of them) flattened."""
    parts = value if isinstance(value, tuple) else (value,)
    return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])


@attrs.define
class Hessians:
    """The Hessian at ``x`` (the parameters differentiated, flattened) four ways, and by central
    differences of the gradient."""

    program: Program
    case: Case

    def unflattened(self, x: np.ndarray) -> list[Any]:
        """``x`` as the tangents of the parameters differentiated (a struct's: a tuple of the
        fields its tangent has)."""
        values: list[Any] = []
        at = 0
        for i in self.case.wrt:
            if i in self.case.fields:
                count = len(self.case.fields[i])
                values.append(tuple(float(v) for v in x[at : at + count]))
                at += count
                continue
            like = np.asarray(self.case.point[i], dtype=np.float64)
            values.append(x[at : at + like.size].reshape(like.shape) if like.ndim else float(x[at]))
            at += like.size
        return values

    def point(self, x: np.ndarray) -> list[Any]:
        values = list(self.case.point)
        for i, value in zip(self.case.wrt, self.unflattened(x), strict=True):
            if i in self.case.fields:
                fields = list(values[i])
                for k, v in zip(self.case.fields[i], value, strict=True):
                    fields[k] = v
                value = tuple(fields)
            values[i] = value
        return values

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return _vector(self.program.run("@ho_grad", *self.point(x)))

    def compositions(self, x: np.ndarray) -> dict[str, np.ndarray]:
        basis = [self.unflattened(e) for e in np.eye(len(x))]
        run, at = self.program.run, self.point(x)
        return {
            "forward over reverse": np.column_stack([_vector(run("@ho_for", *at, *e)) for e in basis]),
            "reverse over reverse": np.column_stack([_vector(run("@ho_ror", *at, *e)) for e in basis]),
            "forward over forward": np.array([[run("@ho_fof", *at, *v, *u) for v in basis] for u in basis]),
            "reverse over forward": np.column_stack([_vector(run("@ho_rof", *at, *v)) for v in basis]),
        }

    def differences(self, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
        columns = []
        for j in range(len(x)):
            e = np.zeros_like(x)
            e[j] = h
            columns.append((self.gradient(x + e) - self.gradient(x - e)) / (2 * h))
        return np.column_stack(columns)


def _second_order_program(case: Case) -> Program:
    module = parse((GOLDEN / case.path).read_text(encoding="utf-8"))
    _first_derivatives(module, case)
    _passes(module, AD)
    _second_derivatives(module, case)
    _passes(module, AD)
    return Program(module, NumpyBackend(), float_as_double=True)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_four_compositions_give_the_hessian(case: Case) -> None:
    hessians = Hessians(_second_order_program(case), case)
    rng = np.random.default_rng(17)
    start = case.start()
    for x in (start, start + rng.uniform(-0.2, 0.2, size=start.shape)):
        expected = hessians.differences(x)
        scale = max(1.0, float(np.abs(expected).max()))
        found = hessians.compositions(x)
        for name, h in found.items():
            np.testing.assert_allclose(h, expected, rtol=1e-5, atol=1e-6 * scale, err_msg=name)
            np.testing.assert_allclose(
                h, found["forward over reverse"], rtol=1e-10, atol=1e-12 * scale, err_msg=name
            )
        np.testing.assert_allclose(h, h.T, rtol=1e-10, atol=1e-12 * scale)
