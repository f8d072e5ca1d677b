"""The optimization passes on large functions: ten thousand instructions in one block, or about
ten thousand in chains, diamonds and forwarding blocks, each pass without recursion and leaving a
module that verifies. Time is not asserted here (no timed tests: the machines are noisy):
``benchmarks/opt_bench.py`` measures each pass at 10^4 and 4*10^4 instructions (its "scaling"
table); the figures below were measured by hand.

Measured (10^4 / 4*10^4, best of three): before batched block edits, -canonicalize took 0.45 s /
6.3 s on a long block it folds much of (each erase and each insertion before an instruction
scanned the block's list), -simplify-cfg 0.16 s / 1.3 s (each replaced terminator was removed
from the long use-list of a condition or value many branches share) and -cse 0.07 s / 0.59 s;
after, 0.09 s / 0.37 s, 0.14 s / 0.53 s and 0.04 s / 0.18 s."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from sil import parse, verify_module
from sil.passes import PassManager, registered_passes

FN = "$@convention(thin) (Double, Bool) -> Double"


def straight_line(n: int) -> str:
    """About ``n`` instructions in one block: repeated products (for -cse), chains of literal
    sums and multiplications by one (for -canonicalize)."""
    out = [f"sil @f : {FN} {{", "bb0(%x : $Double, %c : $Bool):", "  %one = float_literal $Double, 1.0"]
    out.append("  %k0 = float_literal $Double, 0.5")
    out.append('  %v0 = builtin "fmul"(%x : $Double, %x : $Double) : $Double')
    for i in range(1, n // 5):
        out += [
            f'  %k{i} = builtin "fadd"(%k{i - 1} : $Double, %one : $Double) : $Double',
            f'  %a{i} = builtin "fmul"(%v{i - 1} : $Double, %x : $Double) : $Double',
            f'  %b{i} = builtin "fmul"(%v{i - 1} : $Double, %x : $Double) : $Double',
            f'  %m{i} = builtin "fmul"(%b{i} : $Double, %one : $Double) : $Double',
            f'  %v{i} = builtin "fadd"(%a{i} : $Double, %m{i} : $Double) : $Double',
        ]
    last = n // 5 - 1
    out += [
        f'  %r = builtin "fadd"(%v{last} : $Double, %k{last} : $Double) : $Double',
        "  return %r : $Double",
        "}",
    ]
    return "\n".join(out) + "\n"


def many_blocks(n: int) -> str:
    """About ``n`` blocks: a chain of blocks each the only successor of the one before, broken
    by diamonds whose sides only forward (for -simplify-cfg), and branches on literals."""
    out = [f"sil @f : {FN} {{", "bb0(%x : $Double, %c : $Bool):", "  %t = integer_literal $Bool, 1"]
    out.append("  br b0(%x : $Double)")
    for i in range(n // 4):
        out += [
            f"b{i}(%v{i} : $Double):",
            f'  %w{i} = builtin "fadd"(%v{i} : $Double, %x : $Double) : $Double',
            f"  cond_br %c, l{i}(%w{i} : $Double), r{i}"
            if i % 2
            else f"  cond_br %t, l{i}(%w{i} : $Double), r{i}",
            f"l{i}(%p{i} : $Double):",
            f"  br j{i}(%p{i} : $Double)",
            f"r{i}:",
            f"  br j{i}(%x : $Double)",
            f"j{i}(%q{i} : $Double):",
            f"  br b{i + 1}(%q{i} : $Double)",
        ]
    out += [f"b{n // 4}(%end : $Double):", "  return %end : $Double", "}"]
    return "\n".join(out) + "\n"


PASSES = ["cse", "canonicalize", "simplify-cfg"]


def optimize_timed(text: str, name: str) -> float:
    """Run the pass ``name`` on ``text``, checking the module before and after; its seconds (for
    ``benchmarks/opt_bench.py``: nothing here asserts them)."""
    module = parse(text)
    assert verify_module(module) == []
    start = time.perf_counter()
    PassManager([registered_passes()[name]()]).run(module)
    elapsed = time.perf_counter() - start
    assert verify_module(module) == []
    return elapsed


@pytest.mark.parametrize("name", PASSES)
@pytest.mark.parametrize("make", [straight_line, many_blocks], ids=["instructions", "blocks"])
def test_ten_thousand_instructions_or_blocks(name: str, make: Callable[[int], str]) -> None:
    optimize_timed(make(10_000), name)
