"""Float literals (SIL-SPEC §1, §2): binary32 rounding, hex bit patterns, shortest printing,
and exact round trips of inf, nan and -0.0."""

from __future__ import annotations

import math
import random
import struct

import pytest

from sil import parse, print_module
from sil.builder import Builder
from sil.instructions import (
    FloatLiteralInst,
    IntegerLiteralInst,
    float_bits,
    float_from_bits,
    format_float,
    round_to_float32,
)
from sil.ir import Function, Module
from sil.types import DOUBLE, FLOAT, VOID, FunctionType, Type


def f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def literal(t: str, text: str) -> FloatLiteralInst:
    """The literal ``float_literal $<t>, <text>`` as parsed."""
    m = parse(
        "sil @f : $@convention(thin) () -> () {\n"
        "bb0:\n"
        f"  %0 = float_literal ${t}, {text}\n"
        "  %1 = tuple ()\n"
        "  return %1 : $()\n"
        "}\n"
    )
    inst = m.functions["f"].entry.instructions[0]
    assert isinstance(inst, FloatLiteralInst)
    return inst


def printed(t: str, text: str) -> str:
    """How ``float_literal $<t>, <text>`` prints back (the literal's text only)."""
    m = parse(
        "sil @f : $@convention(thin) () -> () {\n"
        "bb0:\n"
        f"  %0 = float_literal ${t}, {text}\n"
        "  %1 = tuple ()\n"
        "  return %1 : $()\n"
        "}\n"
    )
    line = print_module(m).splitlines()[2]
    prefix = f"  %0 = float_literal ${t}, "
    assert line.startswith(prefix), line
    return line[len(prefix) :]


def bits_of(inst: FloatLiteralInst) -> int:
    return float_bits(inst.value, inst.type)


# --- Float is binary32 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["0.1", "1.1", "3.14159265358979", "16777217", "1e-40", "123456789", "2.718281828459045", "-0.3"],
)
def test_float_literals_are_rounded_to_binary32(text: str) -> None:
    inst = literal("Float", text)
    assert inst.value == f32(float(text))
    assert round_to_float32(inst.value) == inst.value


def test_float_rounding_examples() -> None:
    assert literal("Float", "0.1").value == 0.10000000149011612
    assert literal("Float", "16777217").value == 16777216.0
    assert literal("Float", "16777219").value == 16777220.0


def test_double_literals_are_not_rounded() -> None:
    assert literal("Double", "0.1").value == 0.1
    assert literal("Double", "16777217").value == 16777217.0


def test_float_overflow_gives_infinity() -> None:
    assert literal("Float", "1e39").value == math.inf
    assert literal("Float", "-1e39").value == -math.inf
    # Just above the largest Float, but rounding to it rather than to infinity.
    assert literal("Float", "3.4028235e38").value == 3.4028234663852886e38
    assert literal("Float", "3.4028235677973362e38").value == 3.4028234663852886e38
    # Exactly halfway between the largest Float and 2**128: ties to even, which is infinity.
    assert literal("Float", "3.4028235677973366e38").value == math.inf


def test_round_to_float32() -> None:
    assert round_to_float32(0.1) == 0.10000000149011612
    assert round_to_float32(1e300) == math.inf
    assert round_to_float32(-1e300) == -math.inf
    assert math.copysign(1.0, round_to_float32(-1e-50)) == -1.0


def test_builder_rounds_float_literals() -> None:
    m = Module()
    fn = m.add_function(Function("f", FunctionType((), VOID)))
    b = Builder.at_end(fn.add_block("bb0"), m)
    assert b.float_literal(FLOAT, 0.1).owner.value == 0.10000000149011612  # type: ignore[union-attr]
    assert b.float_literal(DOUBLE, 0.1).owner.value == 0.1  # type: ignore[union-attr]


