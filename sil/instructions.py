"""Every instruction of SIL-SPEC §4, each declared once.

A class body is the instruction's schema: its fields (the operand layout is documented on the
class), its result-type rule (``result_types``), its checks (``verify``), and its text form as a
small function pair (``parse`` reads what follows the opcode; ``format`` writes it).
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, ClassVar

import attrs

from sil import derivative_types as dt
from sil.builtins import canonical_builtin_name, check_builtin
from sil.ir import Block, EnumDecl, Instruction, Module, StructDecl, Value
from sil.lexer import BUILTIN_FAST_RE
from sil.types import (
    BOOL,
    DOUBLE,
    FLOAT,
    INT,
    FunctionType,
    NominalType,
    TupleType,
    Type,
)

if TYPE_CHECKING:
    from sil.parser import Parser
    from sil.printer import Printer
    from sil.verifier import Verifier


class TypeRuleError(Exception):
    """An instruction's result type cannot be computed from its operands."""


def _function_type(t: Type, what: str) -> FunctionType:
    if not isinstance(t, FunctionType):
        raise TypeRuleError(f"{what} must have a function type, not {t}")
    return t


# --- literals ----------------------------------------------------------------------------------

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
    def parse(cls, p: Parser) -> IntegerLiteralInst:
        t = p.type()
        p.expect(",")
        at = p.pos
        value = p.integer()
        if t == BOOL and value == -1:
            value = 1  # SIL writes a 1-bit true as -1
        if t == INT and not INT_MIN <= value <= INT_MAX:
            p.error(f"integer literal {value} does not fit in Int", at=at)
        return cls([], t, value)

    def format(self, pr: Printer) -> str:
        return f"${self.type}, {self.value}"

    def verify(self, v: Verifier) -> None:
        if self.type not in (INT, BOOL):
            v.error(self, f"integer_literal must have type Int or Bool, not {self.type}")
        elif self.type == INT and not INT_MIN <= self.value <= INT_MAX:
            v.error(self, f"integer literal {self.value} does not fit in Int")
        elif self.type == BOOL and self.value not in (0, 1):
            v.error(self, f"Bool literal must be 0 or 1, not {self.value}")


