"""Builtins and functions: ``builtin``, ``function_ref``, ``apply``, ``partial_apply``,
``thin_to_thick_function``.

``builtin``, ``function_ref`` and ``apply`` declare fused fast paths beside their ``parse``: a
builtin line of plain types is matched whole before anything else on every line.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any, ClassVar, Self

import attrs

from sil.builtins import canonical_builtin_name, check_builtin
from sil.instructions.common import TypeRuleError, function_type_of
from sil.ir import Instruction, Value
from sil.lexer import END_OF_LINE, LINE_TYPE, LINE_TYPED, SPACES, TYPE_TO_END_OF_LINE, VALUE, FastForm
from sil.types import (
    FunctionType,
    Type,
)

if TYPE_CHECKING:
    from sil.parser import Parser
    from sil.printer import Printer
    from sil.verifier import Verifier


@attrs.define(eq=False, slots=True)
class BuiltinInst(Instruction):
    """``builtin "fmul"(%0 : $Float, %1 : $Float) : $Float``; operands: the arguments."""

    opname: ClassVar[str] = "builtin"
    # One or two operands, every type a plain name: the commonest line of all.
    fast_form: ClassVar[FastForm] = FastForm(
        r'[ \t]*+"(\w++)"'
        + SPACES
        + r"\("
        + SPACES
        + LINE_TYPED
        + SPACES
        + "(?:,"
        + SPACES
        + LINE_TYPED
        + SPACES
        + r")?\)"
        + SPACES
        + ":"
        + SPACES
        + LINE_TYPE
        + END_OF_LINE,
        result=True,
        line_first=True,
    )
    name: str
    type: Type

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    @classmethod
    def parse(cls, p: Parser) -> Self:
        name = canonical_builtin_name(p.string())
        p.expect("(")
        args = p.typed_values_until(")")
        return cls(args, name, p.colon_type())

    @classmethod
    def parse_fast(cls, p: Parser, m: re.Match[str], groups: tuple[str | Any, ...]) -> Self:
        _, name, a, a_type, b, b_type, result_type = groups
        types, values = p.simple_types, p.scope.values
        # Operands defined earlier with the type written: the common case, without ``use``.
        t = types.get(a_type) or p.simple_type(a_type, m.start(4))
        operand = values.get(a)
        if operand is None or operand.type is not t:
            operand = p.use(a, t, m.start(3) - 1)
        args = [operand]
        if b is not None:
            t = types.get(b_type) or p.simple_type(b_type, m.start(6))
            operand = values.get(b)
            if operand is None or operand.type is not t:
                operand = p.use(b, t, m.start(5) - 1)
            args.append(operand)
        t = types.get(result_type) or p.simple_type(result_type, m.start(7))
        return cls(args, canonical_builtin_name(name), t)

    def format(self, pr: Printer) -> str:
        return f'"{self.name}"({pr.typed_list(self.operands)}) : ${self.type.text}'

    def verify(self, v: Verifier) -> None:
        problem = check_builtin(self.name, tuple([op.type for op in self.operands]), self.type)
        if problem is not None:
            v.error(self, problem)


@attrs.define(eq=False, slots=True)
class FunctionRefInst(Instruction):
    """``function_ref @f : $@convention(thin) (Float) -> Float``; no operands."""

    opname: ClassVar[str] = "function_ref"
    # A type spelled before, looked up whole.
    fast_form: ClassVar[FastForm] = FastForm(
        r"[ \t]+@([A-Za-z_$][\w$.]*)" + SPACES + ":" + SPACES + TYPE_TO_END_OF_LINE, result=True
    )
    function_name: str
    type: FunctionType

    def result_types(self) -> tuple[Type, ...]:
        return (self.type,)

    def retarget(self, t: FunctionType) -> None:
        """Follow a change of the referenced function's type (``Function.set_type``); the
        users of the result must accept the new type."""
        self.type = t
        self.update_result_types()

    @classmethod
    def parse(cls, p: Parser) -> Self:
        name = sys.intern(p.global_name())  # every reference to a function shares its name
        p.expect(":")
        at = p.pos
        t = p.type()
        if not isinstance(t, FunctionType):
            p.error(f"function_ref must have a function type, not {t}", at=at)
        return cls([], name, t)

    @classmethod
    def parse_fast(cls, p: Parser, m: re.Match[str], groups: tuple[str | Any, ...]) -> Self | None:
        t = p.spelled_types.get(groups[2])
        if not isinstance(t, FunctionType):
            return None
        return cls([], sys.intern(groups[1]), t)

    def format(self, pr: Printer) -> str:
        return f"{pr.global_name(self.function_name)} : ${self.type.text}"

    def verify(self, v: Verifier) -> None:
        fn = v.module.functions.get(self.function_name)
        if fn is None:
            v.error(self, f"function_ref of undefined function '@{self.function_name}'")
        elif fn.type is not self.type and fn.type != self.type:
            v.error(self, f"function_ref type {self.type} does not match '@{fn.name}' : {fn.type}")
        elif self.type.convention != "thin":
            v.error(self, "function_ref must have a @convention(thin) type")


def _check_arguments(v: Verifier, inst: Instruction, params: tuple[Type, ...], args: list[Value]) -> None:
    for i, (param, arg) in enumerate(zip(params, args)):
        if arg.type != param:
            v.error(inst, f"argument {i} has type {arg.type}, but the callee expects {param}")


@attrs.define(eq=False, slots=True)
class _Call(Instruction):
    """What ``apply`` and ``partial_apply`` share: operands: the callee, then the arguments it
    is given (all, or the trailing ones bound)."""

    @property
    def callee(self) -> Value:
        return self.operands[0]

    @property
    def args(self) -> list[Value]:
        return self.operands[1:]

    def callee_type(self, v: Verifier) -> FunctionType | None:
        """The callee's function type; None, reported, when it has another type."""
        t = self.callee.type
        if not isinstance(t, FunctionType):
            v.error(self, f"{self.opname} of a value of non-function type {t}")
            return None
        return t

    @classmethod
    def count_problem(cls, given: int, params: int) -> str | None:
        """What is wrong with giving ``given`` arguments to a callee of ``params`` parameters."""
        raise NotImplementedError

    @classmethod
    def parse_call(cls, p: Parser) -> Self:
        """``%f(%a, …) : $<callee type>``, the arguments given to the trailing parameters."""
        callee_name, callee_at = p.value_name_at()
        p.expect("(")
        arg_names = p.value_names_until(")")
        p.expect(":")
        at = p.pos
        t = p.type()
        if not isinstance(t, FunctionType):
            p.error(f"{cls.opname} needs the callee's function type, not {t}", at=at)
        problem = cls.count_problem(len(arg_names), len(t.params))
        if problem is not None:
            p.error(problem, at=at)
        callee = p.use(callee_name, t, callee_at)
        params = t.params[len(t.params) - len(arg_names) :]
        args = [p.use(name, param, at) for (name, at), param in zip(arg_names, params)]
        return cls([callee, *args])