# --- hex bit patterns ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0x3F800000", 1.0),
        ("0x3f800000", 1.0),
        ("0X3F800000", 1.0),
        ("0xBF800000", -1.0),
        ("-0x3F800000", -1.0),
        ("0x40490FDB", f32(math.pi)),
        ("0x3DCCCCCD", f32(0.1)),
        ("0x00000001", 2.0**-149),
        ("0x7F7FFFFF", 3.4028234663852886e38),
        ("0x7F800000", math.inf),
        ("0xFF800000", -math.inf),
        ("0x00000000", 0.0),
    ],
)
def test_float_hex_bit_patterns(text: str, value: float) -> None:
    assert literal("Float", text).value == value


def test_float_hex_negative_zero() -> None:
    inst = literal("Float", "0x80000000")
    assert bits_of(inst) == 0x80000000
    assert math.copysign(1.0, inst.value) == -1.0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0x3FF0000000000000", 1.0),
        ("0xBFF0000000000000", -1.0),
        ("0x3FB999999999999A", 0.1),
        ("0x7FF0000000000000", math.inf),
        ("0x0000000000000001", 5e-324),
        # A Double hex literal is a 64-bit pattern: 0x3F800000 is a tiny subnormal, not 1.0.
        ("0x3F800000", struct.unpack("<d", struct.pack("<Q", 0x3F800000))[0]),
    ],
)
def test_double_hex_bit_patterns(text: str, value: float) -> None:
    assert literal("Double", text).value == value


@pytest.mark.parametrize(("t", "text"), [("Float", "0x100000000"), ("Double", "0x10000000000000000")])
def test_hex_literal_wider_than_the_type_is_an_error(t: str, text: str) -> None:
    with pytest.raises(Exception, match="more than"):
        literal(t, text)


def test_float_bits_helpers() -> None:
    assert float_bits(1.0, FLOAT) == 0x3F800000
    assert float_bits(1.0, DOUBLE) == 0x3FF0000000000000
    assert float_from_bits(0x3F800000, FLOAT) == 1.0
    assert float_from_bits(0x3FF0000000000000, DOUBLE) == 1.0


# --- shortest printing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5", "1.5"),
        ("0.1", "0.1"),
        ("1", "1.0"),
        ("-2", "-2.0"),
        ("+7.25", "7.25"),
        ("0x3DCCCCCD", "0.1"),
        ("0x3F800000", "1.0"),
        ("3.14159265358979", "3.1415927"),
        ("0.001", "0.001"),
        ("3.4028235e38", "3.4028235e+38"),
        ("1e-45", "1e-45"),
    ],
)
def test_float_prints_shortest(text: str, expected: str) -> None:
    assert printed("Float", text) == expected


@pytest.mark.parametrize(("text", "expected"), [("100", "100.0"), ("20", "20.0"), ("1000.5", "1000.5")])
def test_float_with_trailing_zeros_prints_like_double(text: str, expected: str) -> None:
    """Whole numbers print positionally, as Double (and Swift's Float) do: '100.0', not '1e+02'."""
    assert printed("Double", text) == expected
    assert printed("Float", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5", "1.5"),
        ("0.1", "0.1"),
        ("-2", "-2.0"),
        ("0x3FB999999999999A", "0.1"),
        ("1e100", "1e+100"),
        ("5e-324", "5e-324"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
    ],
)
def test_double_prints_shortest(text: str, expected: str) -> None:
    assert printed("Double", text) == expected


@pytest.mark.parametrize("t", [FLOAT, DOUBLE])
def test_printed_decimal_reads_back_to_the_same_bits(t: Type) -> None:
    rng = random.Random(1234)
    width = 32 if t == FLOAT else 64
    for _ in range(2000):
        value = float_from_bits(rng.getrandbits(width), t)
        if math.isnan(value):
            continue
        text = format_float(value, t)
        reread = round_to_float32(float(text)) if t == FLOAT else float(text)
        assert float_bits(reread, t) == float_bits(value, t), (value, text)


