"""Values in SIL's literal syntax: results printed by ``silopt --run``, and arguments read from
the command line (``--args 1.5 2 w.npy``)."""

from __future__ import annotations

import os
import re
import tokenize
from typing import Any

import numpy as np

from interp.values import INT_MAX, INT_MIN, EnumValue, StructValue
from sil.diagnostics import quoted
from sil.instructions.literals import float_from_bits, format_float
from sil.ir import EnumDecl, Module, StructDecl
from sil.types import (
    BOOL,
    DOUBLE,
    FLOAT,
    INT,
    TENSOR_SHAPE,
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
    if t == TENSOR_SHAPE:
        return f"[{', '.join(str(d) for d in value)}]"
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
                raise ArgumentSyntaxError(f"{quoted(text)} has more than {width} bits")
            value = float_from_bits(bits, t)
            return -value if negative else value
        if not _FLOAT_RE.fullmatch(text):
            raise ArgumentSyntaxError(f"{quoted(text)} is not a {t} literal")
        return float(text)
    if t == INT:
        if not _INT_RE.fullmatch(text):
            raise ArgumentSyntaxError(f"{quoted(text)} is not an Int literal")
        # Beyond 20 digits it cannot fit; and Python refuses to convert more than 4,300 digits.
        number = int(text) if len(text) <= _INT_DIGITS_MAX else None
        if number is None or not INT_MIN <= number <= INT_MAX:
            raise ArgumentSyntaxError(f"{quoted(text)} does not fit in Int")
        return number
    if t == BOOL:
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ArgumentSyntaxError(f"{quoted(text)} is not a Bool (true or false)")
    if t == TENSOR_SHAPE:
        return _parse_shape(text)
    if isinstance(t, TensorType):
        if not text.endswith(".npy"):
            raise ArgumentSyntaxError(f"a {t} argument is the path of a .npy file, not {quoted(text)}")
        return _read_npy(text)
    raise ArgumentSyntaxError(f"a {t} cannot be given on the command line")


_INT_DIGITS_MAX = 24
_SHAPE_RE = re.compile(r"\[\s*(?:\d+\s*(?:,\s*\d+\s*)*)?\]")


def _parse_shape(text: str) -> tuple[int, ...]:
    """A TensorShape as ``silopt --run`` prints it: ``[2, 3]``, ``[]`` for rank 0."""
    if not _SHAPE_RE.fullmatch(text.strip()):
        raise ArgumentSyntaxError(f"{quoted(text)} is not a TensorShape (dimensions in brackets: [2, 3])")
    dims = tuple(int(d) for d in re.findall(r"\d+", text))
    if any(len(str(d)) > _INT_DIGITS_MAX or d > INT_MAX for d in dims):
        raise ArgumentSyntaxError(f"{quoted(text)} has a dimension that does not fit in Int")
    return dims


def _read_npy(path: str) -> np.ndarray[Any, Any]:
    """The numeric array a ``.npy`` file holds. A file that is empty, not in the format (a ``.npz``
    zip archive), has a malformed header, or claims more data than it holds is an
    ArgumentSyntaxError, found before anything is allocated."""
    try:
        with open(path, "rb") as f:
            magic = f.read(len(np.lib.format.MAGIC_PREFIX))
            if magic != np.lib.format.MAGIC_PREFIX:
                what = (
                    "empty"
                    if not magic
                    else "a zip archive (.npz)"
                    if magic[:2] == b"PK"
                    else "not in the format"
                )
                raise ArgumentSyntaxError(f"{quoted(path)} is not a .npy file: it is {what}")
            f.seek(0)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            if dtype.kind not in "fiu":
                raise ArgumentSyntaxError(f"{quoted(path)} does not hold a numeric array")
            size = dtype.itemsize * int(np.prod(shape, dtype=object))
            if size > os.fstat(f.fileno()).st_size - f.tell():
                raise ArgumentSyntaxError(f"{quoted(path)} holds less data than its header says")
            f.seek(0)
            array = np.lib.format.read_array(f, allow_pickle=False)
    except OSError as e:
        raise ArgumentSyntaxError(f"cannot read {quoted(path)}: {e.strerror or e}") from None
    except (SyntaxError, tokenize.TokenError):
        raise ArgumentSyntaxError(f"{quoted(path)} is not a .npy file: its header is malformed") from None
    except (ValueError, EOFError, MemoryError) as e:
        raise ArgumentSyntaxError(f"{quoted(path)} is not a .npy file: {e}") from None
    return array
