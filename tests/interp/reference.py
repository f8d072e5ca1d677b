"""The reference semantics of the builtins: NumPy ufuncs on float32 (Float) or float64 (Double)
scalars and arrays, NumPy int64 arithmetic (Int) with C's truncating division, Python on Bool; and
the floating-point operands worth trying."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

FLOAT_TYPES = ("Float", "Double")
DTYPES: dict[str, type[np.floating[Any]]] = {"Float": np.float32, "Double": np.float64}

_COMMON_VALUES = [
    0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 0.7, 2.0, 3.0, -8.0, 0.1, 1 / 3, 16777216.0, 1e-8, 1e-40, 1e30, -1e30,
    88.8, 100.0, -100.0, 3.4e38, float("inf"), float("-inf"), float("nan"),
]  # fmt: skip
VALUES: dict[str, list[float]] = {
    "Float": _COMMON_VALUES,
    "Double": [*_COMMON_VALUES, 1e300, -1e300, 5e-324, 1e-310, 710.0, 2.0**-1074 * 3],
}


def _relu(x: Any) -> Any:
    return np.maximum(x, np.asarray(x).dtype.type(0))


def _step(x: Any) -> Any:
    """1 where ``x > 0``, else 0 (NaN included): the mask of ``relu``'s derivative."""
    return np.greater(x, 0).astype(np.asarray(x).dtype)


def _one(a: Any, b: Any) -> Any:
    return np.less(a, b) | np.greater(a, b)


UNARY: dict[str, Callable[[Any], Any]] = {
    "fneg": np.negative,
    "exp": np.exp,
    "log": np.log,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "relu": _relu,
    "step": _step,
    "sign": np.sign,
}
BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "fadd": np.add,
    "fsub": np.subtract,
    "fmul": np.multiply,
    "fdiv": np.divide,
    "fmin": np.minimum,
    "fmax": np.maximum,
    "pow": np.power,
}
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "fcmp_olt": np.less,
    "fcmp_ole": np.less_equal,
    "fcmp_ogt": np.greater,
    "fcmp_oge": np.greater_equal,
    "fcmp_oeq": np.equal,
    "fcmp_one": _one,
}


def numpy_power_is_ambiguous(a: float, b: float) -> bool:
    """NumPy computes ``power(x, 0.5)`` as ``sqrt(x)`` when the exponent is a scalar (stride 0) but as
    C's ``pow`` for an array of exponents; the two differ at x = -0.0 (-0.0 or +0.0) and x = -inf
    (NaN or +inf), so there the reference is not NumPy's to give and the cases are left out."""
    return b == 0.5 and (a == float("-inf") or (a == 0.0 and np.signbit(a)))


# Scalar Double transcendentals run on the platform's libm (Python's ``math``), which may differ from
# NumPy's float64 kernels by an ulp; where ``math`` raises, the IEEE result is NumPy's.
LIBM: dict[Callable[..., Any], Callable[..., float]] = {
    np.exp: math.exp,
    np.log: math.log,
    np.sin: math.sin,
    np.cos: math.cos,
    np.tanh: math.tanh,
    np.power: math.pow,
}


def reference(fn: Callable[..., Any], type_name: str, *args: float) -> Any:
    """``fn`` on scalars of the type, with IEEE results instead of warnings or exceptions."""
    if type_name == "Double" and fn in LIBM:
        try:
            return LIBM[fn](*args)
        except (ValueError, OverflowError, ZeroDivisionError):
            pass
    dtype = DTYPES[type_name]
    with np.errstate(all="ignore"):
        return fn(*[dtype(a) for a in args])


def _int_ref(fn: Callable[[Any, Any], Any]) -> Callable[[int, int], Any]:
    def ref(a: int, b: int) -> Any:
        with np.errstate(all="ignore"):
            result = fn(np.array([a], dtype=np.int64), np.array([b], dtype=np.int64))[0]
        return bool(result) if isinstance(result, np.bool_) else int(result)

    return ref


def _c_div(a: Any, b: Any) -> Any:
    """C's truncating division on int64 arrays (wrapping INT_MIN / -1)."""
    return np.floor_divide(a - np.fmod(a, b), b)


INT_BINARY: dict[str, Callable[[int, int], Any]] = {
    "add": _int_ref(np.add),
    "sub": _int_ref(np.subtract),
    "mul": _int_ref(np.multiply),
    "sdiv": _int_ref(_c_div),
    "srem": _int_ref(np.fmod),
    "and": _int_ref(np.bitwise_and),
    "or": _int_ref(np.bitwise_or),
    "xor": _int_ref(np.bitwise_xor),
}
INT_COMPARISONS: dict[str, Callable[[int, int], Any]] = {
    "cmp_slt": _int_ref(np.less),
    "cmp_sle": _int_ref(np.less_equal),
    "cmp_eq": _int_ref(np.equal),
    "cmp_ne": _int_ref(np.not_equal),
}
BOOL_OPS: dict[str, Callable[[bool, bool], bool]] = {
    "and": lambda a, b: a and b,
    "or": lambda a, b: a or b,
    "xor": lambda a, b: a != b,
    "cmp_eq": lambda a, b: a == b,
    "cmp_ne": lambda a, b: a != b,
}
