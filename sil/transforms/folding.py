"""Constant folding of scalar builtins, exactly as a run computes them (SIL-SPEC §5).

Float is IEEE binary32 and Double binary64: both fold in NumPy's ``float32``/``float64``
arithmetic, which is what the interpreter runs (its Double templates compute on Python floats,
the same binary64 operations), so every result rounds as the run would round it. Int wraps at 64
bits. What is not folded, and why:
- anything that faults at run time (``sdiv``/``srem`` by zero, ``fptosi`` of NaN or out of range):
  the fault stays where it was;
- a NaN operand or result of a float-valued builtin: which NaN comes out (sign, payload) is the
  hardware's choice (x86 makes -NaN of 0/0, ARM +NaN), and a literal would fix one machine's;
- the transcendental builtins (``exp``, ``log``, ``sin``, ``cos``, ``tanh``, ``sqrt``, ``pow``)
  and ``relu``/``step``/``sign``: their results come from the platform's libm and NumPy's loops,
  which need not round alike everywhere the folded module may run;
- tensor builtins: a tensor is no literal, and their results depend on the backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from sil.types import BOOL, DOUBLE, FLOAT, INT, Type

Scalar = float | int | bool

_HALF = 2**63
_MASK = 2**64 - 1


def _wrap(x: int) -> int:
    return ((x + _HALF) & _MASK) - _HALF


_FLOAT_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "fadd": lambda a, b: a + b,
    "fsub": lambda a, b: a - b,
    "fmul": lambda a, b: a * b,
    "fdiv": lambda a, b: a / b,
    "fmin": lambda a, b: _numpy().minimum(a, b),
    "fmax": lambda a, b: _numpy().maximum(a, b),
}

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "fcmp_olt": lambda a, b: a < b,
    "fcmp_ole": lambda a, b: a <= b,
    "fcmp_ogt": lambda a, b: a > b,
    "fcmp_oge": lambda a, b: a >= b,
    "fcmp_oeq": lambda a, b: a == b,
    "fcmp_one": lambda a, b: a < b or a > b,
}


def _int_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return _wrap(q if (a < 0) == (b < 0) else -q)


def _int_rem(a: int, b: int) -> int:
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


_INT_DIVISION: dict[str, Callable[[int, int], int]] = {"sdiv": _int_div, "srem": _int_rem}

_INT_BINARY: dict[str, Callable[[int, int], Scalar]] = {
    "add": lambda a, b: _wrap(a + b),
    "sub": lambda a, b: _wrap(a - b),
    "mul": lambda a, b: _wrap(a * b),
    "cmp_slt": lambda a, b: a < b,
    "cmp_sle": lambda a, b: a <= b,
    "cmp_eq": lambda a, b: a == b,
    "cmp_ne": lambda a, b: a != b,
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
}


def fold_builtin(name: str, types: Sequence[Type], values: Sequence[Scalar], result: Type) -> Scalar | None:
    """The value builtin ``name`` computes on the constants ``values`` (of ``types``) as a run
    would, or None when it is not folded (see the module docstring)."""
    if name in _INT_BINARY or name in _INT_DIVISION:
        return _fold_integer(name, types, values)
    if types and all(t in (FLOAT, DOUBLE) for t in types):
        floats = [float(v) for v in values]
        if name in _COMPARE:
            return _COMPARE[name](floats[0], floats[1])
        if any(math.isnan(x) for x in floats):
            return None
        return _fold_float(name, types[0], floats, result)
    if name == "sitofp" and tuple(types) == (INT,):
        return _int_to_float(int(values[0]), result)
    return None


def _fold_integer(name: str, types: Sequence[Type], values: Sequence[Scalar]) -> Scalar | None:
    a, b = (int(v) for v in values)
    if name in _INT_DIVISION:
        if b == 0:
            return None  # the run faults here: so must the folded code
        return _INT_DIVISION[name](a, b)
    value = _INT_BINARY[name](a, b)
    return bool(value) if types[0] == BOOL or isinstance(value, bool) else value


def _numpy() -> Any:
    """NumPy, imported on the first fold: parsing and printing must not pay for it."""
    import numpy

    return numpy


def _fold_float(name: str, t: Type, floats: list[float], result: Type) -> Scalar | None:
    np = _numpy()
    with np.errstate(all="ignore"):
        if name == "fptosi":
            x = floats[0]
            if not -9.223372036854775808e18 <= x < 9.223372036854775808e18:
                return None  # the run faults here
            return int(x)
        if name == "fpext":
            return floats[0]  # binary32 to binary64 is exact
        if name == "fptrunc":
            return _float_result(np.float32(floats[0]))
        dtype = np.float32 if t == FLOAT else np.float64
        operands = [dtype(x) for x in floats]
        if name == "fneg":
            return _float_result(-operands[0])
        if name == "abs":
            return _float_result(abs(operands[0]))
        op = _FLOAT_BINARY.get(name)
        if op is None or len(operands) != 2:
            return None
        return _float_result(op(operands[0], operands[1]))


def _float_result(value: Any) -> float | None:
    x = float(value)
    return None if math.isnan(x) else x


def _int_to_float(a: int, result: Type) -> float:
    if result == DOUBLE:
        return float(a)
    # As the run converts: through a double where that is exact, else through int64, rounding once.
    np = _numpy()
    return float(np.float32(a) if -(2**53) <= a <= 2**53 else np.float32(np.int64(a)))