@attrs.define(eq=False, slots=True)
class ApplyInst(_Call):
    """``apply %f(%0, %1) : $<callee type>``; operands: the callee, then the arguments."""

    opname: ClassVar[str] = "apply"
    has_effects: ClassVar[bool] = True
    # Plain argument names; the callee's type spelled before, looked up whole.
    fast_form: ClassVar[FastForm] = FastForm(
        r"[ \t]++"
        + VALUE
        + r"\(((?:%[\w$]++(?:[ \t]*+,[ \t]*+%[\w$]++)*+)?)\)"
        + SPACES
        + ":"
        + SPACES
        + TYPE_TO_END_OF_LINE,
        result=True,
    )

    def result_types(self) -> tuple[Type, ...]:
        return (function_type_of(self.operands[0].type, "the callee").result,)

    @classmethod
    def count_problem(cls, given: int, params: int) -> str | None:
        if given == params:
            return None
        return f"apply passes {given} argument(s) to a callee of {params} parameter(s)"

    @classmethod
    def parse(cls, p: Parser) -> Self:
        return cls.parse_call(p)

    @classmethod
    def parse_fast(cls, p: Parser, m: re.Match[str], groups: tuple[str | Any, ...]) -> Self | None:
        t = p.spelled_types.get(groups[3])
        if not isinstance(t, FunctionType):
            return None
        arguments = groups[2]
        pieces = arguments.split(",") if arguments else []
        if len(pieces) != len(t.params):
            return None  # the general path reports it
        operands = [p.use(groups[1], t, m.start(2) - 1)]
        values = p.scope.values
        offset = m.start(3)  # of each piece: `%a`, then `, %b` without its comma
        for piece, param in zip(pieces, t.params):
            name = piece.strip()[1:]
            operand = values.get(name)
            if operand is None or operand.type is not param:
                operand = p.use(name, param, offset + piece.index("%"))
            operands.append(operand)
            offset += len(piece) + 1
        return cls(operands)

    def format(self, pr: Printer) -> str:
        return f"{pr.value(self.callee)}({pr.value_list(self.args)}) : ${self.callee.type.text}"

    def verify(self, v: Verifier) -> None:
        t = self.callee_type(v)
        if t is None:
            return
        if len(self.args) != len(t.params):
            v.error(
                self, f"apply passes {len(self.args)} arguments to a callee of {len(t.params)} parameters"
            )
            return
        _check_arguments(v, self, t.params, self.args)


@attrs.define(eq=False, slots=True)
class PartialApplyInst(_Call):
    """``partial_apply [callee_guaranteed] %f(%c) : $<callee type>``: binds the TRAILING
    arguments; operands: the callee, then the bound arguments."""

    opname: ClassVar[str] = "partial_apply"

    def result_types(self) -> tuple[Type, ...]:
        t = function_type_of(self.operands[0].type, "the callee")
        bound = len(self.operands) - 1
        if bound > len(t.params):
            raise TypeRuleError(
                f"partial_apply binds {bound} arguments of a {len(t.params)}-parameter callee"
            )
        keep = len(t.params) - bound
        return (FunctionType(t.params[:keep], t.result, "callee_guaranteed"),)

    @classmethod
    def parse(cls, p: Parser) -> Self:
        p.expect("[")
        p.expect_ident("callee_guaranteed", "in partial_apply")
        p.expect("]")
        return cls.parse_call(p)

    @classmethod
    def count_problem(cls, given: int, params: int) -> str | None:
        if given <= params:
            return None
        return f"partial_apply binds {given} arguments of a {params}-parameter callee"

    def format(self, pr: Printer) -> str:
        args = pr.value_list(self.args)
        return f"[callee_guaranteed] {pr.value(self.callee)}({args}) : ${self.callee.type}"

    def verify(self, v: Verifier) -> None:
        t = self.callee_type(v)
        if t is None:
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
    def parse(cls, p: Parser) -> Self:
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
