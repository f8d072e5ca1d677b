"""Differentiation: ``differentiable_function``, its extracts, and the legacy ``gradient``."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Self

import attrs

from sil import derivative_types as dt
from sil.instructions.common import TypeRuleError, function_type_of
from sil.ir import Instruction, Module, Value
from sil.types import (
    FunctionType,
    Type,
)

if TYPE_CHECKING:
    from sil.parser import Parser
    from sil.printer import Printer
    from sil.verifier import Verifier


def _index_list(p: Parser) -> tuple[int, ...]:
    """``0, 1``: the comma-separated indices of ``gradient [wrt …]``."""
    indices = [p.integer()]
    while p.accept(","):
        indices.append(p.integer())
    return tuple(indices)


def _spaced_index_list(p: Parser) -> tuple[int, ...]:
    """``0 1``: the indices of ``differentiable_function [parameters …]`` and ``[results …]``,
    space-separated as in Swift's SIL (commas between them are accepted too), up to the ``]``."""
    indices = [p.integer()]
    while p.accept(",") or not p.peek_punct("]"):
        indices.append(p.integer())
    return tuple(indices)


def _format_indices(indices: tuple[int, ...], separator: str = ", ") -> str:
    return separator.join(map(str, indices))


@attrs.define(eq=False, slots=True)
class DifferentiableFunctionInst(Instruction):
    """``differentiable_function [parameters 0 1] [results 0] %f : $T [with_derivative {%jvp : $J,
    %vjp : $V}]``; operands: the original, then the JVP and VJP when given. ``result_indices``
    (``[results …]``) is None when the text leaves it out. Its derivatives are of every result of
    differentiable type (SIL-SPEC §3), since a ``@differentiable`` function type cannot say which
    results a subset would be: ``[results …]`` may only list exactly those."""

    opname: ClassVar[str] = "differentiable_function"
    parameters: tuple[int, ...]
    result_indices: tuple[int, ...] | None = None

    @property
    def original(self) -> Value:
        return self.operands[0]

    @property
    def has_derivatives(self) -> bool:
        """Whether the JVP and VJP are given (``with_derivative``): a bundle, not a request."""
        return len(self.operands) == 3

    def result_types(self) -> tuple[Type, ...]:
        t = function_type_of(self.operands[0].type, "the original")
        return (dt.differentiable_bundle_type(t, self.parameters),)

    @classmethod
    def parse(cls, p: Parser) -> Self:
        parameters: tuple[int, ...] | None = None
        result_indices: tuple[int, ...] | None = None
        while p.accept("["):  # [parameters …], then [results …]; either may be left out
            at = p.pos
            word = p.ident("'parameters' or 'results'")
            if word == "parameters" and parameters is None and result_indices is None:
                parameters = _spaced_index_list(p)
            elif word == "results" and result_indices is None:
                result_indices = _spaced_index_list(p)
            else:
                p.error(
                    f"expected 'parameters' or 'results' in differentiable_function, found '{word}'", at=at
                )
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
        return cls([original, *derivatives], parameters, result_indices)

    def format(self, pr: Printer) -> str:
        text = f"[parameters {_format_indices(self.parameters, ' ')}] "
        if self.result_indices is not None:
            text += f"[results {_format_indices(self.result_indices, ' ')}] "
        text += pr.typed(self.original)
        if self.has_derivatives:
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
            if self.result_indices is not None:
                dt.resolve_sources(v.module, t, self.result_indices)
            sources = dt.resolve_sources(v.module, t, None)
            expected = (dt.jvp_type(v.module, t, sources, wrt), dt.vjp_type(v.module, t, sources, wrt))
            if self.result_indices not in (None, sources):
                given, every = (_format_indices(i, " ") for i in (self.result_indices or (), sources))
                raise dt.DerivativeTypeError(
                    f"[results {given}] cannot be bundled: a @differentiable function type cannot say "
                    "which results a subset would be, so a bundle is of every result of differentiable "
                    f"type ([results {every}])"
                )
        except dt.DerivativeTypeError as e:
            v.error(self, f"differentiable_function: {e}")
            return
        if self.has_derivatives:
            for kind, value, want in zip(("JVP", "VJP"), self.operands[1:], expected):
                if value.type != want:
                    v.error(self, f"{kind} has type {value.type}, but must have type {want}")


EXTRACTEES = ("original", "jvp", "vjp")
BUNDLE_PARTS = {name: index for index, name in enumerate(EXTRACTEES)}
"""Where each function a ``differentiable_function`` bundles is among its operands, by the name
``differentiable_function_extract`` gives it."""


def extractee_type(module: Module, t: FunctionType, kind: str) -> FunctionType:
    """The type of the ``kind`` part of a ``@differentiable`` function of type ``t``: its
    derivatives are of every result of differentiable type."""
    original = t.plain()
    if kind == "original":
        return original
    make = dt.jvp_type if kind == "jvp" else dt.vjp_type
    try:
        wrt = dt.resolve_wrt(module, original, tuple(i for i, nd in enumerate(t.no_derivative) if not nd))
        return make(module, original, dt.resolve_sources(module, original, None), wrt)
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
    def parse(cls, p: Parser) -> Self:
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

    @staticmethod
    def implied_source(module: Module, t: FunctionType) -> int:
        """The result ``gradient`` seeds when ``[source N]`` is left out: the one result of
        differentiable type (SIL-SPEC §3: ``source`` omitted means every such result, and
        ``gradient`` seeds one)."""
        results = dt.differentiable_results(module, t)
        if len(results) > 1:
            raise TypeRuleError(
                f"gradient: the function has {len(results)} results of differentiable type: "
                "name the one to seed with [source N]"
            )
        return results[0] if results else 0

    @classmethod
    def parse(cls, p: Parser) -> Self:
        source: int | None = None
        wrt, seedable, preserving = None, False, False
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
        if source is None:
            source = cls.implied_source(p.module, t)
        resolved, result = cls.derive(p.module, t, source, wrt, seedable, preserving)
        return cls([operand], source, resolved, seedable, preserving, result)

    def format(self, pr: Printer) -> str:
        t = self.operands[0].type
        # Named for a function with several results, so that the text never needs the module's
        # types to tell which result is seeded.
        several = isinstance(t, FunctionType) and dt.several_results(t.result)
        parts = [f"[source {self.source}]"] if self.source != 0 or several else []
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
