"""Values in SIL's literal syntax: results printed by ``silopt --run``, and arguments read from
the command line (``--args 1.5 2 w.npy``)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from interp.values import INT_MAX, INT_MIN, EnumValue, StructValue
from sil.instructions.literals import float_from_bits, format_float
from sil.ir import EnumDecl, Module, StructDecl
from sil.types import (
    BOOL,
    DOUBLE,
    FLOAT,
    INT,
    FunctionType,
    NominalType,
    ScalarType,
    TensorType,
    TupleType,
    Type,
)

_FLOAT_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan)")
_HEX_RE = re.compile(r"[-+]?0[xX][0-9a-fA-F]+")
_INT_RE = re.compile(r"[-+]?\d+")
TENSOR_SUMMARY_THRESHOLD = 64  # elements; larger tensors print their corners, NumPy-style


def format_value(value: Any, t: Type, module: Module) -> str:
    """A run's Python-API value of type ``t`` in literal syntax: ``1.5``, ``(1.0, 2)``,
    ``Point(x: 1.0, y: 2.0)``, ``Shape.circle(1.0)``, ``Tensor<Float>(shape: [2], [1.0, 2.0])``."""
    if isinstance(t, ScalarType):
        if t == BOOL:
            return "true" if value else "false"
        if t == INT:
            return str(value)
        return format_float(float(value), t)
    if isinstance(t, TupleType):
        parts = [
            f"{label}: {format_value(v, e, module)}" if label else format_value(v, e, module)
            for v, e, label in zip(value, t.elements, t.labels)
        ]
        return f"({', '.join(parts)})"
    if isinstance(t, TensorType):
        return _format_tensor(value, t)
    if isinstance(t, NominalType):
        decl = module.lookup_type(t.name)
        if isinstance(value, StructValue) and isinstance(decl, StructDecl):
            fields = ", ".join(
                f"{f.name}: {format_value(v, f.type, module)}" for f, v in zip(decl.fields, value)
            )
            return f"{t.name}({fields})"
        if isinstance(value, EnumValue) and isinstance(decl, EnumDecl):
            case = decl.case(value.case)
            if case is None or case.payload is None:
                return f"{t.name}.{value.case}"
            return f"{t.name}.{value.case}({format_value(value.payload, case.payload, module)})"
    if isinstance(t, FunctionType):
        return f"<function {t}>"
    return repr(value)


def _format_tensor(value: Any, t: TensorType) -> str:
    host = value if isinstance(value, np.ndarray) else _to_host(value)
    shape = ", ".join(str(d) for d in host.shape)
    element = t.element

    def one(x: Any) -> str:
        return format_float(float(x), element)

    body = np.array2string(
        host,
        separator=", ",
        threshold=TENSOR_SUMMARY_THRESHOLD,
        edgeitems=3,
        formatter={"float_kind": one},
        max_line_width=100,
    )
    return f"{t}(shape: [{shape}], dtype: {host.dtype}, {body})"


def _to_host(value: Any) -> np.ndarray[Any, Any]:
    get = getattr(value, "get", None)  # a CuPy array
    return np.asarray(get() if callable(get) else value)


class ArgumentSyntaxError(Exception):
    """A command-line argument that does not spell a value of its parameter's type."""


def parse_argument(text: str, t: Type) -> Any:
    """The Python-API value that command-line argument ``text`` spells for a parameter of type ``t``:
    a number for Float/Double (decimal, ``inf``, ``nan``, or a hex bit pattern), an integer for Int,
    ``true``/``false`` for Bool, the path of a ``.npy`` file for a tensor."""
    if t in (FLOAT, DOUBLE):
        if _HEX_RE.fullmatch(text):
            negative = text.startswith("-")
            bits = int(text.lstrip("+-"), 16)
            width = 32 if t == FLOAT else 64
            if bits >= 1 << width:
                raise ArgumentSyntaxError(f"'{text}' has more than {width} bits")
            value = float_from_bits(bits, t)
            return -value if negative else value
        if not _FLOAT_RE.fullmatch(text):
            raise ArgumentSyntaxError(f"'{text}' is not a {t} literal")
        return float(text)
    if t == INT:
        if not _INT_RE.fullmatch(text):
            raise ArgumentSyntaxError(f"'{text}' is not an Int literal")
        value = int(text)
        if not INT_MIN <= value <= INT_MAX:
            raise ArgumentSyntaxError(f"{text} does not fit in Int")
        return value
    if t == BOOL:
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ArgumentSyntaxError(f"'{text}' is not a Bool (true or false)")
    if isinstance(t, TensorType):
        if not text.endswith(".npy"):
            raise ArgumentSyntaxError(f"a {t} argument is the path of a .npy file, not '{text}'")
        try:
            array = np.load(text, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ArgumentSyntaxError(f"cannot read '{text}': {e}") from None
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
            raise ArgumentSyntaxError(f"'{text}' does not hold a numeric array")
        return array
    raise ArgumentSyntaxError(f"a {t} cannot be given on the command line")