# --- nan, inf, -0.0 ----------------------------------------------------------------------------


@pytest.mark.parametrize("t", ["Float", "Double"])
@pytest.mark.parametrize(("text", "expected"), [("inf", "inf"), ("-inf", "-inf"), ("+inf", "inf")])
def test_infinities_round_trip(t: str, text: str, expected: str) -> None:
    assert printed(t, text) == expected
    assert printed(t, expected) == expected


@pytest.mark.parametrize("t", ["Float", "Double"])
def test_negative_zero_round_trip(t: str) -> None:
    assert printed(t, "-0.0") == "-0.0"
    inst = literal(t, printed(t, "-0.0"))
    assert inst.value == 0.0
    assert math.copysign(1.0, inst.value) == -1.0
    assert printed(t, "0.0") == "0.0"
    assert printed(t, "-0") == "-0.0"


@pytest.mark.parametrize(("t", "bits"), [("Float", 0x7FC00000), ("Double", 0x7FF8000000000000)])
def test_default_nan_prints_as_nan(t: str, bits: int) -> None:
    assert printed(t, "nan") == "nan"
    assert bits_of(literal(t, "nan")) == bits
    assert printed(t, f"0x{bits:X}") == "nan"


@pytest.mark.parametrize(
    ("t", "pattern"),
    [
        ("Float", "0x7FC00001"),  # a quiet NaN with a payload
        ("Float", "0xFFC00000"),  # a negative NaN
        ("Float", "0x7F800001"),  # a signaling NaN
        ("Float", "0xFFA00000"),  # a negative signaling NaN
        ("Double", "0x7FF8000000000001"),
        ("Double", "0xFFF8000000000000"),
        ("Double", "0x7FF0000000000001"),
    ],
)
def test_nan_payloads_round_trip_as_hex(t: str, pattern: str) -> None:
    """NaNs other than the default keep every bit: they print as their hex pattern."""
    assert printed(t, pattern) == pattern
    assert bits_of(literal(t, pattern)) == int(pattern, 16)


def test_negative_nan_spellings() -> None:
    assert printed("Float", "-nan") == "0xFFC00000"
    assert printed("Float", "-0x7FC00000") == "0xFFC00000"
    assert printed("Double", "-nan") == "0xFFF8000000000000"


# --- integer literals ----------------------------------------------------------------------------


def _integer(t: str, text: str) -> IntegerLiteralInst:
    m = parse(
        "sil @f : $@convention(thin) () -> () {\n"
        "bb0:\n"
        f"  %0 = integer_literal ${t}, {text}\n"
        "  %1 = tuple ()\n"
        "  return %1 : $()\n"
        "}\n"
    )
    inst = m.functions["f"].entry.instructions[0]
    assert isinstance(inst, IntegerLiteralInst)
    return inst


def test_integer_literals() -> None:
    assert _integer("Int", "-3").value == -3
    assert _integer("Int", "0x10").value == 16
    assert _integer("Int", "9223372036854775807").value == 2**63 - 1
    assert _integer("Int", "-9223372036854775808").value == -(2**63)
    assert _integer("Bool", "-1").value == 1
    with pytest.raises(Exception, match="does not fit"):
        _integer("Int", "9223372036854775808")


@pytest.mark.parametrize(
    ("value", "printed"),
    [(1e-45, "1e-45"), (0.1, "0.1"), (3.5e38, "inf"), (-1e-46, "-0.0"), (2**24 + 1, "16777216.0")],
)
def test_a_float_value_not_in_binary32_prints_as_the_nearest_float(value: float, printed: str) -> None:
    """A Float literal made in Python (by a pass, by the API) need not hold a binary32 value: it
    prints as the Float it stands for, which reads back as that Float."""
    assert format_float(value, FLOAT) == printed
    assert round_to_float32(float(printed)) == round_to_float32(value)
