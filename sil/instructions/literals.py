"""Literals: ``integer_literal`` and ``float_literal`` (with a fused fast path for a decimal
``float_literal``), and the float bit-pattern helpers."""

from __future__ import annotations

import math
import re
import struct
from typing import TYPE_CHECKING, Any, ClassVar, Self

import attrs

from sil.diagnostics import describe_integer
from sil.ir import Instruction
from sil.lexer import END_OF_LINE, SPACES, FastForm
from sil.types import (
    BOOL,
    DOUBLE,
    FLOAT,
    INT,
    Type,
)

if TYPE_CHECKING:
    from sil.parser import Parser
    from sil.printer import Printer
    from sil.verifier import Verifier


INT_MIN, INT_MAX = -(2**63), 2**63 - 1


@attrs.define(eq=False, slots=True)
class IntegerLiteralInst(Instruction):
    """``integer_literal $Int, -3``; no operands."""

    opname: ClassVar[str] = "integer_literal"
    type: Type
    value: int

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    @classmethod
    def parse(cls, p: Parser) -> Self:
        t = p.type()
        p.expect(",")
        at = p.pos
        value = p.integer()
        if t == BOOL and value == -1:
            value = 1  # SIL writes a 1-bit true as -1
        if t == INT and not INT_MIN <= value <= INT_MAX:
            p.error(f"integer literal {describe_integer(value)} does not fit in Int", at=at)
        return cls([], t, value)

    def format(self, pr: Printer) -> str:
        return f"${self.type}, {self.value}"

    def verify(self, v: Verifier) -> None:
        if self.type not in (INT, BOOL):
            v.error(self, f"integer_literal must have type Int or Bool, not {self.type}")
        elif self.type == INT and not INT_MIN <= self.value <= INT_MAX:
            v.error(self, f"integer literal {describe_integer(self.value)} does not fit in Int")
        elif self.type == BOOL and self.value not in (0, 1):
            v.error(self, f"Bool literal must be 0 or 1, not {describe_integer(self.value)}")


def round_to_float32(x: float) -> float:
    """``x`` rounded to the nearest binary32 value (overflow gives ±inf; a NaN keeps its bits)."""
    if math.isnan(x):
        return x
    try:
        return float(struct.unpack("<f", struct.pack("<f", x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


def _decimal(text: str, t: Type) -> float:
    """The value of a decimal literal of type ``t`` (a Float rounded to binary32)."""
    value = float(text)
    return round_to_float32(value) if t == FLOAT else value


def _double_from_bits(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", bits))[0])


def _double_bits(value: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", value))[0])


def float_from_bits(bits: int, t: Type) -> float:
    """The value of an IEEE bit pattern of type ``t``, held in a Python float.

    A binary32 NaN is widened by hand: the hardware conversion would quiet a signalling NaN and
    lose its payload bit, and the printer must give back the bits the input had.
    """
    if t != FLOAT:
        return _double_from_bits(bits)
    if bits & 0x7F800000 == 0x7F800000 and bits & 0x007FFFFF:
        sign = (bits >> 31) & 1
        return _double_from_bits((sign << 63) | (0x7FF << 52) | ((bits & 0x007FFFFF) << 29))
    return float(struct.unpack("<f", struct.pack("<I", bits))[0])


def float_bits(value: float, t: Type) -> int:
    """The IEEE bit pattern of ``value`` as type ``t`` (the inverse of ``float_from_bits``)."""
    if t != FLOAT:
        return _double_bits(value)
    if math.isnan(value):
        wide = _double_bits(value)
        return ((wide >> 63) << 31) | 0x7F800000 | ((wide >> 29) & 0x007FFFFF)
    return int(struct.unpack("<I", struct.pack("<f", value))[0])


_CANONICAL_NAN: dict[Type, int] = {FLOAT: 0x7FC00000, DOUBLE: 0x7FF8000000000000}


def format_float(value: float, t: Type) -> str:
    """The shortest decimal that reads back as exactly ``value`` in type ``t`` (for a Float, the
    binary32 value nearest ``value``).

    NaNs other than the default quiet NaN print as hex bit patterns, so that no bits are lost.
    """
    if math.isnan(value):
        bits = float_bits(value, t)
        if bits == _CANONICAL_NAN.get(t):
            return "nan"
        return f"0x{bits:08X}" if t == FLOAT else f"0x{bits:016X}"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if t == FLOAT:
        value = round_to_float32(value)  # a Float literal is its binary32 value, however made
        for digits in range(1, 10):
            shortest = float(f"{value:.{digits}g}")
            if round_to_float32(shortest) == value:
                text = repr(shortest)  # positional like a Double's: 100.0, not 1e+02
                break
    else:
        text = repr(value)
    if "." not in text and "e" not in text and "n" not in text:
        text += ".0"
    return text


@attrs.define(eq=False, slots=True)
class FloatLiteralInst(Instruction):
    """``float_literal $Float, 1.5`` (or a hex bit pattern, ``0x3F800000``); no operands."""

    opname: ClassVar[str] = "float_literal"
    # Decimal only: hex bit patterns take ``parse``.
    fast_form: ClassVar[FastForm] = FastForm(
        r"[ \t]+\$(Float|Double)"
        + SPACES
        + ","
        + SPACES
        + r"([-+]?\d++(?:\.\d*+)?(?:[eE][-+]?\d++)?)"
        + END_OF_LINE,
        result=True,
    )
    type: Type
    value: float

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    @classmethod
    def parse_fast(cls, p: Parser, m: re.Match[str], groups: tuple[str | Any, ...]) -> Self:
        _, type_name, number = groups
        t = FLOAT if type_name == "Float" else DOUBLE
        return cls([], t, _decimal(number, t))

    @classmethod
    def parse(cls, p: Parser) -> Self:
        t = p.type()
        p.expect(",")
        at = p.pos
        text = p.number()
        if t not in (FLOAT, DOUBLE):
            p.error(f"float_literal must have type Float or Double, not {t}", at=at)
        body = text.lstrip("+-")
        if body[:2] in ("0x", "0X"):
            bits = int(body, 16)
            width = 32 if t == FLOAT else 64
            if bits >= 1 << width:
                p.error(f"hex float literal has more than {width} bits", at=at)
            value = float_from_bits(bits, t)
            if text.startswith("-"):
                value = -value
        else:
            value = _decimal(text, t)
        return cls([], t, value)

    def format(self, pr: Printer) -> str:
        return f"${self.type.text}, {format_float(self.value, self.type)}"

    def verify(self, v: Verifier) -> None:
        if self.type not in (FLOAT, DOUBLE):
            v.error(self, f"float_literal must have type Float or Double, not {self.type}")
        elif self.type == FLOAT and not math.isnan(self.value) and round_to_float32(self.value) != self.value:
            v.error(self, f"Float literal {self.value!r} is not a binary32 value")
