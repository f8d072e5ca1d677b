"""IR nodes with identity: values, instructions, blocks, functions, declarations, the module.

Every value keeps the list of instructions that use it (one entry per operand slot), and only the
methods here change operands, block arguments and types (``Instruction.set_operand`` and
``set_operands``, ``Value.replace_all_uses_with``, ``Block.insert_arg``, ``erase_arg`` and
``permute_args``, ``Function.set_type``, ``Instruction.update_result_types``), so use-lists are
never out of date; a test checks that no module outside this one assigns those fields. (One
exception, by request: a terminator taken out by ``Block.retire_terminator`` keeps its uses until
``release_instructions`` drops those of many instructions at once.)

Edits that would each scan a long list are batched: ``Function.batched_edits`` makes an erase or
an insertion before an instruction O(1) and rebuilds each block's list once at the end, and
``release_instructions`` filters each use-list once for many dead users.

``Instruction`` is the schema every instruction class fills in: its fields, ``result_types``,
``verify``, and its text form, ``parse`` and ``format``, with an optional fused fast path
(``fast_form`` and ``parse_fast``) for its commonest spelling.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Self

import attrs

from sil.diagnostics import SourceFile, Span
from sil.types import FunctionType, NominalType, ScalarType, TensorType, TupleType, Type

if TYPE_CHECKING:
    from sil.lexer import FastForm
    from sil.parser import Parser
    from sil.printer import Printer
    from sil.verifier import Verifier


@attrs.define(eq=False, slots=True)
class Value:
    """An SSA value. ``name`` is the name the input gave it (without ``%``), if not a number."""

    type: Type
    name: str | None = None
    uses: list[Instruction] = attrs.field(factory=list, repr=False)

    def replace_all_uses_with(self, new: Value) -> None:
        """Make every user of this value use ``new`` instead."""
        if new is self:
            return
        users = self.uses
        self.uses = []
        seen: set[int] = set()
        for user in users:
            if id(user) in seen:
                continue
            seen.add(id(user))
            ops = user.operands
            for i, op in enumerate(ops):
                if op is self:
                    ops[i] = new
                    new.uses.append(user)

    def user_count(self) -> int:
        """How many operand slots use this value."""
        return len(self.uses)


@attrs.define(eq=False, slots=True, repr=False)
class BlockArgument(Value):
    """A block's parameter; the entry block's arguments are the function's parameters."""

    block: Block | None = None

    def __repr__(self) -> str:
        return f"<BlockArgument %{self.name} : {self.type}>"


@attrs.define(eq=False, slots=True, repr=False)
class Result(Value):
    """A result of an instruction."""

    owner: Instruction | None = None
    index: int = 0

    def __repr__(self) -> str:
        return f"<Result %{self.name} : {self.type} of {type(self.owner).__name__}>"


