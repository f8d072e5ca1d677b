"""The builtin derivative rules, checked numerically: for each rule, SIL functions built from it
compute a Jacobian-vector product (forward) and a vector-Jacobian product (reverse); the first
must match central finite differences in Double, and the two must satisfy the dot-product
identity <J v, w> = <v, J^T w>."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from accel.numpy_backend import NumpyBackend
from differentiation.rules import RULES, Rule, Saved, fit_cotangent, kept_value
from differentiation.tangents import TangentBuilder
from interp import Program
from sil import verify_module
from sil.builder import Builder
from sil.builtins import BUILTINS
from sil.ir import Function, Module, Result, Value
from sil.types import (
    DOUBLE,
    FLOAT,
    INT,
    TENSOR_SHAPE,
    FunctionType,
    TensorType,
    TupleType,
    Type,
    tuple_or_single,
)

TENSOR = TensorType(DOUBLE)
RNG_SEED = 7
# Points where every builtin is smooth (no kinks of abs/relu/fmin/fmax, positive log/sqrt/pow bases).
SCALAR_POINTS = {1: [(0.7,), (-1.3,), (2.2,)], 2: [(0.7, 1.9), (2.5, -0.6), (1.3, 0.4)]}
POSITIVE_ONLY = {"log", "sqrt", "pow"}


def build(name: str, operand_types: Sequence[Type], result_type: Type, mode: str) -> tuple[Module, str]:
    """``@check``: the builtin at the operands, then its rule: ``(operands…, seed) -> cotangents``
    for reverse mode, ``(operands…, tangents…) -> tangent`` for forward mode."""
    module = Module()
    n = len(operand_types)
    rule = RULES[name]
    if mode == "reverse":
        params = (*operand_types, result_type)
        result: Type = tuple_or_single(tuple(operand_types))
    else:
        params = (*operand_types, *operand_types)
        result = result_type
    fn = module.add_function(Function("check", FunctionType(params, result)))
    block = fn.add_block("bb0")
    args = [block.add_argument(t) for t in params]
    b = Builder.at_end(block, module)
    ops = args[:n]
    r = b.builtin(name, *ops, type=result_type)
    needed = [True] * n
    saved = saved_as_emitted(rule, b, ops, r, needed, "pullback" if mode == "reverse" else "differential")
    if mode == "reverse":
        cotangents = rule.pullback(b, args[n], saved, needed)
        fitted = [fit_cotangent(b, c, t) for c, t in zip(cotangents, operand_types)]
        assert all(c is not None for c in fitted)
        tangents = TangentBuilder(b, module, None)  # a Negated cotangent becomes an fneg
        values: list[Value] = [tangents.materialize(c, t) for c, t in zip(fitted, operand_types)]
        b.return_(values[0] if n == 1 else b.tuple(*values))
    else:
        tangent = rule.differential(b, args[n:], saved)
        assert tangent is not None
        b.return_(tangent)
    assert verify_module(module) == [], [d.message for d in verify_module(module)]
    return module, "@check"


def saved_as_emitted(
    rule: Rule, b: Builder, ops: Sequence[Value], r: Value, needed: Sequence[bool], mode: str
) -> Saved:
    """What the emitter saves for ``rule``: its own slots, and the shapes it declares where the
    linear map of ``mode`` reads them (shapes taken as possibly different, as of operands the
    shape analysis knows nothing about)."""
    keeps = rule.keeps([op.type for op in ops])
    values = rule.save(b, ops, r, needed)
    for slot, kept in enumerate(keeps):
        if kept.shape and kept.read(needed, mode, [True] * len(ops)):
            source = kept_value(r.owner, kept) if isinstance(r, Result) and r.owner is not None else None
            assert source is not None
            values[slot] = b.builtin("shape", source, type=TENSOR_SHAPE)
    return Saved(values, keeps)


def run(module: Module, *args: Any) -> Any:
    return Program(module, NumpyBackend()).run("@check", *args)


def primal(name: str, operand_types: Sequence[Type], result_type: Type) -> Module:
    module = Module()
    fn = module.add_function(Function("check", FunctionType(tuple(operand_types), result_type)))
    block = fn.add_block("bb0")
    args = [block.add_argument(t) for t in operand_types]
    b = Builder.at_end(block, module)
    b.return_(b.builtin(name, *args, type=result_type))
    return module


def as_array(x: Any) -> np.ndarray[Any, Any]:
    return np.asarray(x, dtype=np.float64)


def check_rule(name: str, types: Sequence[Type], result_type: Type, point: Sequence[Any]) -> None:
    rng = np.random.default_rng(RNG_SEED)
    f = primal(name, types, result_type)
    forward, _ = build(name, types, result_type, "forward")
    reverse, _ = build(name, types, result_type, "reverse")
    v = [rng.standard_normal(np.shape(x)) if np.ndim(x) else float(rng.standard_normal()) for x in point]
    h = 1e-6
    plus = run(f, *[as_array(x) + h * as_array(d) if np.ndim(x) else x + h * d for x, d in zip(point, v)])
    minus = run(f, *[as_array(x) - h * as_array(d) if np.ndim(x) else x - h * d for x, d in zip(point, v)])
    numeric = (as_array(plus) - as_array(minus)) / (2 * h)
    jv = as_array(run(forward, *point, *v))
    assert np.allclose(jv, numeric, rtol=1e-5, atol=1e-7), f"{name}: JVP {jv} vs finite differences {numeric}"
    out = run(f, *point)
    w = rng.standard_normal(np.shape(out)) if np.ndim(out) else float(rng.standard_normal())
    cotangents = run(reverse, *point, w)
    if len(types) == 1:
        cotangents = (cotangents,)
    left = float(np.sum(jv * as_array(w)))
    right = sum(float(np.sum(as_array(d) * as_array(c))) for d, c in zip(v, cotangents))
    assert np.isclose(left, right, rtol=1e-9, atol=1e-12), f"{name}: <Jv, w> {left} != <v, J^T w> {right}"


ELEMENTWISE_UNARY = ["fneg", "exp", "log", "sin", "cos", "tanh", "sqrt", "abs", "relu"]
ELEMENTWISE_BINARY = ["fadd", "fsub", "fmul", "fdiv", "fmin", "fmax", "pow"]


def points(name: str, arity: int) -> list[tuple[float, ...]]:
    found = SCALAR_POINTS[arity]
    if name in POSITIVE_ONLY:
        found = [tuple(abs(x) for x in p) for p in found]
    return found


@pytest.mark.parametrize("name", ELEMENTWISE_UNARY + ELEMENTWISE_BINARY)
def test_scalar_rules(name: str) -> None:
    arity = 1 if name in ELEMENTWISE_UNARY else 2
    for point in points(name, arity):
        check_rule(name, [DOUBLE] * arity, DOUBLE, point)


@pytest.mark.parametrize("name", ELEMENTWISE_UNARY + ELEMENTWISE_BINARY)
def test_tensor_rules(name: str) -> None:
    rng = np.random.default_rng(1)
    arity = 1 if name in ELEMENTWISE_UNARY else 2
    arrays = [rng.uniform(0.3, 2.0, (2, 3)) * (1 if name in POSITIVE_ONLY else rng.choice([-1, 1], (2, 3)))
              for _ in range(arity)]  # fmt: skip
    if name in ("fmin", "fmax"):
        arrays[1] = arrays[0] + rng.choice([-0.5, 0.5], (2, 3))  # no ties
    check_rule(name, [TENSOR] * arity, TENSOR, arrays)


@pytest.mark.parametrize("name", ELEMENTWISE_BINARY)
def test_tensor_with_scalar_sums_the_scalars_cotangent(name: str) -> None:
    rng = np.random.default_rng(2)
    t = rng.uniform(0.3, 2.0, (3, 2))
    s = 1.4
    if name in ("fmin", "fmax"):
        t = np.where(np.abs(t - s) < 0.1, t + 0.3, t)
    check_rule(name, [TENSOR, DOUBLE], TENSOR, [t, s])
    check_rule(name, [DOUBLE, TENSOR], TENSOR, [s, t])


def test_matmul_and_transpose() -> None:
    rng = np.random.default_rng(3)
    # Square: the two operands' derivatives could trade places and still fit, so only values tell.
    check_rule("matmul", [TENSOR, TENSOR], TENSOR, [rng.standard_normal((3, 3)), rng.standard_normal((3, 3))])
    check_rule("matmul", [TENSOR, TENSOR], TENSOR, [rng.standard_normal((2, 3)), rng.standard_normal((3, 4))])
    check_rule("transpose", [TENSOR], TENSOR, [rng.standard_normal((2, 3))])


def test_reductions_spread_their_seed_over_the_tensor() -> None:
    rng = np.random.default_rng(4)
    for name in ("sum", "mean"):
        check_rule(name, [TENSOR], DOUBLE, [rng.standard_normal((3, 4))])
    check_rule("scalar_from_tensor", [TENSOR], DOUBLE, [np.array([[0.7]])])


def test_fill_differentiates_with_respect_to_its_value() -> None:
    module, _ = build_fill("forward")
    assert list(run(module, 1.5, 2, 3, 0.25).shape) == [2, 3]
    module, _ = build_fill("reverse")
    assert run(module, 1.5, 2, 3, np.ones((2, 3))) == 6.0


def build_fill(mode: str) -> tuple[Module, str]:
    module = Module()
    params: tuple[Type, ...] = (DOUBLE, INT, INT, TENSOR if mode == "reverse" else DOUBLE)
    result: Type = DOUBLE if mode == "reverse" else TENSOR
    fn = module.add_function(Function("check", FunctionType(params, result)))
    block = fn.add_block("bb0")
    v, d0, d1, other = (block.add_argument(t) for t in params)
    b = Builder.at_end(block, module)
    r = b.builtin("fill", v, d0, d1, type=TENSOR)
    rule = RULES["fill"]
    needed = [True, False, False]
    saved = Saved(rule.save(b, [v, d0, d1], r, needed), rule.keeps([v.type, d0.type, d1.type]))
    if mode == "reverse":
        (cotangent, *_) = rule.pullback(b, other, saved, needed)
        assert isinstance(cotangent, Value)
        b.return_(cotangent)
    else:
        tangent = rule.differential(b, [other, None, None], saved)
        assert tangent is not None
        b.return_(tangent)
    assert verify_module(module) == []
    return module, "@check"


def test_conversions_and_rank_zero_tensors() -> None:
    """A conversion's derivatives are the seed or the tangent, converted (both ways, both modes:
    finite differences through a Float would measure its rounding, not the rule)."""
    for name, source, target in (("fpext", FLOAT, DOUBLE), ("fptrunc", DOUBLE, FLOAT)):
        module, _ = build(name, [source], target, "reverse")
        assert run(module, 1.5, 2.0) == 2.0
        module, _ = build(name, [source], target, "forward")
        assert run(module, 1.5, 0.25) == 0.25
    check_rule("tensor_from_scalar", [DOUBLE], TENSOR, [0.5])


def test_every_rule_is_of_a_differentiable_builtin() -> None:
    assert set(RULES) <= {name for name, info in BUILTINS.items() if info.differentiable}


def test_every_differentiable_builtin_has_a_rule_or_derivative_zero() -> None:
    missing = {name for name, info in BUILTINS.items() if info.differentiable and not info.zero_derivative}
    assert missing - set(RULES) == set()


def test_a_zero_tangent_or_an_unwanted_cotangent_is_never_materialized() -> None:
    module = Module()
    fn = module.add_function(Function("f", FunctionType((DOUBLE, DOUBLE), DOUBLE)))
    block = fn.add_block("bb0")
    x, y = block.add_argument(DOUBLE), block.add_argument(DOUBLE)
    b = Builder.at_end(block, module)
    r = b.builtin("fmul", x, y)
    before = len(block.instructions)
    saved = RULES["fmul"].save(b, [x, y], r, [True, False])
    assert saved == [y, None]  # the partial of x only
    assert RULES["fmul"].differential(b, [None, None], Saved(saved)) is None
    assert RULES["fadd"].differential(b, [x, None], Saved([])) is x
    assert RULES["fsub"].pullback(b, x, Saved([]), [True, False]) == [x, None]
    assert RULES["fneg"].pullback(b, x, Saved([]), [False]) == [None]
    assert RULES["fmul"].pullback(b, x, Saved([None, None]), [False, False]) == [None, None]
    assert len(block.instructions) == before  # nothing was built


def test_tuple_results_build() -> None:
    module, _ = build("fmul", [DOUBLE, DOUBLE], DOUBLE, "reverse")
    t = module.functions["check"].type.result
    assert isinstance(t, TupleType) and t.elements == (DOUBLE, DOUBLE)
