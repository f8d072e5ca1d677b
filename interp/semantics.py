"""What each builtin computes on scalars: a table of Python statement templates, by builtin name
and operand type, and the helpers those templates call.

A template is one or more lines of Python with ``{r}`` (the result variable), ``{a}``, ``{b}`` (the
operand variables) and ``{site}`` (the instruction's index in the program's site table, for
faults). Double arithmetic is IEEE binary64 on ``float`` (the helpers return ``inf``/``nan`` where
``math`` would raise), Float arithmetic is NumPy's ``float32``, Int arithmetic wraps at 64 bits.
Tensor operands go to the backend instead (``accel``); the compiler decides which by type, once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from interp.faults import Fault
from sil.types import BOOL, DOUBLE, FLOAT, INT, ScalarType

_INF = math.inf
_NAN = math.nan
_MASK = 2**64 - 1
_HALF = 2**63


def wrap_int(x: int) -> int:
    """``x`` wrapped into the signed 64-bit range."""
    return ((x + _HALF) & _MASK) - _HALF


def double_div_by_zero(a: float, b: float) -> float:
    """IEEE ``a / b`` for ``b`` equal to ±0.0 (Python raises ZeroDivisionError)."""
    if a != a or a == 0.0:
        return _NAN
    return math.copysign(_INF, a) * math.copysign(1.0, b)


def double_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return _INF


def double_log(x: float) -> float:
    try:
        return math.log(x)
    except ValueError:
        return -_INF if x == 0.0 else _NAN


def double_sin(x: float) -> float:
    try:
        return math.sin(x)
    except ValueError:
        return _NAN


def double_cos(x: float) -> float:
    try:
        return math.cos(x)
    except ValueError:
        return _NAN


def double_sqrt(x: float) -> float:
    try:
        return math.sqrt(x)
    except ValueError:
        return _NAN


def double_pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except (ValueError, OverflowError, ZeroDivisionError):
        return float(np.power(np.float64(a), np.float64(b)))


def double_min(a: float, b: float) -> float:
    """NumPy's ``minimum``: NaN propagates."""
    if a < b:
        return a
    if b < a:
        return b
    return float(np.minimum(a, b))


def double_max(a: float, b: float) -> float:
    """NumPy's ``maximum``: NaN propagates."""
    if a > b:
        return a
    if b > a:
        return b
    return float(np.maximum(a, b))


def int_div(a: int, b: int, site: int) -> int:
    """Signed division truncating toward zero, as SIL's ``sdiv``; a fault when ``b`` is zero."""
    if b == 0:
        raise Fault(site, "integer division by zero")
    q = abs(a) // abs(b)
    return wrap_int(q if (a < 0) == (b < 0) else -q)


def int_rem(a: int, b: int, site: int) -> int:
    """The remainder of ``sdiv``: it has the sign of ``a``; a fault when ``b`` is zero."""
    if b == 0:
        raise Fault(site, "integer remainder by zero")
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def float_to_int(x: Any, site: int) -> int:
    """``fptosi``: truncation toward zero; a fault when the value is NaN or does not fit in Int."""
    f = float(x)
    if f != f or not -9.223372036854775808e18 <= f < 9.223372036854775808e18:
        raise Fault(site, f"fptosi of {f!r}, which does not fit in Int")
    return int(f)


# Names the templates use, bound into every compiled function that needs them.
HELPERS: dict[str, Any] = {
    "_wrap": wrap_int,
    "_ddiv0": double_div_by_zero,
    "_dexp": double_exp,
    "_dlog": double_log,
    "_dsin": double_sin,
    "_dcos": double_cos,
    "_dsqrt": double_sqrt,
    "_dpow": double_pow,
    "_dmin": double_min,
    "_dmax": double_max,
    "_tanh": math.tanh,
    "_exp": math.exp,
    "_log": math.log,
    "_sin": math.sin,
    "_cos": math.cos,
    "_sqrt": math.sqrt,
    "_sdiv": int_div,
    "_srem": int_rem,
    "_fptosi": float_to_int,
    "_f32": np.float32,
    "_i64": np.int64,
    "_f32_zero": np.float32(0.0),
    "_f32_one": np.float32(1.0),
    "_np_sign": np.sign,
    "_np_exp": np.exp,
    "_np_log": np.log,
    "_np_sin": np.sin,
    "_np_cos": np.cos,
    "_np_tanh": np.tanh,
    "_np_sqrt": np.sqrt,
    "_np_power": np.power,
    "_np_minimum": np.minimum,
    "_np_maximum": np.maximum,
}

_IN_RANGE = "if not -9223372036854775808 <= {r} <= 9223372036854775807: {r} = _wrap({r})"

_FLOAT_COMMON = {
    "fadd": "{r} = {a} + {b}",
    "fsub": "{r} = {a} - {b}",
    "fmul": "{r} = {a} * {b}",
    "fneg": "{r} = -{a}",
    "abs": "{r} = abs({a})",
    "fcmp_olt": "{r} = {a} < {b}",
    "fcmp_ole": "{r} = {a} <= {b}",
    "fcmp_ogt": "{r} = {a} > {b}",
    "fcmp_oge": "{r} = {a} >= {b}",
    "fcmp_oeq": "{r} = {a} == {b}",
    "fcmp_one": "{r} = {a} < {b} or {a} > {b}",
    "fptosi": "{r} = _fptosi({a}, {site})",
}

