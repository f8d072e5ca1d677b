"""Helpers for the interpreter tests: SIL programs from templates, compiled once per text, run on the
NumPy backend; bit-exact comparison of floats with a NumPy reference; located faults."""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from accel import select_backend
from interp import Program, RunError
from sil import Diagnostic, parse, verify_module

BACKEND = select_backend("numpy")
FILENAME = "test.sil"


def builtin_function(name: str, operands: Sequence[str], result: str, fn: str = "f") -> str:
    """``sil @fn : (operands...) -> result`` whose body applies builtin ``name`` to its parameters."""
    params = ", ".join(operands)
    args = ", ".join(f"%a{i} : ${t}" for i, t in enumerate(operands))
    return (
        f"sil @{fn} : $@convention(thin) ({params}) -> {result} {{\n"
        f"bb0({args}):\n"
        f'  %r = builtin "{name}"({args}) : ${result}\n'
        f"  return %r : ${result}\n"
        "}\n"
    )


@functools.cache
def program(text: str, max_depth: int = 10_000) -> Program:
    """The verified module of ``text``, ready to run (one Program per distinct text and limit)."""
    module = parse(text, FILENAME)
    problems = verify_module(module)
    assert not problems, "\n".join(d.render() for d in problems)
    return Program(module, BACKEND, max_depth=max_depth)


def run(text: str, *args: Any, fn: str = "@f") -> Any:
    return program(text).run(fn, *args)


def run_builtin(name: str, operands: Sequence[str], result: str, *args: Any) -> Any:
    return run(builtin_function(name, tuple(operands), result), *args)


def fault(text: str, *args: Any, fn: str = "@f", max_depth: int = 10_000) -> Diagnostic:
    """The one diagnostic of a run that must fault."""
    try:
        value = program(text, max_depth).run(fn, *args)
    except RunError as e:
        assert len(e.diagnostics) == 1, [d.render() for d in e.diagnostics]
        return e.diagnostics[0]
    raise AssertionError(f"the run did not fault; it returned {value!r}")


def line_of(text: str, needle: str) -> int:
    """The 1-based line of ``text`` holding ``needle`` (exactly one must)."""
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    assert len(lines) == 1, (needle, lines)
    return lines[0]


def assert_located(diagnostic: Diagnostic, text: str, needle: str, message: str) -> None:
    """The diagnostic says ``message`` (a prefix) at the line of ``text`` holding ``needle``."""
    assert diagnostic.severity == "error"
    assert diagnostic.message.startswith(message), diagnostic.message
    assert diagnostic.span is not None, diagnostic.message
    assert diagnostic.line() == line_of(text, needle), diagnostic.render()
    rendered = diagnostic.render()
    assert rendered.startswith(f"{FILENAME}:{line_of(text, needle)}:"), rendered


# --- bit-exact comparison ----------------------------------------------------------------------


def double_bits(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


def assert_double(actual: Any, expected: Any) -> None:
    """``actual`` is a Python float with the bits of ``expected`` (any NaN matches any NaN)."""
    assert type(actual) is float, f"{actual!r} is a {type(actual).__name__}, not float"
    expected = float(expected)
    if math.isnan(expected):
        assert math.isnan(actual), f"{actual!r} != nan"
    else:
        assert double_bits(actual) == double_bits(expected), f"{actual!r} != {expected!r}"


def assert_float(actual: Any, expected: Any) -> None:
    """``actual`` is a Python float holding a binary32 value with the bits of ``expected``."""
    assert type(actual) is float, f"{actual!r} is a {type(actual).__name__}, not float"
    if not math.isnan(actual):
        assert float(np.float32(actual)) == actual, f"{actual!r} is not a binary32 value"
    expected32 = np.float32(expected)
    assert np.float32(expected) == expected or math.isnan(expected32), "the reference must be binary32"
    if math.isnan(expected32):
        assert math.isnan(actual), f"{actual!r} != nan"
    else:
        assert np.float32(actual).tobytes() == expected32.tobytes(), f"{actual!r} != {expected32!r}"


def assert_scalar(actual: Any, expected: Any, type_name: str) -> None:
    """Bit-exact comparison for Float and Double, exact (and exact Python type) for Int and Bool."""
    if type_name == "Float":
        assert_float(actual, expected)
    elif type_name == "Double":
        assert_double(actual, expected)
    elif type_name == "Int":
        assert type(actual) is int, f"{actual!r} is a {type(actual).__name__}, not int"
        assert actual == expected
    else:
        assert type_name == "Bool"
        assert type(actual) is bool, f"{actual!r} is a {type(actual).__name__}, not bool"
        assert actual is bool(expected)


def assert_tensor(actual: Any, expected: Any, dtype: type[np.floating[Any]]) -> None:
    """A NumPy array of ``dtype`` equal to ``expected`` element by element (bit-exact; NaN = NaN)."""
    assert isinstance(actual, np.ndarray), f"{actual!r} is not a numpy array"
    assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {np.dtype(dtype)}"
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    assert expected.dtype == dtype, f"the reference has dtype {expected.dtype}"
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(actual), nan), (actual, expected)
    assert actual[~nan].tobytes() == expected[~nan].tobytes(), (actual, expected)


def mismatch(actual: Any, expected: Any, type_name: str) -> str | None:
    """None when ``assert_scalar`` accepts ``actual``, else what it says."""
    try:
        assert_scalar(actual, expected, type_name)
    except AssertionError as e:
        return f"got {actual!r}, expected {expected!r} ({e})"
    return None


def check_all(cases: list[tuple[str, str | None]]) -> None:
    """Fail listing every case (described) whose check returned a message."""
    failures = [f"{what}: {problem}" for what, problem in cases if problem is not None]
    assert not failures, f"{len(failures)} of {len(cases)} cases differ:\n" + "\n".join(failures[:20])
