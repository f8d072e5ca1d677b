"""Fused expressions: which scalar builtins the compiler writes inside their one user, and that a
fused function computes what the same instructions compute one statement at a time."""

from __future__ import annotations

import math

import numpy as np

from interp.fusion import MAX_FUSED_DEPTH, fused_results
from sil import parse
from tests.interp.support import assert_located, fault, run

HEAD = "sil @f : $@convention(thin) (Double, Double) -> Double {\nbb0(%x : $Double, %y : $Double):\n"


def fused_names(text: str, fn: str = "f") -> set[str]:
    module = parse(text, "test.sil")
    return {v.name for v in fused_results(module.functions[fn]) if v.name is not None}


def double(body: str) -> str:
    return HEAD + body + "}\n"


def test_a_value_used_once_by_the_next_arithmetic_is_fused() -> None:
    text = double(
        '  %m = builtin "fmul"(%x : $Double, %y : $Double) : $Double\n'
        '  %n = builtin "fneg"(%m : $Double) : $Double\n'
        '  %p = builtin "fadd"(%n : $Double, %x : $Double) : $Double\n'
        "  return %p : $Double\n"
    )
    assert fused_names(text) == {"m", "n"}
    assert run(text, 1.5, -2.0) == -(1.5 * -2.0) + 1.5


def test_values_read_twice_or_by_other_instructions_are_not_fused() -> None:
    text = double(
        '  %twice = builtin "fmul"(%x : $Double, %y : $Double) : $Double\n'
        '  %sq = builtin "fmul"(%twice : $Double, %twice : $Double) : $Double\n'
        '  %relu_in = builtin "fsub"(%sq : $Double, %y : $Double) : $Double\n'
        '  %relu = builtin "relu"(%relu_in : $Double) : $Double\n'
        '  %div_by = builtin "fadd"(%relu : $Double, %y : $Double) : $Double\n'
        '  %q = builtin "fdiv"(%x : $Double, %div_by : $Double) : $Double\n'
        "  return %q : $Double\n"
    )
    # %twice has two uses; relu and fdiv read their operand twice in their templates, so %relu_in
    # and %div_by would be evaluated twice; %q is read by `return`. %sq and %relu (an expression
    # itself, read once by fadd) are fused.
    assert fused_names(text) == {"sq", "relu"}
    x, y = 0.75, 2.0
    twice = x * y
    relu = max(twice * twice - y, 0.0)
    assert run(text, x, y) == x / (relu + y)


def test_templates_that_can_fault_or_take_statements_are_not_fused() -> None:
    text = (
        "sil @f : $@convention(thin) (Int, Int, Double) -> Double {\n"
        "bb0(%a : $Int, %b : $Int, %x : $Double):\n"
        '  %s = builtin "add"(%a : $Int, %b : $Int) : $Int\n'
        '  %q = builtin "sdiv"(%s : $Int, %b : $Int) : $Int\n'
        '  %e = builtin "exp"(%x : $Double) : $Double\n'
        '  %f = builtin "sitofp"(%q : $Int) : $Double\n'
        '  %r = builtin "fadd"(%e : $Double, %f : $Double) : $Double\n'
        "  return %r : $Double\n"
        "}\n"
    )
    # `add` wraps at 64 bits in a second statement, `sdiv` can fault (its template takes the
    # site), `exp` catches OverflowError: each stays a statement. `sitofp` to Double is one pure
    # expression read once by `fadd`.
    assert fused_names(text) == {"f"}
    assert run(text, 7, 2, 0.5) == math.exp(0.5) + 4.0


def test_a_value_used_in_another_block_is_not_fused() -> None:
    text = double(
        '  %m = builtin "fmul"(%x : $Double, %y : $Double) : $Double\n'
        "  br bb1\n"
        "bb1:\n"
        '  %p = builtin "fadd"(%m : $Double, %x : $Double) : $Double\n'
        "  return %p : $Double\n"
    )
    assert fused_names(text) == set()


def test_long_chains_are_cut_every_few_levels_and_keep_their_order() -> None:
    """A chain of 1,000 single uses: fused in runs of at most MAX_FUSED_DEPTH, so the generated
    expressions stay shallow, and each addition still rounds in the order the SIL gives."""
    n = 1_000
    lines = ['  %v0 = builtin "fmul"(%x : $Double, %y : $Double) : $Double']
    for i in range(1, n):
        lines.append(f'  %v{i} = builtin "fadd"(%v{i - 1} : $Double, %y : $Double) : $Double')
    text = double("\n".join(lines) + f"\n  return %v{n - 1} : $Double\n")
    fused = fused_names(text)
    assert len(fused) == n - 1 - (n - 1) // (MAX_FUSED_DEPTH + 1)
    x, y = 0.1, 1e-17 + 0.3
    want = x * y
    for _ in range(1, n):
        want += y
    assert run(text, x, y) == want


def test_fused_float_arithmetic_rounds_every_step_to_binary32() -> None:
    text = (
        "sil @f : $@convention(thin) (Float, Float) -> Float {\n"
        "bb0(%x : $Float, %y : $Float):\n"
        '  %m = builtin "fmul"(%x : $Float, %y : $Float) : $Float\n'
        '  %s = builtin "fadd"(%m : $Float, %x : $Float) : $Float\n'
        '  %d = builtin "fdiv"(%s : $Float, %y : $Float) : $Float\n'
        "  return %d : $Float\n"
        "}\n"
    )
    assert fused_names(text) == {"m", "s"}
    x, y = np.float32(1.1), np.float32(3.3)
    assert run(text, float(x), float(y)) == float((x * y + x) / y)


def test_a_fault_in_the_user_of_a_fused_expression_points_at_the_user() -> None:
    text = (
        "sil @f : $@convention(thin) (Double, Double) -> Int {\n"
        "bb0(%x : $Double, %y : $Double):\n"
        '  %m = builtin "fmul"(%x : $Double, %y : $Double) : $Double\n'
        '  %i = builtin "fptosi"(%m : $Double) : $Int\n'
        "  return %i : $Int\n"
        "}\n"
    )
    assert fused_names(text) == {"m"}
    assert run(text, 2.5, 3.0) == 7
    assert_located(fault(text, 1e300, 1e300), text, '"fptosi"', "fptosi of inf")
