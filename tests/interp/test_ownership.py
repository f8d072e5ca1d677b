"""Copy-on-write for ``with_element`` (``interp.ownership``): a tensor is written in place only
where nothing else can see it, so a loop that updates each element of a tensor once costs O(n);
everywhere else ``with_element`` leaves its operand as it was."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from accel.numpy_backend import NumpyBackend
from interp import Program
from interp.ownership import UNSHARED, reusing
from sil import parse, verify_module
from sil.passes import PassManager, registered_passes

T = "Tensor<Double>"


class CountingBackend(NumpyBackend):
    """NumPy, counting the copies and the in-place writes of ``with_element`` (a copy writes into
    its new tensor in place: that write is not counted again)."""

    def __init__(self) -> None:
        super().__init__()
        self.copies = self.writes = 0

    @property
    def in_place(self) -> int:
        return self.writes - self.copies

    def with_element(self, a: Any, value: Any, *indices: int) -> Any:
        self.copies += 1
        return super().with_element(a, value, *indices)

    def with_element_in_place(self, a: Any, value: Any, *indices: int) -> Any:
        self.writes += 1
        return super().with_element_in_place(a, value, *indices)


def program(text: str, differentiate: bool = False) -> tuple[Program, CountingBackend]:
    module = parse(text, "own.sil")
    if differentiate:
        PassManager([registered_passes()["differentiation"]()]).run(module)
    assert verify_module(module) == []
    backend = CountingBackend()
    return Program(module, backend), backend


def test_a_temporary_is_written_in_place_and_a_held_tensor_is_copied() -> None:
    calls: list[str] = []
    with_element = reusing(
        lambda a, v, *i: calls.append("in place"),
        lambda a, v, *i: calls.append("copy"),
        lambda a: True,
        UNSHARED,
    )
    held = np.zeros(3)
    with_element(np.zeros(3), 1.0, 0)
    with_element(held, 1.0, 0)
    assert calls == ["in place", "copy"]


# Each element of %x written in turn into a tensor carried around the loop: in place each time.
FILL_LOOP = f"""
sil @f : $@convention(thin) ({T}) -> {T} {{
bb0(%x : ${T}):
  %zero = integer_literal $Int, 0
  %n = builtin "dim"(%x : ${T}, %zero : $Int) : $Int
  %s = builtin "shape"(%x : ${T}) : $TensorShape
  %t0 = builtin "zeros"(%s : $TensorShape) : ${T}
  br bb1(%zero : $Int, %t0 : ${T})
bb1(%i : $Int, %t : ${T}):
  %c = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %c, bb2, bb3
bb2:
  %e = builtin "element"(%x : ${T}, %i : $Int) : $Double
  %e2 = builtin "fmul"(%e : $Double, %e : $Double) : $Double
  %u = builtin "with_element"(%t : ${T}, %e2 : $Double, %i : $Int) : ${T}
  %one = integer_literal $Int, 1
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%j : $Int, %u : ${T})
bb3:
  return %t : ${T}
}}
"""


def test_a_loop_writing_each_element_writes_in_place() -> None:
    run, backend = program(FILL_LOOP)
    x = np.arange(50.0)
    before = x.copy()
    assert np.array_equal(run.run("@f", x), x * x)
    assert np.array_equal(x, before)
    assert (backend.copies, backend.in_place) == (0, 50)


SUM_OF_SQUARES = f"""
sil [differentiable source 0 wrt 0] @f : $@convention(thin) ({T}) -> Double {{
bb0(%x : ${T}):
  %zero = integer_literal $Int, 0
  %n = builtin "dim"(%x : ${T}, %zero : $Int) : $Int
  %z = float_literal $Double, 0.0
  br bb1(%zero : $Int, %z : $Double)
bb1(%i : $Int, %acc : $Double):
  %c = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %c, bb2, bb3
bb2:
  %e = builtin "element"(%x : ${T}, %i : $Int) : $Double
  %sq = builtin "fmul"(%e : $Double, %e : $Double) : $Double
  %next = builtin "fadd"(%acc : $Double, %sq : $Double) : $Double
  %one = integer_literal $Int, 1
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%j : $Int, %next : $Double)
bb3:
  return %acc : $Double
}}
"""


def test_the_pullback_of_a_loop_of_reads_accumulates_in_place() -> None:
    """One zero tensor for the whole loop, then one element updated per read (issue 14, item 4)."""
    run, backend = program(SUM_OF_SQUARES, differentiate=True)
    x = np.linspace(-1.0, 2.0, 64)
    _, pullback = run.run("@AD__f__vjp_src_0_wrt_0", x)
    assert np.allclose(pullback(1.0), 2 * x)
    assert (backend.copies, backend.in_place) == (0, 64)


# Where another value can still see the tensor, with_element copies.
STILL_SEEN = f"""
sil @returns_both : $@convention(thin) ({T}) -> ({T}, {T}) {{
bb0(%x : ${T}):
  %s = builtin "shape"(%x : ${T}) : $TensorShape
  %t = builtin "ones"(%s : $TensorShape) : ${T}
  %v = float_literal $Double, 5.0
  %zero = integer_literal $Int, 0
  %u = builtin "with_element"(%t : ${T}, %v : $Double, %zero : $Int) : ${T}
  %r = tuple (%t : ${T}, %u : ${T})
  return %r : $({T}, {T})
}}

