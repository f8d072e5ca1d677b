"""The compiled code lets go of a tensor after its last read (``interp/ownership.py``): a chain of
tensor builtins holds a couple of buffers at a time, not one per value, and what is read later,
in another block or around a loop, is kept."""

from __future__ import annotations

import tracemalloc

import numpy as np

from interp.inlining import InlinePlan
from interp.ownership import Lifetimes
from sil import parse
from tests.interp.support import program, run

T = "$Tensor<Double>"
CHAIN = 20


def chain_text() -> str:
    """``@f(x)``: ``CHAIN`` tensor builtins in a row, each reading the one before, and one whose
    result nothing reads."""
    lines = [
        "sil @f : $@convention(thin) (Tensor<Double>) -> Tensor<Double> {",
        f"bb0(%x0 : {T}):",
        f'  %unread = builtin "exp"(%x0 : {T}) : {T}',
    ]
    for i in range(CHAIN):
        lines.append(f'  %x{i + 1} = builtin "fadd"(%x{i} : {T}, %x{i} : {T}) : {T}')
    lines += [f"  return %x{CHAIN} : {T}", "}"]
    return "\n".join(lines) + "\n"


def test_a_chain_of_tensor_builtins_holds_a_few_buffers_at_a_time() -> None:
    text = chain_text()
    x = np.ones(250_000)  # 2 MB a tensor
    program(text).run("@f", x)  # compiled before measuring
    tracemalloc.start()
    try:
        result = program(text).run("@f", x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(result, x * 2.0**CHAIN)
    assert peak < 4 * x.nbytes, peak / x.nbytes  # without the deletions: CHAIN + 1 buffers


def test_what_is_read_by_a_terminator_or_in_another_block_is_kept() -> None:
    text = f"""\
sil @f : $@convention(thin) (Tensor<Double>, Int) -> Tensor<Double> {{
bb0(%x : {T}, %n : $Int):
  %zero = integer_literal $Int, 0
  %one = integer_literal $Int, 1
  %e = builtin "exp"(%x : {T}) : {T}
  %s = builtin "sin"(%x : {T}) : {T}
  br bb1(%zero : $Int, %s : {T})
bb1(%i : $Int, %acc : {T}):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3
bb2:
  %t = builtin "fmul"(%acc : {T}, %e : {T}) : {T}
  %u = builtin "fadd"(%t : {T}, %t : {T}) : {T}
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%j : $Int, %u : {T})
bb3:
  return %acc : {T}
}}
"""
    module = parse(text, "t.sil")
    released = {
        inst.result.name: [v.name for v in values]
        for inst, values in Lifetimes(module.functions["f"], InlinePlan()).released.items()
    }
    # %x is not read after %s; %e is read around the loop and %u by a branch; %acc, read in bb2
    # and in bb3, is not read after bb2's fmul before bb1 assigns it again.
    assert released == {"s": ["x"], "t": ["acc"], "u": ["t"]}
    x = np.array([0.5, -1.0])
    want = np.sin(x)
    for _ in range(3):
        want = want * np.exp(x) * 2
    assert np.allclose(run(text, x, 3), want, rtol=1e-15)


INLINED_RESULT_READ_LATER = f"""\
sil @g : $@convention(thin) (Int) -> Tensor<Double> {{
bb0(%n : $Int):
  %a = builtin "ones"(%n : $Int) : {T}
  return %a : {T}
}}

sil @f : $@convention(thin) (Int) -> Tensor<Double> {{
bb0(%n : $Int):
  %g = function_ref @g : $@convention(thin) (Int) -> Tensor<Double>
  %r = apply %g(%n) : $@convention(thin) (Int) -> Tensor<Double>
  %zero = integer_literal $Int, 0
  %acc0 = builtin "zeros"(%n : $Int) : {T}
  br bb1(%zero : $Int, %acc0 : {T})
bb1(%i : $Int, %acc : {T}):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3
bb2:
  %s = builtin "fadd"(%acc : {T}, %r : {T}) : {T}
  %one = integer_literal $Int, 1
  %j = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%j : $Int, %s : {T})
bb3:
  return %acc : {T}
}}
"""


def test_an_inlined_calls_result_read_in_another_block_is_kept() -> None:
    """@g is written inline: its result's variable is the callee's ``%a``, read in bb2, a loop body,
    and so never deleted in bb0."""
    assert np.array_equal(run(INLINED_RESULT_READ_LATER, 3, fn="@f"), np.full(3, 3.0))


PARAMETER_READ_AFTER_A_BRANCH = f"""\
sil @f : $@convention(thin) ({T[1:]}, Double) -> Double {{
bb0(%t : {T}, %x : $Double):
  br bb1(%t : {T}, %x : $Double)
bb1(%u : {T}, %y : $Double):
  %m = builtin "mean"(%t : {T}) : $Double
  %s = builtin "fadd"(%m : $Double, %y : $Double) : $Double
  return %s : $Double
}}
"""


def test_a_tensor_parameter_passed_to_a_block_and_read_there_by_its_own_name_is_kept() -> None:
    """A function whose only tensor is a parameter: the branch passes it on, and bb1 reads it by
    ``%t``, not by its argument, so the branch must not let go of ``%t`` (a generated program's
    VJP did this and read None)."""
    assert run(PARAMETER_READ_AFTER_A_BRANCH, np.array([1.0, 3.0]), 0.5, fn="@f") == 2.5
