"""The verifier: every structural and typing rule of SIL-SPEC §2–6, each violation reported as a
diagnostic at the instruction (or declaration) that breaks it.

Differentiability attributes are checked by an ``AttributeChecker`` registered for their class:
the core's ``[differentiable]`` here, the legacy ``[reverse_differentiable]`` by
``differentiation/legacy``, which the verifier does not know. An attribute of a class nobody
registered a checker for is reported, never passed unchecked."""

from __future__ import annotations

import abc
import collections
import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sil import derivative_types as dt
from sil.cfg import DominatorTree
from sil.diagnostics import Diagnostic, SILError, Span, note
from sil.ir import (
    TANGENT_SUFFIX,
    ZERO_CASE,
    Block,
    BlockArgument,
    DifferentiableAttr,
    EnumDecl,
    FlagAttr,
    Function,
    FunctionAttr,
    Instruction,
    Module,
    Result,
    StructDecl,
    Value,
)
from sil.passes import registered_passes
from sil.types import FunctionType, NominalType, TensorType, TupleType, Type, names_builtin_type

_TYPE_NAME = re.compile(r"[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)*")
_VALUE_NAME = re.compile(r"[\w$]+")


class Verifier:
    """Checks a module; ``diagnostics`` holds what it found, in source order."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.function: Function = Function("", FunctionType((), TupleType(())))
        self.diagnostics: list[Diagnostic] = []
        self._known_types: set[Type] = set()
        self._names_checked: dict[tuple[str, re.Pattern[str]], bool] = {}
        self._checkers: dict[type, AttributeChecker[Any]] = {}

    # --- reporting -----------------------------------------------------------------------------
    def error(
        self, where: Instruction | Span | None, message: str, notes: list[Diagnostic] | None = None
    ) -> None:
        span = where.span if isinstance(where, Instruction) else where
        if span is None:
            span = self.function.span
        self.diagnostics.append(Diagnostic("error", message, span, notes or []))

    def _describe(self, v: Value) -> str:
        return f" ('%{v.name}')" if v.name is not None else ""

    # --- module --------------------------------------------------------------------------------
    def verify_module(self) -> list[Diagnostic]:
        for decl in self.module.types.values():
            self._verify_type_decl(decl)
        reported: set[Span | None] = set()
        for cycle, span in recursive_structs(self.module):
            if span not in reported:  # a struct's cycle, not again its tangent's through one field
                reported.add(span)
                message = f"recursive type '{cycle[0]}': a value would contain itself ({' -> '.join(cycle)})"
                self.error(span, message)
        for fn in self.module.functions.values():
            self.function = fn
            if "\n" in fn.name:
                self.error(fn.span, "a function name cannot hold a line break")
            self.check_type(fn.type, fn.span)
            if fn.type.convention != "thin" or fn.type.differentiable:
                self.error(fn.span, f"a SIL function must have a plain @convention(thin) type, not {fn.type}")
            self._verify_attributes(fn)
            if not fn.is_declaration:
                self._verify_body(fn)
        self.diagnostics.sort(key=lambda d: d.span.start if d.span is not None else -1)
        return self.diagnostics

    def check_type(self, t: Type, where: Instruction | Span | None) -> None:
        """Report references to undeclared structs and enums inside ``t``."""
        if t in self._known_types:
            return
        if isinstance(t, NominalType):
            if self.module.lookup_type(t.name) is None:
                self.error(where, f"use of undeclared type '{t.name}'")
                return
        elif isinstance(t, TupleType):
            if len(t.elements) == 1 and t.labels[0] is None:
                self.error(where, f"one-element tuple type ({t.elements[0]}) reads back as {t.elements[0]}")
            for element in t.elements:
                self.check_type(element, where)
        elif isinstance(t, FunctionType):
            for param in t.params:
                self.check_type(param, where)
            self.check_type(t.result, where)
        elif isinstance(t, TensorType):
            pass
        self._known_types.add(t)

    def _verify_type_decl(self, decl: StructDecl | EnumDecl) -> None:
        if not _TYPE_NAME.fullmatch(decl.name) or names_builtin_type(decl.name):
            self.error(decl.span, f"'{decl.name}' cannot name a declared type")
        names = (
            [f.name for f in decl.fields] if isinstance(decl, StructDecl) else [c.name for c in decl.cases]
        )
        for name in sorted(n for n, times in collections.Counter(names).items() if times > 1):
            self.error(decl.span, f"'{decl.name}' declares '{name}' more than once")
        if isinstance(decl, StructDecl):
            for f in decl.fields:
                self.check_type(f.type, f.span)
            if decl.name.endswith(TANGENT_SUFFIX):
                self._verify_declared_tangent(decl)
        else:
            for c in decl.cases:
                if c.payload is not None:
                    self.check_type(c.payload, c.span)
            if decl.differentiable and decl.case(ZERO_CASE) is not None:
                self.error(
                    decl.span,
                    f"a differentiable enum cannot have a case '{ZERO_CASE}': its tangent's '{ZERO_CASE}' "
                    "is the zero tangent",
                )

    def _verify_declared_tangent(self, decl: StructDecl) -> None:
        """A declared ``S.TangentVector`` must be what §3 derives from ``S``."""
        base = self.module.types.get(decl.name[: -len(TANGENT_SUFFIX)])
        if not isinstance(base, StructDecl) or not base.differentiable:
            self.error(decl.span, f"'{decl.name}' is declared, but its base is not a differentiable struct")
            return
        derived = [(f.name, self.module.tangent_type(f.type)) for f in base.fields if not f.no_derivative]
        expected = [(name, t) for name, t in derived if t is not None]
        if [(f.name, f.type) for f in decl.fields] != expected or any(f.no_derivative for f in decl.fields):
            fields = ", ".join(f"{name}: {t}" for name, t in expected)
            self.error(decl.span, f"'{decl.name}' must have exactly the fields ({fields})")

    # --- function attributes (§3, §6) ----------------------------------------------------------
    def _verify_attributes(self, fn: Function) -> None:
        flags = {a.name for a in fn.attributes if isinstance(a, FlagAttr)}
        if {"noinline", "always_inline"} <= flags:
            span = next(
                a.span for a in fn.attributes if isinstance(a, FlagAttr) and a.name == "always_inline"
            )
            self.error(span, "a function cannot be both [noinline] and [always_inline]")
        seen_flags: set[str] = set()
        for a in fn.attributes:
            if isinstance(a, FlagAttr):
                if a.name in seen_flags:
                    self.error(a.span, f"duplicate attribute [{a.name}]")
                seen_flags.add(a.name)
        seen: dict[tuple[str, tuple[int, ...], tuple[int, ...]], FunctionAttr] = {}
        for attr in fn.attributes:
            if isinstance(attr, FlagAttr):
                continue
            checker = self._attribute_checker(type(attr))
            if checker is None:
                self.error(attr.span, f"no check is registered for {type(attr).__name__} attributes")
                continue
            source, wrt_stated = checker.stated(attr)
            try:
                wrt = dt.resolve_wrt(self.module, fn.type, wrt_stated)
                sources = dt.resolve_sources(self.module, fn.type, source)
            except dt.DerivativeTypeError as e:
                self.error(attr.span, f"invalid differentiability attribute: {e}")
                continue
            key = (type(attr).__name__, sources, wrt)
            if key in seen:
                self.error(
                    attr.span,
                    "duplicate differentiability attribute for the same 'source' and 'wrt'",
                    [note(seen[key].span, "previous attribute here")],
                )
            seen[key] = attr
            checker.check(fn, attr, sources, wrt)

    def _attribute_checker(self, cls: type) -> AttributeChecker[Any] | None:
        """This run's checker of attributes of class ``cls``. A class none is registered for may be
        described by a package that registers passes: loading the pass registry imports those,
        and they register their checks as they are imported."""
        checker = self._checkers.get(cls)
        if checker is None:
            make = _ATTRIBUTE_CHECKERS.get(cls)
            if make is None:
                registered_passes()
                make = _ATTRIBUTE_CHECKERS.get(cls)
                if make is None:
                    return None
            checker = self._checkers[cls] = make(self)
        return checker

    def check_derivative(
        self, attr: FunctionAttr, role: str, name: str | None, expected: FunctionType
    ) -> None:
        """That the function an attribute names as its ``role`` exists and has type ``expected``."""
        if name is None:
            return
        target = self.module.functions.get(name)
        if target is None:
            self.error(attr.span, f"{role} '@{name}' is not defined")
        elif target.type != expected:
            self.error(
                attr.span,
                f"{role} '@{name}' has type {target.type}, but must have type {expected}",
                [note(target.span, f"'@{name}' defined here")],
            )

    # --- bodies --------------------------------------------------------------------------------
    def _verify_body(self, fn: Function) -> None:
        entry = fn.blocks[0]
        entry_types = tuple(a.type for a in entry.args)
        if entry_types != fn.type.params:
            self.error(
                entry.span,
                f"entry block arguments ({', '.join(map(str, entry_types))}) do not match "
                f"the parameters of {fn.type}",
            )
        known = self._known_types
        for block in fn.blocks:
            if block.name is not None and not self._is_name(block.name, _TYPE_NAME):
                self.error(block.span, f"'{block.name}' cannot name a block")
            for arg in block.args:
                self._check_value_name(arg, block.span)
                if arg.type not in known:
                    self.check_type(arg.type, block.span)
            self._verify_block_shape(fn, block)
            for inst in block.instructions:
                for r in inst.results:
                    if r.name is not None:
                        self._check_value_name(r, inst)
                    if r.type not in known:
                        self.check_type(r.type, inst)
                if inst.is_terminator:
                    for succ, args in inst.successor_args():
                        self._verify_successor(inst, succ, args, fn)
                    if entry in inst.successors():
                        self.error(entry.span, "the entry block cannot be a branch target")
                inst.verify(self)
        if len(fn.blocks) == 1:
            self._check_uses(fn, entry, set(entry.args))  # one block: dominance is order
        else:
            self._verify_dominance(fn, DominatorTree(fn))

    def _is_name(self, name: str, pattern: re.Pattern[str]) -> bool:
        """Whether ``pattern`` matches all of ``name`` (remembered: names recur across functions)."""
        key = (name, pattern)
        valid = self._names_checked.get(key)
        if valid is None:
            valid = self._names_checked[key] = pattern.fullmatch(name) is not None
        return valid

    def _check_value_name(self, v: Value, where: Instruction | Span | None) -> None:
        if v.name is not None and not self._is_name(v.name, _VALUE_NAME):
            self.error(where, f"'%{v.name}' is not a value name")

    @staticmethod
    def _defined_values(fn: Function) -> set[Value]:
        """Every value a function's blocks define."""
        defined: set[Value] = set()
        for block in fn.blocks:
            defined.update(block.args)
            for inst in block.instructions:
                defined.update(inst.results)
        return defined

    def _verify_block_shape(self, fn: Function, block: Block) -> None:
        insts = block.instructions
        if not insts or not insts[-1].is_terminator:
            at = insts[-1].span if insts else block.span
            self.error(at, f"block '{block.name}' does not end in a terminator")
        for inst in insts[:-1]:
            if inst.is_terminator:
                self.error(inst, f"terminator '{inst.opname}' in the middle of a block")
        if insts and insts[-1].is_terminator:
            for succ in insts[-1].successors():
                if succ.function is not fn:
                    self.error(insts[-1], f"branch to block '{succ.name}' of another function")

    def _verify_successor(self, inst: Instruction, succ: Block, args: list[Value], fn: Function) -> None:
        if len(args) != len(succ.args):
            self.error(
                inst, f"branch to '{succ.name}' passes {len(args)} argument(s), but it takes {len(succ.args)}"
            )
            return
        for i, (arg, param) in enumerate(zip(args, succ.args)):
            if arg.type != param.type:
                self.error(
                    inst,
                    f"argument {i} of the branch to '{succ.name}' has type {arg.type}, "
                    f"but the block argument has type {param.type}",
                )

    def _verify_dominance(self, fn: Function, tree: DominatorTree) -> None:
        available: set[Value] = set()
        # Reachable blocks in dominator-tree preorder; a block's values leave scope after its subtree.
        stack: list[tuple[Block, bool]] = [(fn.blocks[0], True)] if tree.order else []
        while stack:
            block, entering = stack.pop()
            if not entering:
                available.difference_update(block.args)
                for inst in block.instructions:
                    available.difference_update(inst.results)
                continue
            available.update(block.args)
            self._check_uses(fn, block, available)
            stack.append((block, False))
            stack.extend((child, True) for child in reversed(tree.children[block]))
        unreachable = [block for block in fn.blocks if not tree.is_reachable(block)]
        if unreachable:
            defined = self._defined_values(fn)
            for block in unreachable:
                self._check_uses(fn, block, set(defined), same_block_order=True)

    def _check_uses(
        self, fn: Function, block: Block, available: set[Value], same_block_order: bool = False
    ) -> None:
        if same_block_order:
            for inst in block.instructions:
                available.difference_update(inst.results)
            available.update(block.args)
        for inst in block.instructions:
            for i, op in enumerate(inst.operands):
                if op not in available:
                    what = f"operand {i} of '{inst.opname}'{self._describe(op)}"
                    if op in self._defined_values(fn):
                        definition = note(_definition_span(op), "defined here")
                        self.error(inst, f"{what} does not dominate this use", [definition])
                    else:
                        self.error(inst, f"{what} is not defined in this function")
            available.update(inst.results)


