"""Aggregates: tuples, structs and enums."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Self

import attrs

from sil.instructions.common import TypeRuleError
from sil.ir import EnumDecl, Instruction, StructDecl
from sil.types import (
    NominalType,
    TupleType,
    Type,
)

if TYPE_CHECKING:
    from sil.parser import Parser
    from sil.printer import Printer
    from sil.verifier import Verifier


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
    def parse(cls, p: Parser) -> Self:
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
            names = pr.value_list(self.operands)
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
    def parse(cls, p: Parser) -> Self:
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
    def parse(cls, p: Parser) -> Self:
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
    def parse(cls, p: Parser) -> Self:
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
    def parse(cls, p: Parser) -> Self:
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
    def parse(cls, p: Parser) -> Self:
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
    def parse(cls, p: Parser) -> Self:
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