@attrs.define(eq=False, slots=True)
class Instruction:
    """Base of every instruction. Subclasses declare their fields and their rules.

    ``operands`` lists every SSA operand in a fixed layout that the subclass documents; the results
    are made from ``result_types()`` when the instruction is created.
    """

    opname: ClassVar[str] = ""
    is_terminator: ClassVar[bool] = False
    has_effects: ClassVar[bool] = False
    fast_form: ClassVar[FastForm | None] = None
    """The commonest spelling of the instruction's line, for ``parse_fast`` (None: ``parse`` only)."""

    operands: list[Value]
    # One Result for the common one-result instruction, else a tuple (of 0 or at least 2): a
    # one-element tuple per instruction would cost 56 bytes in every parsed module.
    _results: Result | tuple[Result, ...] = attrs.field(init=False, default=(), repr=False)
    block: Block | None = attrs.field(init=False, default=None, repr=False)
    # Where the instruction came from: a Span, or (as the parser stores it, to keep modules small)
    # the offset of its first character in the source of the function that holds it.
    location: Span | int | None = attrs.field(init=False, default=None, repr=False)

    registry: ClassVar[dict[str, type[Instruction]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("opname"):
            Instruction.registry[cls.opname] = cls

    def __attrs_post_init__(self) -> None:
        types = self.result_types()  # first: a type-rule error must leave no use behind
        for op in self.operands:
            op.uses.append(self)
        if len(types) == 1:
            self._results = Result(types[0], None, [], self, 0)
        elif types:
            self._results = tuple([Result(t, None, [], self, i) for i, t in enumerate(types)])

    # --- the schema each subclass fills in -------------------------------------------------
    @classmethod
    def parse(cls, p: Parser) -> Self:
        """Read what follows the opcode (SIL-SPEC §4) and build the instruction; errors are
        raised located, through ``p``."""
        raise NotImplementedError(f"'{cls.opname}' declares no parse")

    @classmethod
    def parse_fast(cls, p: Parser, m: re.Match[str], groups: tuple[str | Any, ...]) -> Self | None:
        """The instruction from a match ``m`` of ``fast_form`` (``FastForm.line_re`` or
        ``tail_re``: the tail's groups start at group 2) and its ``groups()``, which the parser
        reads too, as ``parse`` would build it; None when the line needs ``parse`` after all
        (errors are its job)."""
        return None

    def format(self, pr: Printer) -> str:
        """The text after the opcode, as ``parse`` reads it."""
        raise NotImplementedError(f"'{self.opname}' declares no format")

    def result_types(self) -> tuple[Type, ...]:
        """The types of the results, computed from operands and attributes."""
        return ()

    def verify(self, v: Verifier) -> None:
        """Check the rules specific to this instruction; report through ``v``."""

    def successors(self) -> tuple[Block, ...]:
        """The blocks a terminator can transfer control to."""
        return ()

    def successor_args(self) -> tuple[tuple[Block, list[Value]], ...]:
        """Each successor with the values passed to its block arguments."""
        return ()

    # --- editing ---------------------------------------------------------------------------
    @property
    def results(self) -> tuple[Result, ...]:
        """Every result, in order."""
        results = self._results
        return (results,) if isinstance(results, Result) else results

    @property
    def single_result(self) -> Result | None:
        """The result of a one-result instruction; None when it has none or several."""
        results = self._results
        return results if isinstance(results, Result) else None

    @property
    def result(self) -> Result:
        """The single result of a one-result instruction."""
        results = self._results
        if not isinstance(results, Result):
            raise ValueError(f"'{self.opname}' has {len(results)} results, not one")
        return results

    @property
    def span(self) -> Span | None:
        """The instruction's place in the source, when it has one."""
        location = self.location
        if not isinstance(location, int):
            return location
        fn = self.block.function if self.block is not None else None
        if fn is None or fn.source is None:
            return None
        return Span(fn.source, location, location)

    @span.setter
    def span(self, span: Span | None) -> None:
        self.location = span

    def keep_location(self) -> None:
        """Turn a source offset into a Span, before the instruction leaves its function."""
        if type(self.location) is int:
            self.location = self.span

    def set_operand(self, index: int, value: Value) -> None:
        """Replace one operand, keeping use-lists right."""
        old = self.operands[index]
        old.uses.remove(self)
        self.operands[index] = value
        value.uses.append(self)

    def set_operands(self, values: Sequence[Value]) -> None:
        """Replace every operand at once (as a list in the subclass's layout), keeping
        use-lists right: only a value used in more or fewer slots than before gains or loses
        uses, so reordering operands leaves every use-list as it was."""
        old, new = Counter(map(id, self.operands)), Counter(map(id, values))
        for op in self.operands:
            if old[id(op)] > new[id(op)]:
                old[id(op)] -= 1
                op.uses.remove(self)
        for value in values:
            if new[id(value)] > old[id(value)]:
                new[id(value)] -= 1
                value.uses.append(self)
        self.operands = list(values)

    def update_result_types(self) -> None:
        """Give the results the types ``result_types`` computes now, after a change to the
        fields it reads (the users of the results must accept the new types)."""
        for result, t in zip(self.results, self.result_types(), strict=True):
            result.type = t

    def drop_operand_uses(self) -> None:
        for op in self.operands:
            op.uses.remove(self)

    def erase(self) -> None:
        """Remove this instruction from its block; its results must have no uses left."""
        for r in self.results:
            if r.uses:
                raise ValueError(f"erasing {self.opname} whose result still has uses")
        self.drop_operand_uses()
        block = self.block
        if block is not None:
            if block.edits is None:
                block.instructions.remove(self)
            self.keep_location()
            self.block = None


def release_instructions(dead: Sequence[Instruction]) -> None:
    """Detach ``dead`` (out of their blocks' lists already, or about to be) from what they use:
    each use-list is filtered once, not scanned once per dead user."""
    gone = set(dead)
    touched: dict[int, Value] = {}
    for inst in dead:
        for op in inst.operands:
            touched[id(op)] = op
        inst.keep_location()
        inst.block = None
    for value in touched.values():
        value.uses = [u for u in value.uses if u not in gone]


@attrs.define(eq=False, slots=True)
class Block:
    """A basic block: arguments, then instructions, the last of which is the terminator."""

    name: str | None
    args: list[BlockArgument] = attrs.field(factory=list)
    instructions: list[Instruction] = attrs.field(factory=list, repr=False)
    function: Function | None = attrs.field(default=None, repr=False)
    span: Span | None = attrs.field(default=None, repr=False)
    # Batched edits (``Function.batched_edits``): what to insert before each anchor instruction;
    # erased instructions stay in ``instructions`` (with ``block`` None) until ``commit_edits``.
    edits: dict[Instruction, list[Instruction]] | None = attrs.field(default=None, repr=False)

    def add_argument(self, type: Type, name: str | None = None) -> BlockArgument:
        """A new last argument."""
        arg = BlockArgument(type, name, [], self)
        self.args.append(arg)
        return arg

    def insert_arg(self, type: Type, index: int, name: str | None = None) -> BlockArgument:
        """A new argument at position ``index``."""
        arg = BlockArgument(type, name, [], self)
        self.args.insert(index, arg)
        return arg

    def erase_arg(self, arg: BlockArgument) -> None:
        """Remove ``arg``, which must have no uses left."""
        if arg.uses:
            raise ValueError(f"erasing block argument %{arg.name} that still has uses")
        self.args.remove(arg)
        arg.block = None

    def permute_args(self, order: Sequence[int]) -> None:
        """Reorder the arguments: the new i-th argument is the old ``order[i]``-th."""
        if sorted(order) != list(range(len(self.args))):
            raise ValueError(f"{list(order)} is not a permutation of {len(self.args)} arguments")
        self.args = [self.args[i] for i in order]

    def append(self, inst: Instruction) -> Instruction:
        self._adopt(inst)
        self.instructions.append(inst)
        return inst

    def insert(self, index: int, inst: Instruction) -> Instruction:
        self._adopt(inst)
        self.instructions.insert(index, inst)
        return inst

    def insert_before(self, anchor: Instruction, inst: Instruction) -> Instruction:
        """Insert ``inst`` before ``anchor``: at once, or at ``commit_edits`` when batching (the
        instructions inserted before one anchor keep their order)."""
        if self.edits is None:
            return self.insert(self.instructions.index(anchor), inst)
        self._adopt(inst)
        self.edits.setdefault(anchor, []).append(inst)
        return inst

    def begin_edits(self) -> None:
        """Batch the edits that follow: an erase or an insertion before an instruction costs
        O(1) instead of a scan of the list, and ``commit_edits`` rebuilds the list once."""
        if self.edits is None:
            self.edits = {}

    def commit_edits(self) -> None:
        """Apply the batched edits: drop erased instructions, place the inserted ones."""
        edits = self.edits
        if edits is None:
            return
        self.edits = None
        out: list[Instruction] = []
        for inst in self.instructions:
            self._place(inst, edits, out)
        self.instructions = out

    def _place(
        self, inst: Instruction, edits: dict[Instruction, list[Instruction]], out: list[Instruction]
    ) -> None:
        for before in edits.pop(inst, ()):
            self._place(before, edits, out)
        if inst.block is self:
            out.append(inst)

    def _adopt(self, inst: Instruction) -> None:
        old = inst.block
        if old is not None and old.function is not self.function:
            inst.keep_location()
        inst.block = self

    def erase_instructions(self, dead: set[Instruction]) -> None:
        """Erase several instructions at once (linear in the block's size and in the use-lists
        of what they use)."""
        release_instructions([inst for inst in self.instructions if inst in dead])
        self.instructions = [inst for inst in self.instructions if inst not in dead]

    def retire_terminator(self) -> Instruction:
        """Take the terminator out of the block, to be replaced by a new one appended; it keeps
        its operands' uses until ``release_instructions`` drops those of many at once."""
        term = self.terminator
        if term is None:
            raise ValueError(f"block {self.name} has no terminator")
        self.instructions.pop()
        return term

    def take_instructions(self, other: Block, start: int = 0) -> None:
        """Move the instructions of ``other`` from index ``start`` on to the end of this block:
        all of them to merge ``other`` into its only predecessor, a tail to split ``other`` (as
        -inline does at a call). Operands and uses stay as they are."""
        moved = other.instructions[start:]
        del other.instructions[start:]
        for inst in moved:
            self._adopt(inst)
        self.instructions.extend(moved)

    @property
    def terminator(self) -> Instruction | None:
        if self.instructions and self.instructions[-1].is_terminator:
            return self.instructions[-1]
        return None

    def successors(self) -> tuple[Block, ...]:
        term = self.terminator
        return term.successors() if term is not None else ()


@attrs.frozen
class DifferentiableAttr:
    """``[differentiable source S, T wrt I, J jvp @f_jvp vjp @f_vjp]`` (``source`` None: every
    result of differentiable type; ``wrt`` None: every parameter of differentiable type)."""

    source: tuple[int, ...] | None = None
    wrt: tuple[int, ...] | None = None
    jvp: str | None = None
    vjp: str | None = None
    span: Span | None = attrs.field(default=None, eq=False)


@attrs.frozen
class LegacyDifferentiableAttr:
    """The 2018 form ``[reverse_differentiable source S wrt I primal @p adjoint @a]``; ``seed_first``
    (printed last) says the adjoint takes the seed first, as -reverse-adjoint-params leaves it,
    instead of the 2018 order: the order is stated, since types cannot tell it (``(Float, C, Float,
    Float)`` reads both ways)."""

    source: int = 0
    wrt: tuple[int, ...] | None = None
    primal: str | None = None
    adjoint: str | None = None
    seed_first: bool = False
    span: Span | None = attrs.field(default=None, eq=False)


@attrs.frozen
class FlagAttr:
    """An inliner hint: ``noinline``, ``always_inline`` or ``transparent``."""

    name: str
    span: Span | None = attrs.field(default=None, eq=False)


FunctionAttr = DifferentiableAttr | LegacyDifferentiableAttr | FlagAttr
FLAG_ATTRS = ("noinline", "always_inline", "transparent")


@attrs.define(eq=False, slots=True)
class Function:
    """A SIL function; without blocks it is an external declaration."""

    name: str
    type: FunctionType
    attributes: list[FunctionAttr] = attrs.field(factory=list)
    blocks: list[Block] = attrs.field(factory=list, repr=False)
    span: Span | None = attrs.field(default=None, repr=False)
    source: SourceFile | None = attrs.field(default=None, repr=False)
    """The file the function was parsed from: instructions' offsets refer to it."""

    @property
    def is_declaration(self) -> bool:
        return not self.blocks

    def set_type(self, t: FunctionType) -> None:
        """Change the function's signature. The entry block's arguments must already have the
        new parameter types (``Block.insert_arg``, ``erase_arg``, ``permute_args``); references
        to the function follow with ``FunctionRefInst.retarget``."""
        if self.blocks and [a.type for a in self.entry.args] != list(t.params):
            raise ValueError(f"the entry block of '@{self.name}' does not take the parameters of {t}")
        self.type = t

    @property
    def entry(self) -> Block:
        return self.blocks[0]

    def add_block(self, name: str | None = None) -> Block:
        block = Block(name, function=self)
        self.blocks.append(block)
        return block

    def instructions(self) -> Iterator[Instruction]:
        for block in self.blocks:
            yield from block.instructions

    def erase_blocks(self, dead: set[Block]) -> None:
        """Remove the blocks ``dead`` (never the entry): what their instructions use loses those
        uses. Their own values must be used only within ``dead`` (as in blocks no path reaches)."""
        if self.blocks and self.blocks[0] in dead:
            raise ValueError(f"erasing the entry block of '@{self.name}'")
        gone = [b for b in self.blocks if b in dead]
        release_instructions([inst for block in gone for inst in block.instructions])
        for block in gone:
            block.instructions = []
            block.function = None
        self.blocks = [b for b in self.blocks if b not in dead]

    @contextmanager
    def batched_edits(self) -> Iterator[None]:
        """Batch the edits of every block (``Block.begin_edits``) until the ``with`` ends."""
        for block in self.blocks:
            block.begin_edits()
        try:
            yield
        finally:
            for block in self.blocks:
                block.commit_edits()


@attrs.define(eq=False, slots=True)
class FieldDecl:
    name: str
    type: Type
    no_derivative: bool = False
    span: Span | None = attrs.field(default=None, repr=False)


@attrs.define(eq=False, slots=True)
class StructDecl:
    """``struct Name [: Differentiable] { var f: T … }``."""

    name: str
    fields: list[FieldDecl] = attrs.field(factory=list)
    differentiable: bool = False
    span: Span | None = attrs.field(default=None, repr=False)
    implicit: bool = False

    def field(self, name: str) -> FieldDecl | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def type(self) -> NominalType:
        return NominalType(self.name)


@attrs.define(eq=False, slots=True)
class EnumCase:
    name: str
    payload: Type | None = None
    span: Span | None = attrs.field(default=None, repr=False)


@attrs.define(eq=False, slots=True)
class EnumDecl:
    """``enum Name [: Differentiable] { case a(T) case b }``: at most one payload per case. A
    differentiable enum's tangent, ``Name.TangentVector``, has its cases with their payloads'
    tangents, and ``zero`` (``ZERO_CASE``): the zero tangent, whatever the case."""

    name: str
    cases: list[EnumCase] = attrs.field(factory=list)
    span: Span | None = attrs.field(default=None, repr=False)
    differentiable: bool = False
    implicit: bool = False
    # The cases by name (the first of a name), for the list of ``cases`` at its length then: a
    # verifier looks a case up for each switch_enum case and enum, and a derivative's trace or
    # path enum can have a case per block of the function.
    _index: dict[str, EnumCase] = attrs.field(factory=dict, init=False, repr=False)
    _indexed: tuple[list[EnumCase] | None, int] = attrs.field(default=(None, 0), init=False, repr=False)

    def case(self, name: str) -> EnumCase | None:
        return self.cases_by_name().get(name)

    def cases_by_name(self) -> Mapping[str, EnumCase]:
        """The cases by name (the first case of each name)."""
        cases = self.cases
        indexed, length = self._indexed
        if indexed is not cases or length != len(cases):
            self._index = {}
            for c in cases:
                self._index.setdefault(c.name, c)
            self._indexed = (cases, len(cases))
        return self._index

    @property
    def type(self) -> NominalType:
        return NominalType(self.name)


TypeDecl = StructDecl | EnumDecl

TANGENT_SUFFIX = ".TangentVector"
ZERO_CASE = "zero"
"""The case of a differentiable enum's tangent that is the zero tangent, whatever the case."""


@attrs.define(eq=False, slots=True)
class Module:
    """A module: type declarations and functions, each in the order they were declared."""

    types: dict[str, TypeDecl] = attrs.field(factory=dict)
    functions: dict[str, Function] = attrs.field(factory=dict)
    stage: str | None = None

    def add_function(self, fn: Function) -> Function:
        self.functions[fn.name] = fn
        return fn

    def add_type(self, decl: TypeDecl) -> TypeDecl:
        self.types[decl.name] = decl
        return decl

    def lookup_type(self, name: str) -> TypeDecl | None:
        """A declared struct or enum; ``S.TangentVector`` is derived from struct ``S`` (§3), and
        ``E.TangentVector`` from a differentiable enum ``E``."""
        decl = self.types.get(name)
        if decl is None and name.endswith(TANGENT_SUFFIX):
            base = name[: -len(TANGENT_SUFFIX)]
            if isinstance(self.types.get(base), EnumDecl):
                return self._tangent_enum(base)
            return self._tangent_struct(base)
        return decl

    def struct(self, name: str) -> StructDecl | None:
        decl = self.lookup_type(name)
        return decl if isinstance(decl, StructDecl) else None

    def enum(self, name: str) -> EnumDecl | None:
        decl = self.lookup_type(name)
        return decl if isinstance(decl, EnumDecl) else None

    def _tangent_enum(self, base: str) -> EnumDecl | None:
        original = self.types.get(base)
        if not isinstance(original, EnumDecl) or not original.differentiable:
            return None
        cases = [
            EnumCase(c.name, None if c.payload is None else self.tangent_type(c.payload))
            for c in original.cases
        ]
        cases.append(EnumCase(ZERO_CASE))
        return EnumDecl(base + TANGENT_SUFFIX, cases, original.span, True, implicit=True)

    def _tangent_struct(self, base: str) -> StructDecl | None:
        original = self.types.get(base)
        if not isinstance(original, StructDecl) or not original.differentiable:
            return None
        fields = []
        for f in original.fields:
            tangent = None if f.no_derivative else self.tangent_type(f.type)
            if tangent is not None:
                fields.append(FieldDecl(f.name, tangent))
        return StructDecl(base + TANGENT_SUFFIX, fields, True, original.span, implicit=True)

    def tangent_type(self, t: Type) -> Type | None:
        """The tangent type of ``t`` (SIL-SPEC §2), or None when ``t`` is not differentiable.

        A tuple's tangent holds the tangents of its differentiable elements; when that leaves a
        single element, the tangent is that element's tangent itself, as for pullback results.
        The tangent of a tangent struct is itself.
        """
        if isinstance(t, ScalarType):
            return t if t.is_float else None
        if isinstance(t, TensorType):
            return t
        if isinstance(t, TupleType):
            elements: list[Type] = []
            labels: list[str | None] = []
            for label, element in zip(t.labels, t.elements):
                tangent = self.tangent_type(element)
                if tangent is not None:
                    elements.append(tangent)
                    labels.append(label)
            if t.elements and not elements:
                return None  # only non-differentiable elements: not differentiable (unlike `()`)
            if len(elements) == 1:
                return elements[0]
            return TupleType(tuple(elements), tuple(labels))
        if isinstance(t, NominalType):
            decl = self.types.get(t.name)
            if decl is None and t.name.endswith(TANGENT_SUFFIX):
                # An implicit tangent struct is its own tangent. Its fields are not needed to
                # say so: deriving them asks for this tangent again when a field of the base
                # has the base's tangent type (a recursive type, which the verifier reports).
                base = self.types.get(t.name[: -len(TANGENT_SUFFIX)])
                return t if isinstance(base, StructDecl | EnumDecl) and base.differentiable else None
            if isinstance(decl, EnumDecl):
                return NominalType(t.name + TANGENT_SUFFIX) if decl.differentiable else None
            if not isinstance(decl, StructDecl):
                return None
            if t.name.endswith(TANGENT_SUFFIX):
                return t
            if decl.differentiable:
                return NominalType(t.name + TANGENT_SUFFIX)
        return None