sil @parameter : $@convention(thin) ({T}) -> {T} {{
bb0(%x : ${T}):
  %v = float_literal $Double, 5.0
  %zero = integer_literal $Int, 0
  %u = builtin "with_element"(%x : ${T}, %v : $Double, %zero : $Int) : ${T}
  return %u : ${T}
}}

sil @in_a_tuple : $@convention(thin) ({T}) -> ({T}, {T}) {{
bb0(%x : ${T}):
  %s = builtin "shape"(%x : ${T}) : $TensorShape
  %t = builtin "ones"(%s : $TensorShape) : ${T}
  %kept = tuple (%t : ${T}, %t : ${T})
  %v = float_literal $Double, 5.0
  %zero = integer_literal $Int, 0
  %u = builtin "with_element"(%t : ${T}, %v : $Double, %zero : $Int) : ${T}
  %first = tuple_extract %kept : $({T}, {T}), 0
  %r = tuple (%first : ${T}, %u : ${T})
  return %r : $({T}, {T})
}}

sil @a_view : $@convention(thin) ({T}) -> ({T}, {T}) {{
bb0(%x : ${T}):
  %s = builtin "shape"(%x : ${T}) : $TensorShape
  %t = builtin "ones"(%s : $TensorShape) : ${T}
  %w = builtin "reshape"(%t : ${T}, %s : $TensorShape) : ${T}
  %v = float_literal $Double, 5.0
  %zero = integer_literal $Int, 0
  %u = builtin "with_element"(%w : ${T}, %v : $Double, %zero : $Int) : ${T}
  %r = tuple (%t : ${T}, %u : ${T})
  return %r : $({T}, {T})
}}

sil @around_a_loop : $@convention(thin) ({T}, Int) -> {T} {{
bb0(%x : ${T}, %n : $Int):
  %s = builtin "shape"(%x : ${T}) : $TensorShape
  %t = builtin "ones"(%s : $TensorShape) : ${T}
  %zero = integer_literal $Int, 0
  br bb1(%zero : $Int, %t : ${T})
bb1(%i : $Int, %acc : ${T}):
  %c = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %c, bb2, bb3
bb2:
  %v = builtin "sitofp"(%i : $Int) : $Double
  %u = builtin "with_element"(%t : ${T}, %v : $Double, %zero : $Int) : ${T}
  %sum = builtin "fadd"(%acc : ${T}, %u : ${T}) : ${T}
  %one = integer_literal $Int, 1
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%j : $Int, %sum : ${T})
bb3:
  return %acc : ${T}
}}
"""


@pytest.mark.parametrize("fn", ["returns_both", "in_a_tuple", "a_view"])
def test_a_tensor_another_value_still_holds_is_left_as_it_was(fn: str) -> None:
    run, backend = program(STILL_SEEN)
    original, updated = run.run(f"@{fn}", np.zeros(3))
    assert np.array_equal(original, np.ones(3))
    assert np.array_equal(updated, [5.0, 1.0, 1.0])
    assert backend.in_place == 0


def test_the_callers_tensor_is_left_as_it_was() -> None:
    run, backend = program(STILL_SEEN)
    x = np.ones(3)
    assert np.array_equal(run.run("@parameter", x), [5.0, 1.0, 1.0])
    assert np.array_equal(x, np.ones(3))
    assert backend.in_place == 0


def test_a_tensor_read_again_on_the_next_trip_is_copied() -> None:
    run, _ = program(STILL_SEEN)
    # acc = 1 + sum over i of with_element(ones, i, 0): element 0 gets 1 + 0 + 1 + 2, the others 4.
    assert np.array_equal(run.run("@around_a_loop", np.zeros(3), 3), [4.0, 4.0, 4.0])