def round_to_float32(x: float) -> float:
    """``x`` rounded to the nearest binary32 value (overflow gives ±inf; a NaN keeps its bits)."""
    if math.isnan(x):
        return x
    try:
        return float(struct.unpack("<f", struct.pack("<f", x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


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
    """The shortest decimal that reads back as exactly ``value`` in type ``t``.

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
        for digits in range(1, 10):
            shortest = float(f"{value:.{digits}g}")
            if round_to_float32(shortest) == value:
                text = repr(shortest)  # positional like a Double's: 100.0, not 1e+02
                break
    else:
        text = repr(value)
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text


@attrs.define(eq=False, slots=True)
class FloatLiteralInst(Instruction):
    """``float_literal $Float, 1.5`` (or a hex bit pattern, ``0x3F800000``); no operands."""

    opname: ClassVar[str] = "float_literal"
    type: Type
    value: float

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    @classmethod
    def parse(cls, p: Parser) -> FloatLiteralInst:
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
            value = float(text)
            if t == FLOAT:
                value = round_to_float32(value)
        return cls([], t, value)

    def format(self, pr: Printer) -> str:
        return f"${self.type}, {format_float(self.value, self.type)}"

    def verify(self, v: Verifier) -> None:
        if self.type not in (FLOAT, DOUBLE):
            v.error(self, f"float_literal must have type Float or Double, not {self.type}")
        elif self.type == FLOAT and not math.isnan(self.value) and round_to_float32(self.value) != self.value:
            v.error(self, f"Float literal {self.value!r} is not a binary32 value")


# --- builtins and functions --------------------------------------------------------------------


@attrs.define(eq=False, slots=True)
class BuiltinInst(Instruction):
    """``builtin "fmul"(%0 : $Float, %1 : $Float) : $Float``; operands: the arguments."""

    opname: ClassVar[str] = "builtin"
    name: str
    type: Type

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    @classmethod
    def parse(cls, p: Parser) -> BuiltinInst:
        m = BUILTIN_FAST_RE.match(p.text, p.pos)
        if m is not None:
            p.pos = m.end()
            name, a, a_type, b, b_type, result_type = m.groups()
            args = [p.use(a, p.simple_type(a_type, m.start(3)), m.start(2) - 1)]
            if b is not None:
                args.append(p.use(b, p.simple_type(b_type, m.start(5)), m.start(4) - 1))
            return cls(args, canonical_builtin_name(name), p.simple_type(result_type, m.start(6)))
        name = canonical_builtin_name(p.string())
        p.expect("(")
        args = p.typed_values_until(")")
        return cls(args, name, p.colon_type())

    def format(self, pr: Printer) -> str:
        return f'"{self.name}"({pr.typed_list(self.operands)}) : ${self.type}'

    def verify(self, v: Verifier) -> None:
        problem = check_builtin(self.name, tuple([op.type for op in self.operands]), self.type)
        if problem is not None:
            v.error(self, problem)


@attrs.define(eq=False, slots=True)
class FunctionRefInst(Instruction):
    """``function_ref @f : $@convention(thin) (Float) -> Float``; no operands."""

    opname: ClassVar[str] = "function_ref"
    function_name: str
    type: FunctionType

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    @classmethod
    def parse(cls, p: Parser) -> FunctionRefInst:
        name = p.global_name()
        p.expect(":")
        at = p.pos
        t = p.type()
        if not isinstance(t, FunctionType):
            p.error(f"function_ref must have a function type, not {t}", at=at)
        return cls([], name, t)

    def format(self, pr: Printer) -> str:
        return f"{pr.global_name(self.function_name)} : ${self.type}"

    def verify(self, v: Verifier) -> None:
        fn = v.module.functions.get(self.function_name)
        if fn is None:
            v.error(self, f"function_ref of undefined function '@{self.function_name}'")
        elif fn.type != self.type:
            v.error(self, f"function_ref type {self.type} does not match '@{fn.name}' : {fn.type}")
        elif self.type.convention != "thin":
            v.error(self, "function_ref must have a @convention(thin) type")


def _check_arguments(v: Verifier, inst: Instruction, params: tuple[Type, ...], args: list[Value]) -> None:
    for i, (param, arg) in enumerate(zip(params, args)):
        if arg.type != param:
            v.error(inst, f"argument {i} has type {arg.type}, but the callee expects {param}")


@attrs.define(eq=False, slots=True)
class ApplyInst(Instruction):
    """``apply %f(%0, %1) : $<callee type>``; operands: the callee, then the arguments."""

    opname: ClassVar[str] = "apply"
    has_effects: ClassVar[bool] = True

    @property
    def callee(self) -> Value:
        return self.operands[0]

    @property
    def args(self) -> list[Value]:
        return self.operands[1:]

    def result_types(self) -> tuple[Type, ...]:
        return (_function_type(self.operands[0].type, "the callee").result,)

    @classmethod
    def parse(cls, p: Parser) -> ApplyInst:
        callee_name, callee_at = p.value_name_at()
        p.expect("(")
        arg_names = p.value_names_until(")")
        p.expect(":")
        at = p.pos
        t = p.type()
        if not isinstance(t, FunctionType):
            p.error(f"apply needs the callee's function type, not {t}", at=at)
        if len(arg_names) != len(t.params):
            p.error(
                f"apply passes {len(arg_names)} argument(s) to a callee of {len(t.params)} parameter(s)",
                at=at,
            )
        callee = p.use(callee_name, t, callee_at)
        args = [p.use(name, param, at) for (name, at), param in zip(arg_names, t.params)]
        return cls([callee, *args])

    def format(self, pr: Printer) -> str:
        args = ", ".join(pr.value(a) for a in self.args)
        return f"{pr.value(self.callee)}({args}) : ${self.callee.type}"

    def verify(self, v: Verifier) -> None:
        t = self.callee.type
        if not isinstance(t, FunctionType):
            v.error(self, f"apply of a value of non-function type {t}")
            return
        if len(self.args) != len(t.params):
            v.error(
                self, f"apply passes {len(self.args)} arguments to a callee of {len(t.params)} parameters"
            )
            return
        _check_arguments(v, self, t.params, self.args)


@attrs.define(eq=False, slots=True)
class PartialApplyInst(Instruction):
    """``partial_apply [callee_guaranteed] %f(%c) : $<callee type>``: binds the TRAILING
    arguments; operands: the callee, then the bound arguments."""

    opname: ClassVar[str] = "partial_apply"

    @property
    def callee(self) -> Value:
        return self.operands[0]

    @property
    def args(self) -> list[Value]:
        return self.operands[1:]

    def result_types(self) -> tuple[Type, ...]:
        t = _function_type(self.operands[0].type, "the callee")
        bound = len(self.operands) - 1
        if bound > len(t.params):
            raise TypeRuleError(
                f"partial_apply binds {bound} arguments of a {len(t.params)}-parameter callee"
            )
        keep = len(t.params) - bound
        return (FunctionType(t.params[:keep], t.result, "callee_guaranteed"),)

    @classmethod
    def parse(cls, p: Parser) -> PartialApplyInst:
        p.expect("[")
        p.expect_ident("callee_guaranteed", "in partial_apply")
        p.expect("]")
        callee_name, callee_at = p.value_name_at()
        p.expect("(")
        arg_names = p.value_names_until(")")
        p.expect(":")
        at = p.pos
        t = p.type()
        if not isinstance(t, FunctionType):
            p.error(f"partial_apply needs the callee's function type, not {t}", at=at)
        if len(arg_names) > len(t.params):
            p.error(
                f"partial_apply binds {len(arg_names)} arguments of a {len(t.params)}-parameter callee", at=at
            )
        callee = p.use(callee_name, t, callee_at)
        params = t.params[len(t.params) - len(arg_names) :]
        args = [p.use(name, param, at) for (name, at), param in zip(arg_names, params)]
        return cls([callee, *args])

    def format(self, pr: Printer) -> str:
        args = ", ".join(pr.value(a) for a in self.args)
        return f"[callee_guaranteed] {pr.value(self.callee)}({args}) : ${self.callee.type}"

    def verify(self, v: Verifier) -> None:
        t = self.callee.type
        if not isinstance(t, FunctionType):
            v.error(self, f"partial_apply of a value of non-function type {t}")
            return
        if t.differentiable:
            v.error(self, "partial_apply of a @differentiable function; extract the original first")
        params = t.params[len(t.params) - len(self.args) :]
        _check_arguments(v, self, params, self.args)


@attrs.define(eq=False, slots=True)
class ThinToThickFunctionInst(Instruction):
    """``thin_to_thick_function %f : $<thin> to $<callee_guaranteed>``; operand: the function."""

    opname: ClassVar[str] = "thin_to_thick_function"
    type: FunctionType

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    @classmethod
    def parse(cls, p: Parser) -> ThinToThickFunctionInst:
        operand = p.typed_value()
        p.expect_ident("to", "in thin_to_thick_function")
        at = p.pos
        t = p.type()
        if not isinstance(t, FunctionType):
            p.error(f"thin_to_thick_function must produce a function type, not {t}", at=at)
        return cls([operand], t)

    def format(self, pr: Printer) -> str:
        return f"{pr.typed(self.operands[0])} to ${self.type}"

    def verify(self, v: Verifier) -> None:
        source = self.operands[0].type
        if isinstance(source, FunctionType) and source.differentiable:
            v.error(self, "thin_to_thick_function of a @differentiable function; extract the original first")
        elif not isinstance(source, FunctionType) or source.convention != "thin":
            v.error(
                self, f"thin_to_thick_function operand must be a @convention(thin) function, not {source}"
            )
        elif self.type.convention != "callee_guaranteed":
            v.error(self, "thin_to_thick_function must produce a @callee_guaranteed function")
        elif (source.params, source.result) != (self.type.params, self.type.result):
            v.error(self, f"thin_to_thick_function changes the signature: {source} to {self.type}")


# --- aggregates --------------------------------------------------------------------------------


@attrs.define(eq=False, slots=True)
class TupleInst(Instruction):
    """``tuple (%0 : $Float, %1 : $Float)``, or ``tuple $(x: Float, y: Float) (%0, %1)`` for a
    labeled tuple; operands: the elements."""

    opname: ClassVar[str] = "tuple"
    labels: tuple[str | None, ...] = attrs.field()

    @labels.default
    def _unlabeled(self) -> tuple[str | None, ...]:
        return (None,) * len(self.operands)

    def result_types(self) -> tuple[Type, ...]:
        if len(self.labels) != len(self.operands):
            raise TypeRuleError(f"tuple has {len(self.operands)} elements but {len(self.labels)} labels")
        return (TupleType(tuple(op.type for op in self.operands), self.labels),)

    @classmethod
    def parse(cls, p: Parser) -> TupleInst:
        if p.peek_punct("$"):
            at = p.pos
            t = p.type()
            if not isinstance(t, TupleType):
                p.error(f"tuple type expected, not {t}", at=at)
            p.expect("(")
            names = p.value_names_until(")")
            if len(names) != len(t.elements):
                p.error(f"tuple of type {t} needs {len(t.elements)} elements, got {len(names)}", at=at)
            elements = [p.use(name, e, at) for (name, at), e in zip(names, t.elements)]
            return cls(elements, t.labels)
        p.expect("(")
        return cls(p.typed_values_until(")"))

    def format(self, pr: Printer) -> str:
        if any(label is not None for label in self.labels):
            names = ", ".join(pr.value(op) for op in self.operands)
            return f"${self.results[0].type} ({names})"
        return f"({pr.typed_list(self.operands)})"


def _tuple_type(t: Type, what: str) -> TupleType:
    if not isinstance(t, TupleType):
        raise TypeRuleError(f"{what} operand must be a tuple, not {t}")
    return t


@attrs.define(eq=False, slots=True)
class TupleExtractInst(Instruction):
    """``tuple_extract %t : $(Float, Float), 1``; operand: the tuple."""

    opname: ClassVar[str] = "tuple_extract"
    index: int

    def result_types(self) -> tuple[Type, ...]:
        t = _tuple_type(self.operands[0].type, "tuple_extract")
        if not 0 <= self.index < len(t.elements):
            raise TypeRuleError(f"tuple_extract index {self.index} is out of range for {t}")
        return (t.elements[self.index],)

    @classmethod
    def parse(cls, p: Parser) -> TupleExtractInst:
        operand = p.typed_value()
        p.expect(",")
        return cls([operand], p.integer())

    def format(self, pr: Printer) -> str:
        return f"{pr.typed(self.operands[0])}, {self.index}"


@attrs.define(eq=False, slots=True)
class DestructureTupleInst(Instruction):
    """``(%a, %b) = destructure_tuple %t : $(Float, Float)``; operand: the tuple."""

    opname: ClassVar[str] = "destructure_tuple"

    def result_types(self) -> tuple[Type, ...]:
        return _tuple_type(self.operands[0].type, "destructure_tuple").elements

    @classmethod
    def parse(cls, p: Parser) -> DestructureTupleInst:
        return cls([p.typed_value()])

    def format(self, pr: Printer) -> str:
        return pr.typed(self.operands[0])


@attrs.define(eq=False, slots=True)
class StructInst(Instruction):
    """``struct $Point (%0 : $Float, %1 : $Float)``; operands: the fields, in order."""

    opname: ClassVar[str] = "struct"
    type: NominalType

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    @classmethod
    def parse(cls, p: Parser) -> StructInst:
        at = p.pos
        t = p.type()
        if not isinstance(t, NominalType):
            p.error(f"struct needs a struct type, not {t}", at=at)
        p.expect("(")
        return cls(p.typed_values_until(")"), t)

    def format(self, pr: Printer) -> str:
        return f"${self.type} ({pr.typed_list(self.operands)})"

    def verify(self, v: Verifier) -> None:
        found = v.module.lookup_type(self.type.name)
        if not isinstance(found, StructDecl):
            if found is not None:  # an undeclared type is reported once, by the type check
                v.error(self, f"struct needs a struct type, but '{self.type}' is an enum")
            return
        decl = found
        if len(self.operands) != len(decl.fields):
            v.error(
                self, f"struct '{decl.name}' has {len(decl.fields)} fields, got {len(self.operands)} operands"
            )
            return
        for f, op in zip(decl.fields, self.operands):
            if op.type != f.type:
                v.error(self, f"field '{f.name}' of '{decl.name}' has type {f.type}, got {op.type}")


@attrs.define(eq=False, slots=True)
class StructExtractInst(Instruction):
    """``struct_extract %s : $Point, #Point.x``; operand: the struct. ``type`` is the field's
    type, found in the declaration when the instruction is made."""

    opname: ClassVar[str] = "struct_extract"
    field: str
    type: Type

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    @classmethod
    def parse(cls, p: Parser) -> StructExtractInst:
        operand = p.typed_value()
        p.expect(",")
        at = p.pos
        struct_name, field_name = p.member_ref()
        decl = p.struct_decl(operand.type, "struct_extract", at)
        if struct_name != decl.name:
            p.error(f"field '#{struct_name}.{field_name}' does not belong to '{decl.name}'", at=at)
        field = decl.field(field_name)
        if field is None:
            p.error(f"struct '{decl.name}' has no field '{field_name}'", at=at)
        return cls([operand], field_name, field.type)

    def format(self, pr: Printer) -> str:
        return f"{pr.typed(self.operands[0])}, #{self.operands[0].type}.{self.field}"

    def verify(self, v: Verifier) -> None:
        t = self.operands[0].type
        decl = v.module.struct(t.name) if isinstance(t, NominalType) else None
        if decl is None:
            v.error(self, f"struct_extract from a value of non-struct type {t}")
            return
        field = decl.field(self.field)
        if field is None:
            v.error(self, f"struct '{decl.name}' has no field '{self.field}'")
        elif field.type != self.type:
            v.error(self, f"field '{self.field}' has type {field.type}, not {self.type}")


@attrs.define(eq=False, slots=True)
class DestructureStructInst(Instruction):
    """``(%a, %b) = destructure_struct %s : $Point``; operand: the struct. ``types`` are the
    fields' types, found in the declaration when the instruction is made."""

    opname: ClassVar[str] = "destructure_struct"
    types: tuple[Type, ...]

    def result_types(self) -> tuple[Type, ...]:
        return self.types

    @classmethod
    def parse(cls, p: Parser) -> DestructureStructInst:
        at = p.pos
        operand = p.typed_value()
        decl = p.struct_decl(operand.type, "destructure_struct", at)
        return cls([operand], tuple(f.type for f in decl.fields))

    def format(self, pr: Printer) -> str:
        return pr.typed(self.operands[0])

    def verify(self, v: Verifier) -> None:
        t = self.operands[0].type
        decl = v.module.struct(t.name) if isinstance(t, NominalType) else None
        if decl is None:
            v.error(self, f"destructure_struct of a value of non-struct type {t}")
        elif tuple(f.type for f in decl.fields) != self.types:
            v.error(self, f"destructure_struct results do not match the fields of '{decl.name}'")


@attrs.define(eq=False, slots=True)
class EnumInst(Instruction):
    """``enum $E, #E.case!enumelt[, %payload : $P]``; operands: the payload, if any."""

    opname: ClassVar[str] = "enum"
    type: NominalType
    case: str

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    @classmethod
    def parse(cls, p: Parser) -> EnumInst:
        at = p.pos
        t = p.type()
        if not isinstance(t, NominalType):
            p.error(f"enum needs an enum type, not {t}", at=at)
        p.expect(",")
        at = p.pos
        enum_name, case_name = p.member_ref(enumelt=True)
        if enum_name != t.name:
            p.error(f"case '#{enum_name}.{case_name}' does not belong to '{t}'", at=at)
        payload = [p.typed_value()] if p.accept(",") else []
        return cls(payload, t, case_name)

    def format(self, pr: Printer) -> str:
        text = f"${self.type}, #{self.type}.{self.case}!enumelt"
        if self.operands:
            text += f", {pr.typed(self.operands[0])}"
        return text

    def verify(self, v: Verifier) -> None:
        found = v.module.lookup_type(self.type.name)
        if not isinstance(found, EnumDecl):
            if found is not None:  # an undeclared type is reported once, by the type check
                v.error(self, f"enum needs an enum type, but '{self.type}' is a struct")
            return
        decl = found
        case = decl.case(self.case)
        if case is None:
            v.error(self, f"enum '{decl.name}' has no case '{self.case}'")
        elif case.payload is None and self.operands:
            v.error(self, f"case '{self.case}' of '{decl.name}' has no payload")
        elif case.payload is not None and not self.operands:
            v.error(self, f"case '{self.case}' of '{decl.name}' needs a payload of type {case.payload}")
        elif case.payload is not None and self.operands[0].type != case.payload:
            v.error(
                self,
                f"payload of case '{self.case}' must have type {case.payload}, not {self.operands[0].type}",
            )


# --- differentiation -----------------------------------------------------------------------


def _index_list(p: Parser) -> tuple[int, ...]:
    indices = [p.integer()]
    while p.accept(","):
        indices.append(p.integer())
    return tuple(indices)


def _format_indices(indices: tuple[int, ...]) -> str:
    return ", ".join(map(str, indices))


@attrs.define(eq=False, slots=True)
class DifferentiableFunctionInst(Instruction):
    """``differentiable_function [parameters 0] %f : $T [with_derivative {%jvp : $J, %vjp : $V}]``;
    operands: the original, then the JVP and VJP when given."""

    opname: ClassVar[str] = "differentiable_function"
    parameters: tuple[int, ...]

    @property
    def original(self) -> Value:
        return self.operands[0]

    def result_types(self) -> tuple[Type, ...]:
        t = _function_type(self.operands[0].type, "the original")
        return (dt.differentiable_bundle_type(t, self.parameters),)

    @classmethod
    def parse(cls, p: Parser) -> DifferentiableFunctionInst:
        parameters: tuple[int, ...] | None = None
        if p.accept("["):
            p.expect_ident("parameters", "in differentiable_function")
            parameters = _index_list(p)
            p.expect("]")
        at = p.pos
        original = p.typed_value()
        if not isinstance(original.type, FunctionType):
            p.error(f"differentiable_function needs a function, not {original.type}", at=at)
        if parameters is None:
            parameters = dt.differentiable_params(p.module, original.type)
            if not parameters:
                p.error(
                    "differentiable_function of a function with no parameter of differentiable type", at=at
                )
        derivatives: list[Value] = []
        if p.accept_ident("with_derivative"):
            p.expect("{")
            derivatives = [p.typed_value()]
            p.expect(",")
            derivatives.append(p.typed_value())
            p.expect("}")
        return cls([original, *derivatives], parameters)

    def format(self, pr: Printer) -> str:
        text = f"[parameters {_format_indices(self.parameters)}] {pr.typed(self.original)}"
        if len(self.operands) == 3:
            text += f" with_derivative {{{pr.typed_list(self.operands[1:])}}}"
        return text

    def verify(self, v: Verifier) -> None:
        t = self.original.type
        assert isinstance(t, FunctionType)
        if t.convention != "thin" or t.differentiable:
            v.error(self, f"differentiable_function needs a plain @convention(thin) function, not {t}")
            return
        try:
            wrt = dt.resolve_wrt(v.module, t, self.parameters)
            expected = (dt.jvp_type(v.module, t, 0, wrt), dt.vjp_type(v.module, t, 0, wrt))
        except dt.DerivativeTypeError as e:
            v.error(self, f"differentiable_function: {e}")
            return
        if len(self.operands) == 3:
            for kind, value, want in zip(("JVP", "VJP"), self.operands[1:], expected):
                if value.type != want:
                    v.error(self, f"{kind} has type {value.type}, but must have type {want}")


EXTRACTEES = ("original", "jvp", "vjp")


def extractee_type(module: Module, t: FunctionType, kind: str) -> FunctionType:
    """The type of the ``kind`` part of a ``@differentiable`` function of type ``t``."""
    original = t.plain()
    if kind == "original":
        return original
    make = dt.jvp_type if kind == "jvp" else dt.vjp_type
    try:
        wrt = dt.resolve_wrt(module, original, tuple(i for i, nd in enumerate(t.no_derivative) if not nd))
        return make(module, original, 0, wrt)
    except dt.DerivativeTypeError as e:
        raise TypeRuleError(str(e)) from None


@attrs.define(eq=False, slots=True)
class DifferentiableFunctionExtractInst(Instruction):
    """``differentiable_function_extract [vjp] %f : $T`` (also ``[jvp]``, ``[original]``);
    operand: the bundle. ``type`` is what §6 derives for the extractee."""

    opname: ClassVar[str] = "differentiable_function_extract"
    extractee: str
    type: FunctionType

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    @classmethod
    def parse(cls, p: Parser) -> DifferentiableFunctionExtractInst:
        p.expect("[")
        at = p.pos
        kind = p.ident("'original', 'jvp' or 'vjp'")
        if kind not in EXTRACTEES:
            p.error(f"expected 'original', 'jvp' or 'vjp', found '{kind}'", at=at)
        p.expect("]")
        at = p.pos
        operand = p.typed_value()
        t = operand.type
        if not isinstance(t, FunctionType) or not t.differentiable:
            p.error(f"differentiable_function_extract needs a @differentiable function, not {t}", at=at)
        return cls([operand], kind, extractee_type(p.module, t, kind))

    def format(self, pr: Printer) -> str:
        return f"[{self.extractee}] {pr.typed(self.operands[0])}"

    def verify(self, v: Verifier) -> None:
        t = self.operands[0].type
        if not isinstance(t, FunctionType) or not t.differentiable:
            v.error(self, f"differentiable_function_extract needs a @differentiable function, not {t}")
            return
        try:
            expected = extractee_type(v.module, t, self.extractee)
        except TypeRuleError as e:
            v.error(self, str(e))
            return
        if expected != self.type:
            v.error(self, f"[{self.extractee}] of {t} has type {expected}, not {self.type}")


@attrs.define(eq=False, slots=True)
class GradientInst(Instruction):
    """``gradient [source 0] [wrt 0, 1] [seedable] [preserving_result] %f : $T`` (legacy);
    operand: the original. ``type`` is what §6 derives."""

    opname: ClassVar[str] = "gradient"
    source: int
    wrt: tuple[int, ...]
    seedable: bool
    preserving_result: bool
    type: FunctionType

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    @staticmethod
    def derive(
        module: Module,
        t: FunctionType,
        source: int,
        wrt: tuple[int, ...] | None,
        seedable: bool,
        preserving_result: bool,
    ) -> tuple[tuple[int, ...], FunctionType]:
        """The resolved ``wrt`` indices and the gradient's type, or TypeRuleError."""
        try:
            resolved = dt.resolve_wrt(module, t, wrt)
            return resolved, dt.gradient_type(module, t, source, resolved, seedable, preserving_result)
        except dt.DerivativeTypeError as e:
            raise TypeRuleError(f"gradient: {e}") from None

    @classmethod
    def parse(cls, p: Parser) -> GradientInst:
        source, wrt, seedable, preserving = 0, None, False, False
        while p.accept("["):
            at = p.pos
            word = p.ident("a gradient option")
            if word == "source":
                source = p.integer()
            elif word == "wrt":
                wrt = _index_list(p)
            elif word == "seedable":
                seedable = True
            elif word == "preserving_result":
                preserving = True
            else:
                p.error(f"unknown gradient option '{word}'", at=at)
            p.expect("]")
        at = p.pos
        operand = p.typed_value()
        t = operand.type
        if not isinstance(t, FunctionType) or t.convention != "thin":
            p.error(f"gradient needs a @convention(thin) function, not {t}", at=at)
        resolved, result = cls.derive(p.module, t, source, wrt, seedable, preserving)
        return cls([operand], source, resolved, seedable, preserving, result)

    def format(self, pr: Printer) -> str:
        parts = [] if self.source == 0 else [f"[source {self.source}]"]
        parts.append(f"[wrt {_format_indices(self.wrt)}]")
        if self.seedable:
            parts.append("[seedable]")
        if self.preserving_result:
            parts.append("[preserving_result]")
        parts.append(pr.typed(self.operands[0]))
        return " ".join(parts)

    def verify(self, v: Verifier) -> None:
        t = self.operands[0].type
        if not isinstance(t, FunctionType) or t.convention != "thin":
            v.error(self, f"gradient needs a @convention(thin) function, not {t}")
            return
        try:
            _, expected = self.derive(
                v.module, t, self.source, self.wrt, self.seedable, self.preserving_result
            )
        except TypeRuleError as e:
            v.error(self, str(e))
            return
        if expected != self.type:
            v.error(self, f"gradient has type {self.type}, but must have type {expected}")


# --- terminators ---------------------------------------------------------------------------


@attrs.define(eq=False, slots=True)
class ReturnInst(Instruction):
    """``return %0 : $Float``; operand: the returned value."""

    opname: ClassVar[str] = "return"
    is_terminator: ClassVar[bool] = True

    @classmethod
    def parse(cls, p: Parser) -> ReturnInst:
        return cls([p.typed_value()])

    def format(self, pr: Printer) -> str:
        return pr.typed(self.operands[0])

    def verify(self, v: Verifier) -> None:
        expected = v.function.type.result
        if self.operands[0].type != expected:
            v.error(self, f"return of {self.operands[0].type} from a function returning {expected}")


@attrs.define(eq=False, slots=True)
class BranchInst(Instruction):
    """``br bb2(%5 : $Float)``; operands: the target's block arguments."""

    opname: ClassVar[str] = "br"
    is_terminator: ClassVar[bool] = True
    dest: Block

    def successors(self) -> tuple[Block, ...]:
        return (self.dest,)

    def successor_args(self) -> tuple[tuple[Block, list[Value]], ...]:
        return ((self.dest, self.operands),)

    @classmethod
    def parse(cls, p: Parser) -> BranchInst:
        dest, args = p.branch_target()
        return cls(args, dest)

    def format(self, pr: Printer) -> str:
        return pr.branch_target(self.dest, self.operands)


@attrs.define(eq=False, slots=True)
class CondBranchInst(Instruction):
    """``cond_br %c, bb1(%x : $Float), bb2``; operands: the condition, the true target's
    arguments, then the false target's."""

    opname: ClassVar[str] = "cond_br"
    is_terminator: ClassVar[bool] = True
    true_dest: Block
    false_dest: Block
    true_count: int

    @property
    def true_args(self) -> list[Value]:
        return self.operands[1 : 1 + self.true_count]

    @property
    def false_args(self) -> list[Value]:
        return self.operands[1 + self.true_count :]

    def successors(self) -> tuple[Block, ...]:
        return (self.true_dest, self.false_dest)

    def successor_args(self) -> tuple[tuple[Block, list[Value]], ...]:
        return ((self.true_dest, self.true_args), (self.false_dest, self.false_args))

    @classmethod
    def parse(cls, p: Parser) -> CondBranchInst:
        name, at = p.value_name_at()
        condition = p.use(name, BOOL, at)
        p.expect(",")
        true_dest, true_args = p.branch_target()
        p.expect(",")
        false_dest, false_args = p.branch_target()
        return cls([condition, *true_args, *false_args], true_dest, false_dest, len(true_args))

    def format(self, pr: Printer) -> str:
        return (
            f"{pr.value(self.operands[0])}, {pr.branch_target(self.true_dest, self.true_args)}, "
            f"{pr.branch_target(self.false_dest, self.false_args)}"
        )


@attrs.define(eq=False, slots=True)
class SwitchEnumInst(Instruction):
    """``switch_enum %e : $E, case #E.a!enumelt: bb1, case #E.b!enumelt: bb2[, default bb3]``;
    operand: the enum. A case's payload becomes its target's block argument."""

    opname: ClassVar[str] = "switch_enum"
    is_terminator: ClassVar[bool] = True
    cases: list[tuple[str, Block]]
    default: Block | None = None

    def successors(self) -> tuple[Block, ...]:
        dests = [dest for _, dest in self.cases]
        if self.default is not None:
            dests.append(self.default)
        return tuple(dests)

    @classmethod
    def parse(cls, p: Parser) -> SwitchEnumInst:
        operand = p.typed_value()
        cases: list[tuple[str, Block]] = []
        default: Block | None = None
        while p.accept(","):
            at = p.pos
            if p.accept_ident("default"):
                if default is not None:
                    p.error("switch_enum has more than one default", at=at)
                default = p.block_ref()
                continue
            p.expect_ident("case", "or 'default' in switch_enum")
            at = p.pos
            enum_name, case_name = p.member_ref(enumelt=True)
            if enum_name != str(operand.type):
                p.error(f"case '#{enum_name}.{case_name}' does not belong to {operand.type}", at=at)
            p.expect(":")
            cases.append((case_name, p.block_ref()))
        return cls([operand], cases, default)

    def format(self, pr: Printer) -> str:
        parts = [pr.typed(self.operands[0])]
        t = self.operands[0].type
        parts.extend(f"case #{t}.{case}!enumelt: {pr.block(dest)}" for case, dest in self.cases)
        if self.default is not None:
            parts.append(f"default {pr.block(self.default)}")
        return ", ".join(parts)

    def verify(self, v: Verifier) -> None:
        t = self.operands[0].type
        decl = v.module.enum(t.name) if isinstance(t, NominalType) else None
        if decl is None:
            v.error(self, f"switch_enum on a value of non-enum type {t}")
            return
        seen: set[str] = set()
        for case_name, dest in self.cases:
            case = decl.case(case_name)
            if case is None:
                v.error(self, f"enum '{decl.name}' has no case '{case_name}'")
                continue
            if case_name in seen:
                v.error(self, f"switch_enum lists case '{case_name}' twice")
            seen.add(case_name)
            expected = [] if case.payload is None else [case.payload]
            actual = [arg.type for arg in dest.args]
            if actual != expected:
                want = f"one argument of type {case.payload}" if case.payload else "no arguments"
                v.error(self, f"target of case '{case_name}' must take {want}")
        missing = [c.name for c in decl.cases if c.name not in seen]
        if self.default is not None:
            if self.default.args:
                v.error(self, "default target of switch_enum must take no arguments")
            if not missing:
                v.error(self, "switch_enum has a default but covers every case")
        elif missing:
            v.error(self, f"switch_enum does not cover case '{missing[0]}' and has no default")


@attrs.define(eq=False, slots=True)
class UnreachableInst(Instruction):
    """``unreachable``; no operands."""

    opname: ClassVar[str] = "unreachable"
    is_terminator: ClassVar[bool] = True

    @classmethod
    def parse(cls, p: Parser) -> UnreachableInst:
        return cls([])

    def format(self, pr: Printer) -> str:
        return ""
