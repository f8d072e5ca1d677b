"""Terminators: ``return`` (with a fused fast path), ``br``, ``cond_br``, ``switch_enum``,
``unreachable``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import attrs

from sil.ir import Block, Instruction, Value
from sil.lexer import END_OF_LINE, LINE_TYPE, SPACES, VALUE, FastForm
from sil.types import (
    BOOL,
    NominalType,
)

if TYPE_CHECKING:
    from sil.parser import Parser
    from sil.printer import Printer
    from sil.verifier import Verifier


@attrs.define(eq=False, slots=True)
class ReturnInst(Instruction):
    """``return %0 : $Float``; operand: the returned value."""

    opname: ClassVar[str] = "return"
    is_terminator: ClassVar[bool] = True
    fast_form: ClassVar[FastForm] = FastForm(
        r"[ \t]++" + VALUE + SPACES + ":" + SPACES + LINE_TYPE + END_OF_LINE, result=False
    )

    @classmethod
    def parse(cls, p: Parser) -> Self:
        return cls([p.typed_value()])

    @classmethod
    def parse_fast(cls, p: Parser, m: re.Match[str], groups: tuple[str | Any, ...]) -> Self:
        _, returned, type_name = groups
        t = p.simple_types.get(type_name) or p.simple_type(type_name, m.start(3))
        operand = p.scope.values.get(returned)
        if operand is None or operand.type is not t:
            operand = p.use(returned, t, m.start(2) - 1)
        return cls([operand])

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
    def parse(cls, p: Parser) -> Self:
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

    def set_branch_arguments(self, true_args: Sequence[Value], false_args: Sequence[Value]) -> None:
        """Pass other values (as many as the targets now take) to the two targets."""
        self.set_operands([self.operands[0], *true_args, *false_args])
        self.true_count = len(true_args)

    @classmethod
    def parse(cls, p: Parser) -> Self:
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
    def parse(cls, p: Parser) -> Self:
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
        # ``seen`` holds cases of the enum only, so it covers them all when it is as large (a
        # switch of a path enum names a few of its many cases: no walk over all of them).
        covers_all = len(seen) == len(decl.cases_by_name())
        if self.default is not None:
            if self.default.args:
                v.error(self, "default target of switch_enum must take no arguments")
            if covers_all:
                v.error(self, "switch_enum has a default but covers every case")
        elif not covers_all:
            missing = next(c.name for c in decl.cases if c.name not in seen)
            v.error(self, f"switch_enum does not cover case '{missing}' and has no default")


@attrs.define(eq=False, slots=True)
class UnreachableInst(Instruction):
    """``unreachable``; no operands."""

    opname: ClassVar[str] = "unreachable"
    is_terminator: ClassVar[bool] = True

    @classmethod
    def parse(cls, p: Parser) -> Self:
        return cls([])

    def format(self, pr: Printer) -> str:
        return ""


def set_edge_arguments(term: Instruction, edges: Sequence[Sequence[Value]]) -> None:
    """Have a ``br`` or ``cond_br`` pass ``edges[k]`` along its k-th edge (as many values as that
    target now takes)."""
    if isinstance(term, BranchInst):
        term.set_operands(edges[0])
    else:
        assert isinstance(term, CondBranchInst)
        term.set_branch_arguments(edges[0], edges[1])
