"""Tensor derivatives across blocks (issue 14, item 3): a tensor carried around a loop, returned
from a branch, or left untouched by one path. Where a derivative reaches no use on some path, its
zero is made with ``zeros(shape(t))`` from the shape the record keeps. Each case is checked in
Double against central finite differences and by the dot-product identity between JVP and VJP."""

from __future__ import annotations

import numpy as np
import pytest

from sil import parse, print_module
from sil.passes import PassManager, registered_passes
from tests.differentiation.tensor_checks import check

T = "Tensor<Double>"

LOOP = f"""
sil [differentiable source 0 wrt 0] @f : $@convention(thin) ({T}, Int) -> Double {{
bb0(%x : ${T}, %n : $Int):
  %zero = integer_literal $Int, 0
  br bb1(%x : ${T}, %zero : $Int)
bb1(%t : ${T}, %i : $Int):
  %c = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %c, bb2, bb3
bb2:
  %s = builtin "sin"(%t : ${T}) : ${T}
  %u = builtin "fmul"(%s : ${T}, %x : ${T}) : ${T}
  %one = integer_literal $Int, 1
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%u : ${T}, %j : $Int)
bb3:
  %r = builtin "sum"(%t : ${T}) : $Double
  return %r : $Double
}}
"""

# The accumulator starts as a constant zero tensor: its tangent is absent on the first trip.
ACCUMULATE = f"""
sil [differentiable source 0 wrt 0] @f : $@convention(thin) ({T}, Int) -> Double {{
bb0(%x : ${T}, %n : $Int):
  %zero = integer_literal $Int, 0
  %s0 = builtin "shape"(%x : ${T}) : $TensorShape
  %acc0 = builtin "zeros"(%s0 : $TensorShape) : ${T}
  br bb1(%acc0 : ${T}, %zero : $Int)
bb1(%acc : ${T}, %i : $Int):
  %c = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %c, bb2, bb3
bb2:
  %e = builtin "exp"(%x : ${T}) : ${T}
  %next = builtin "fadd"(%acc : ${T}, %e : ${T}) : ${T}
  %one = integer_literal $Int, 1
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%next : ${T}, %j : $Int)
bb3:
  %sq = builtin "fmul"(%acc : ${T}, %acc : ${T}) : ${T}
  %r = builtin "sum"(%sq : ${T}) : $Double
  return %r : $Double
}}
"""

# Each path leaves one parameter untouched: its cotangent is a zero of its shape.
BRANCH = f"""
sil [differentiable source 0 wrt 0, 1] @f : $@convention(thin) ({T}, {T}, Bool) -> {T} {{
bb0(%x : ${T}, %y : ${T}, %c : $Bool):
  cond_br %c, bb1, bb2
bb1:
  %a = builtin "tanh"(%x : ${T}) : ${T}
  br bb3(%a : ${T})
bb2:
  %b = builtin "fmul"(%y : ${T}, %y : ${T}) : ${T}
  br bb3(%b : ${T})
bb3(%r : ${T}):
  return %r : ${T}
}}
"""

# One path returns a constant: its tangent is a zero of the constant's shape, in both modes.
CONSTANT_PATH = f"""
sil [differentiable source 0 wrt 0] @f : $@convention(thin) ({T}, Bool) -> {T} {{
bb0(%x : ${T}, %c : $Bool):
  cond_br %c, bb1, bb2
bb1:
  %a = builtin "sin"(%x : ${T}) : ${T}
  br bb3(%a : ${T})
bb2:
  %s = builtin "shape"(%x : ${T}) : $TensorShape
  %k = builtin "ones"(%s : $TensorShape) : ${T}
  br bb3(%k : ${T})
bb3(%r : ${T}):
  %w = builtin "fmul"(%r : ${T}, %x : ${T}) : ${T}
  return %w : ${T}
}}

sil [differentiable source 0 wrt 0] @g : $@convention(thin) ({T}, Bool) -> {T} {{
bb0(%x : ${T}, %c : $Bool):
  cond_br %c, bb1, bb2
bb1:
  %a = builtin "cos"(%x : ${T}) : ${T}
  return %a : ${T}
bb2:
  %s = builtin "shape"(%x : ${T}) : $TensorShape
  %k = builtin "ones"(%s : $TensorShape) : ${T}
  return %k : ${T}
}}
"""


@pytest.mark.parametrize("trips", [0, 1, 3])
def test_a_tensor_carried_around_a_loop(trips: int) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3))
    check(LOOP, "f", (0,), [x, trips])


@pytest.mark.parametrize("trips", [0, 2])
def test_an_accumulator_whose_first_tangent_is_zero(trips: int) -> None:
    x = np.random.default_rng(2).standard_normal(4) * 0.3
    check(ACCUMULATE, "f", (0,), [x, trips])


@pytest.mark.parametrize("taken", [True, False])
def test_a_tensor_returned_from_a_branch_with_the_other_parameter_untouched(taken: bool) -> None:
    rng = np.random.default_rng(3)
    check(BRANCH, "f", (0, 1), [rng.standard_normal((2, 2)), rng.standard_normal((2, 2)), taken])


@pytest.mark.parametrize("fn", ["f", "g"])
@pytest.mark.parametrize("taken", [True, False])
def test_a_path_whose_tensor_is_a_constant(fn: str, taken: bool) -> None:
    check(CONSTANT_PATH, fn, (0,), [np.random.default_rng(4).standard_normal(3), taken])


def test_the_zero_is_made_to_the_shape_the_record_keeps() -> None:
    """The pullback of BRANCH makes the untouched parameter's zero from the entry's record."""
    module = parse(BRANCH, "cf.sil")
    PassManager([registered_passes()["differentiation"]()]).run(module)
    text = print_module(module)
    assert "var x_shape: TensorShape" in text and "var y_shape: TensorShape" in text
    assert text.count('builtin "zeros"') == 2
    assert "cannot" not in text
