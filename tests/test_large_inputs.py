"""Inputs large where the tools once recursed (found by fuzzing): long call chains and deeply nested
branches must be walked with worklists, never one Python frame per function or block.

Two kinds of test: the sizes the fuzzer found, run as they are; and smaller inputs run with Python's
recursion limit a few hundred frames above the test's own depth (``little_stack``), so that any
walk recursing once per function or block fails at once, whatever the size. How the time grows with
size is measured in ``benchmarks/ad_bench.py`` (c), not asserted here.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from silopt.driver import main

FN = "$@convention(thin) (Double) -> Double"


def call_chain(n: int) -> str:
    """``@f0`` … ``@f{n-1}``, each ``f_i(x) = f_{i+1}(x) + x*x`` and ``f_{n-1}(x) = x*x``: so
    ``f0(x) = n x²``, and a ``@main`` that asks for its gradient."""
    out = []
    for i in range(n):
        out.append(f"sil @f{i} : {FN} {{\nbb0(%x : $Double):")
        out.append('  %xx = builtin "fmul"(%x : $Double, %x : $Double) : $Double')
        if i + 1 < n:
            out.append(f"  %g = function_ref @f{i + 1} : {FN}\n  %y = apply %g(%x) : {FN}")
            out.append('  %r = builtin "fadd"(%y : $Double, %xx : $Double) : $Double\n  return %r : $Double')
        else:
            out.append("  return %xx : $Double")
        out.append("}\n")
    out.append(f"sil @main : {FN} {{\nbb0(%x : $Double):\n  %f = function_ref @f0 : {FN}")
    out.append(f"  %g = gradient [wrt 0] %f : {FN}\n  %d = apply %g(%x) : {FN}\n  return %d : $Double\n}}\n")
    return "\n".join(out)


def nested_diamonds(n: int) -> str:
    """``@f(x)``: n if/else diamonds, each inside the `then` side of the one before; on x < 0 the
    innermost passes x out, on x >= 0 the outermost `else` gives sin x, and each join multiplies by
    x: ``f(x) = x^(n+1)`` for x < 0, ``sin(x) x`` for x >= 0."""
    out = [f"sil [differentiable source 0 wrt 0] @f : {FN} {{", "bb0(%x : $Double):"]
    out += ["  %zero = float_literal $Double, 0.0", "  br c0"]
    for i in range(n):
        out += [f"c{i}:", f'  %p{i} = builtin "fcmp_olt"(%x : $Double, %zero : $Double) : $Bool']
        out += [f"  cond_br %p{i}, t{i}, e{i}", f"t{i}:"]
        out.append(f"  br c{i + 1}" if i + 1 < n else f"  br j{i}(%x : $Double)")
        out += [f"e{i}:", f'  %s{i} = builtin "sin"(%x : $Double) : $Double', f"  br j{i}(%s{i} : $Double)"]
    for i in reversed(range(n)):
        out += [
            f"j{i}(%v{i} : $Double):",
            f'  %w{i} = builtin "fmul"(%v{i} : $Double, %x : $Double) : $Double',
        ]
        out.append(f"  br j{i - 1}(%w{i} : $Double)" if i else f"  return %w{i} : $Double")
    out.append("}\n")
    return "\n".join(out)


@contextlib.contextmanager
def little_stack(frames: int) -> Iterator[None]:
    """Python's recursion limit ``frames`` above the current depth, for the ``with`` block."""
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def silopt(tmp_path: Path, text: str, *flags: str) -> tuple[int, str, str]:
    path = tmp_path / "big.sil"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    status = main([str(path), *flags], io.StringIO(), out, err)
    return status, out.getvalue(), err.getvalue()


def test_a_chain_of_ten_thousand_calls_is_checked_for_differentiability(tmp_path: Path) -> None:
    status, _, err = silopt(tmp_path, call_chain(10_000), "-differentiation-diagnostics")
    assert (status, err) == (0, "")


def test_a_long_call_chain_is_differentiated_without_recursion(tmp_path: Path) -> None:
    n, x = 600, -0.75
    with little_stack(250):
        status, out, err = silopt(
            tmp_path, call_chain(n), "-differentiation", "-lower-gradient", "--run", "@main", "--args", str(x)
        )
    assert (status, err) == (0, "")
    assert float(out) == pytest.approx(2 * n * x, rel=1e-12)


def test_a_long_call_chain_is_differentiated_in_both_modes(tmp_path: Path) -> None:
    text = call_chain(600).replace("sil @f0 :", "sil [differentiable source 0 wrt 0] @f0 :", 1)
    with little_stack(250):
        status, out, err = silopt(tmp_path, text, "-differentiation")
    assert (status, err) == (0, "")
    assert "sil @AD__f599__jvp_src_0_wrt_0 :" in out and "sil @AD__f599__vjp_src_0_wrt_0 :" in out


def test_three_thousand_nested_diamonds_run(tmp_path: Path) -> None:
    # Once a chain of 3,000 `elif`s in the generated Python, which CPython failed to compile.
    text = nested_diamonds(3_000)
    assert silopt(tmp_path, text, "--run", "@f", "--args", "-1.0") == (0, "-1.0\n", "")
    assert silopt(tmp_path, text, "--run", "@f", "--args", "0.5") == (0, f"{math.sin(0.5) * 0.5!r}\n", "")


def test_nested_diamonds_are_differentiated_without_recursion(tmp_path: Path) -> None:
    n, x = 300, -1.25
    text = nested_diamonds(n) + (
        f"sil @main : {FN} {{\nbb0(%x : $Double):\n  %f = function_ref @f : {FN}\n"
        f"  %g = gradient [wrt 0] %f : {FN}\n  %d = apply %g(%x) : {FN}\n  return %d : $Double\n}}\n"
    )
    with little_stack(250):
        status, out, err = silopt(
            tmp_path, text, "-differentiation", "-lower-gradient", "--run", "@main", "--args", str(x)
        )
    assert (status, err) == (0, "")
    want = (n + 1) * x**n
    assert float(out) == pytest.approx(want, rel=1e-12)