A = TypeVar("A")


class AttributeChecker(abc.ABC, Generic[A]):
    """How the verifier checks one class of differentiability attribute, made once per run (so it
    may remember what it saw: attributes that share a function). The verifier resolves what the
    attribute ``stated`` (SIL-SPEC §3) and reports duplicates; ``check`` does the rest.

    Every attribute class other than flags needs one: the verifier reports an attribute it has no
    checker for, never passes it unchecked. ``register_attribute_checker`` adds one, so that the
    forms the core does not know (the legacy SR-9395 form) are checked by who describes them."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    @abc.abstractmethod
    def stated(self, attr: A) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
        """The results (``source``) and parameters (``wrt``) the attribute states; None: omitted."""

    @abc.abstractmethod
    def check(self, fn: Function, attr: A, sources: tuple[int, ...], wrt: tuple[int, ...]) -> None:
        """Report what is wrong with ``attr`` of ``fn``, which differentiates ``sources`` for ``wrt``."""


_ATTRIBUTE_CHECKERS: dict[type, Callable[[Verifier], AttributeChecker[Any]]] = {}


def register_attribute_checker(cls: type[A], checker: Callable[[Verifier], AttributeChecker[A]]) -> None:
    """Check attributes of class ``cls`` with ``checker`` (called once per run of the verifier)."""
    _ATTRIBUTE_CHECKERS[cls] = checker


class _DerivativeAttributeChecker(AttributeChecker[DifferentiableAttr]):
    """``[differentiable … jvp @j vjp @v]``: the derivatives it names have the types of §6."""

    def stated(self, attr: DifferentiableAttr) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
        return attr.source, attr.wrt

    def check(
        self, fn: Function, attr: DifferentiableAttr, sources: tuple[int, ...], wrt: tuple[int, ...]
    ) -> None:
        v = self.verifier
        v.check_derivative(attr, "jvp", attr.jvp, dt.jvp_type(v.module, fn.type, sources, wrt))
        v.check_derivative(attr, "vjp", attr.vjp, dt.vjp_type(v.module, fn.type, sources, wrt))


register_attribute_checker(DifferentiableAttr, _DerivativeAttributeChecker)


def recursive_structs(module: Module) -> list[tuple[list[str], Span | None]]:
    """The cycles of structs that contain themselves, through their fields, tuples and tangent
    structs (an enum's payload may refer back: a run holds it by reference), each as the names
    around it and the span of the field that starts it.

    Such a value would be infinite, and walks over a struct's fields (its tangent, a zero of it)
    would not end. The walk is depth-first with an explicit stack: a derivative's records nest
    one per block, so the chains can be as long as a function.
    """
    edges: dict[str, list[tuple[str, Span | None]]] = {}
    for decl in module.types.values():
        if isinstance(decl, StructDecl):
            edges[decl.name] = [(s, f.span) for f in decl.fields for s in _structs_in(module, f.type)]
            tangent = decl.name + TANGENT_SUFFIX
            if decl.differentiable and tangent not in module.types:
                edges[tangent] = [
                    (s, f.span)
                    for f in decl.fields
                    if not f.no_derivative and (t := module.tangent_type(f.type)) is not None
                    for s in _structs_in(module, t)
                ]
    cycles: list[tuple[list[str], Span | None]] = []
    state: dict[str, int] = {}  # 1 while on the stack, 2 when done
    for root in edges:
        if root in state:
            continue
        state[root] = 1
        path: list[tuple[str, Span | None]] = [(root, None)]
        stack = [iter(edges[root])]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                state[path.pop()[0]] = 2
                continue
            name, span = step
            if state.get(name) == 1:  # back to a struct on the path: a cycle from there
                start = [n for n, _ in path].index(name)
                names = [n for n, _ in path[start:]] + [name]
                cycles.append((names, path[start + 1][1] if start + 1 < len(path) else span))
            elif name not in state:
                state[name] = 1
                path.append((name, span))
                stack.append(iter(edges.get(name, ())))
    return cycles


def _structs_in(module: Module, t: Type) -> list[str]:
    """The structs a value of type ``t`` holds directly (in tuples too, not in enums' payloads)."""
    found: list[str] = []
    pending = [t]
    while pending:
        t = pending.pop()
        if isinstance(t, TupleType):
            pending.extend(t.elements)
        elif isinstance(t, NominalType):
            decl = module.types.get(t.name)
            if isinstance(decl, StructDecl) or (
                decl is None and isinstance(module.lookup_type(t.name), StructDecl)
            ):
                found.append(t.name)  # a declared struct, or an implicit tangent struct
    return found


def _definition_span(v: Value) -> Span | None:
    if isinstance(v, Result) and v.owner is not None:
        return v.owner.span
    if isinstance(v, BlockArgument) and v.block is not None:
        return v.block.span
    return None


def verify_module(module: Module) -> list[Diagnostic]:
    """Every rule violation in ``module``, in source order."""
    return Verifier(module).verify_module()


def verify(module: Module) -> None:
    """Raise ``SILError`` with every violation, if there are any."""
    diagnostics = verify_module(module)
    if diagnostics:
        raise SILError(diagnostics)