_DOUBLE = {
    **_FLOAT_COMMON,
    "fdiv": "{r} = {a} / {b} if {b} else _ddiv0({a}, {b})",
    "fmin": "{r} = _dmin({a}, {b})",
    "fmax": "{r} = _dmax({a}, {b})",
    # The math functions are called directly (a C call, where a helper would add a Python frame);
    # where math raises, the handler gives IEEE's answer, as the helpers above do.
    "exp": "try:\n    {r} = _exp({a})\nexcept OverflowError:\n    {r} = _dexp({a})",
    "log": "try:\n    {r} = _log({a})\nexcept ValueError:\n    {r} = _dlog({a})",
    "sin": "try:\n    {r} = _sin({a})\nexcept ValueError:\n    {r} = _dsin({a})",
    "cos": "try:\n    {r} = _cos({a})\nexcept ValueError:\n    {r} = _dcos({a})",
    "tanh": "{r} = _tanh({a})",
    "sqrt": "try:\n    {r} = _sqrt({a})\nexcept ValueError:\n    {r} = _dsqrt({a})",
    "pow": "{r} = _dpow({a}, {b})",
    "relu": "{r} = {a} if not {a} <= 0.0 else 0.0",
    "step": "{r} = 1.0 if {a} > 0.0 else 0.0",
    # NaN stays NaN, and -0.0 gives 0.0, as NumPy's sign does.
    "sign": "{r} = 1.0 if {a} > 0.0 else -1.0 if {a} < 0.0 else {a} if {a} != {a} else 0.0",
    "fptrunc": "{r} = _f32({a})",
}

_FLOAT = {
    **_FLOAT_COMMON,
    # NumPy compares float32 scalars into numpy.bool_; Bool values are Python bools.
    **{k: v.replace("{r} = ", "{r} = bool(") + ")" for k, v in _FLOAT_COMMON.items() if k.startswith("fcmp")},
    "fdiv": "{r} = {a} / {b}",
    "fmin": "{r} = _np_minimum({a}, {b})",
    "fmax": "{r} = _np_maximum({a}, {b})",
    "exp": "{r} = _np_exp({a})",
    "log": "{r} = _np_log({a})",
    "sin": "{r} = _np_sin({a})",
    "cos": "{r} = _np_cos({a})",
    "tanh": "{r} = _np_tanh({a})",
    "sqrt": "{r} = _np_sqrt({a})",
    "pow": "{r} = _np_power({a}, {b})",
    "relu": "{r} = _np_maximum({a}, _f32_zero)",
    "step": "{r} = _f32_one if {a} > 0.0 else _f32_zero",
    "sign": "{r} = _np_sign({a})",
    "fpext": "{r} = float({a})",
}

_BITWISE = {"and": "{r} = {a} & {b}", "or": "{r} = {a} | {b}", "xor": "{r} = {a} ^ {b}"}
_EQUALITY = {"cmp_eq": "{r} = {a} == {b}", "cmp_ne": "{r} = {a} != {b}"}

_INT = {
    "add": "{r} = {a} + {b}\n" + _IN_RANGE,
    "sub": "{r} = {a} - {b}\n" + _IN_RANGE,
    "mul": "{r} = {a} * {b}\n" + _IN_RANGE,
    "sdiv": "{r} = _sdiv({a}, {b}, {site})",
    "srem": "{r} = _srem({a}, {b}, {site})",
    "cmp_slt": "{r} = {a} < {b}",
    "cmp_sle": "{r} = {a} <= {b}",
    **_BITWISE,
    **_EQUALITY,
}

# ``select`` is keyed by its first operand, the Bool condition.
_BOOL = {**_BITWISE, **_EQUALITY, "select": "{r} = {b} if {a} else {c}"}

# ``sitofp`` is keyed by its result type: the operand is always Int.
# To Float: np.float32 of a Python int converts through a double, which is exact only up to 2**53;
# beyond, through int64, so that the value rounds once.
_SITOFP = {
    DOUBLE: "{r} = float({a})",
    FLOAT: "{r} = _f32({a}) if -9007199254740992 <= {a} <= 9007199254740992 else _f32(_i64({a}))",
}

SCALAR_TEMPLATES: dict[ScalarType, dict[str, str]] = {DOUBLE: _DOUBLE, FLOAT: _FLOAT, INT: _INT, BOOL: _BOOL}


def scalar_template(
    name: str, operand: ScalarType, result: ScalarType, float_as_double: bool = False
) -> str | None:
    """The template of builtin ``name`` on scalars of type ``operand`` (None: no such builtin). In
    a Double shadow (``float_as_double``), Float's are Double's, and a conversion between the two
    is the identity."""
    if float_as_double:
        if {operand, result} == {FLOAT, DOUBLE}:
            return "{r} = {a}"
        operand, result = (DOUBLE if operand == FLOAT else operand), (DOUBLE if result == FLOAT else result)
    if name == "sitofp":
        return _SITOFP.get(result)
    return SCALAR_TEMPLATES[operand].get(name)
