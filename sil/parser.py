"""Recursive-descent parser for the SIL text format (SIL-SPEC §1–4).

One contract throughout: ``parse_x()`` consumes an x or raises a located error; ``optional_x()``
returns None when the next token cannot start an x. The first error stops the parse, so one
mistake never cascades into a page of follow-ups. SSA names used before their definition are
forward references, resolved (and type-checked) at the end of the function.

The parser knows no instruction by name: it reads the opcode and dispatches through
``Instruction.registry`` to the class's ``parse``. An instruction whose commonest line is worth
a fused match declares it beside its ``parse`` (``fast_form`` and ``parse_fast``);
``FastPaths`` collects them from the registry, and the parser tries them first.
"""

from __future__ import annotations

import re
import sys

from sil.collection import building
from sil.diagnostics import SILError, SourceFile, Span, note
from sil.instructions import TypeRuleError
from sil.ir import (
    FLAG_ATTRS,
    Block,
    DifferentiableAttr,
    EnumCase,
    EnumDecl,
    FieldDecl,
    FlagAttr,
    Function,
    FunctionAttr,
    Instruction,
    LegacyDifferentiableAttr,
    Module,
    StructDecl,
    Value,
)
from sil.lexer import (
    ARROW_ON_LINE_RE,
    BODY_OPEN_RE,
    COLON_SIMPLE_TYPE_RE,
    CONTINUES_TYPE_RE,
    END_OF_LINE_RE,
    FUNCTION_LINE_RE,
    FUNCTION_NAME_RE,
    IDENT_RE,
    INSTRUCTION_HEAD_RE,
    INTEGER_RE,
    LABEL_LINE_RE,
    LINE_HEAD_RE,
    NEVER_RE,
    NO_DERIVATIVE_RE,
    PLAIN_ARGUMENT_RE,
    PLAIN_ARGUMENTS_RE,
    SIMPLE_TYPE_RE,
    TYPED_VALUE_IN_LIST_RE,
    TYPED_VALUE_RE,
    Cursor,
    unescape,
)
from sil.types import (
    NAMED_TYPES,
    Convention,
    FunctionType,
    NominalType,
    ScalarType,
    TensorType,
    TupleType,
    Type,
    names_builtin_type,
)

_MEMO_KEY_LENGTH = 40
_MAX_TYPE_DEPTH = 64


class FastPaths:
    """The fused fast paths the registered instructions declare (``Instruction.fast_form``):
    by opcode, the pattern of the rest of the line, the class, and whether the line names a
    result; and the one pattern, if any, matched whole at the start of every line."""

    def __init__(self, registry: dict[str, type[Instruction]]) -> None:
        self.registry = dict(registry)
        self.tails: dict[str, tuple[re.Pattern[str], type[Instruction], bool]] = {}
        self.line = NEVER_RE
        self.line_class: type[Instruction] = Instruction
        for opname, cls in registry.items():
            form = cls.fast_form
            if form is None:
                continue
            if not form.line_first:
                self.tails[opname] = (form.tail_re(), cls, form.result)
            elif self.line is NEVER_RE and form.result:
                self.line, self.line_class = form.line_re(opname), cls
            else:
                raise ValueError(f"'{opname}' cannot be matched first on every line")


_fast_paths = FastPaths({})


def fast_paths() -> FastPaths:
    """The fast paths of the instructions registered now (collected again when that changes)."""
    global _fast_paths
    if _fast_paths.registry != Instruction.registry:
        _fast_paths = FastPaths(Instruction.registry)
    return _fast_paths


class _FunctionScope:
    """Names of one function body: values, blocks, and forward references to either."""

    def __init__(self) -> None:
        self.values: dict[str, Value] = {}
        self.values_at: dict[str, int] = {}
        self.forward: dict[str, tuple[Value, int]] = {}
        self.blocks: dict[str, Block] = {}
        self.block_refs: dict[str, Span] = {}


class Parser(Cursor):
    """Parses one source file into a ``Module``."""

    def __init__(self, source: SourceFile) -> None:
        super().__init__(source)
        self.module = Module()
        self.scope = _FunctionScope()
        self.fast = fast_paths()
        self.simple_types: dict[str, Type] = dict(NAMED_TYPES)
        """Each plain type name seen, and its type (``simple_type`` fills it in)."""
        self._type_memo: dict[str, tuple[str, Type]] = {}
        self.spelled_types: dict[str, Type] = {}
        """Each type's exact spelling seen, and its type, for fused lines to look up whole."""
        self._argument_lists: dict[str, tuple[tuple[str, str, int, int], ...]] = {}  # _plain_arguments
        self._interned: dict[Type, Type] = {}
        self._type_depth = 0

    # --- module ------------------------------------------------------------------------------
    def parse_module(self) -> Module:
        with building():  # parsing allocates only objects that stay alive
            try:
                return self._parse_module()
            except RecursionError:
                self.error("nesting is too deep to parse")

    def _parse_module(self) -> Module:
        if self.accept_ident("sil_stage"):
            self.module.stage = self.ident("a stage name")
        text = self.text
        spelled_types = self.spelled_types
        while True:
            line = FUNCTION_LINE_RE.match(text, self.pos)
            if line is not None:  # the common case, in one match: `sil @f : $T {`
                t = spelled_types.get(line.group(4))
                if isinstance(t, FunctionType):
                    self._function_line(line, t)
                    continue
            start = self.token_start()
            if start == len(text):
                break
            if start != self.pos:  # past comments, the common case may match
                self.pos = start
                continue
            word = self.peek_ident()
            if word == "sil":
                self.parse_function()
            elif word == "struct":
                self.parse_struct()
            elif word == "enum":
                self.parse_enum()
            else:
                self.error(f"expected 'sil', 'struct' or 'enum', found {self.describe_next()}", at=start)
        return self.module

    def _declare_name(self, name: str, span: Span, what: str) -> None:
        previous: object = (self.module.functions if what == "function" else self.module.types).get(name)
        if what != "function" and names_builtin_type(name):
            raise SILError.at(span, f"'{name}' names a builtin type")
        if previous is not None:
            spelled = f"@{name}" if what == "function" else name
            raise SILError.at(
                span,
                f"redefinition of {what} '{spelled}'",
                [note(getattr(previous, "span", None), "previously defined here")],
            )

    def _type_declaration_head(self, keyword: str, what: str) -> tuple[str, Span]:
        """``struct Name`` or ``enum Name`` (``what`` the name is, for an error): the name,
        declared, and its span."""
        self.expect_ident(keyword)
        at = self.pos
        name = self.ident(what)
        span = self.span_from(at)
        self._declare_name(name, span, "type")
        return name, span

    def parse_struct(self) -> None:
        name, span = self._type_declaration_head("struct", "a struct name")
        decl = StructDecl(name, span=span)
        if self.accept(":"):
            self.expect_ident("Differentiable", "after ':' (the only protocol)")
            decl.differentiable = True
        self.expect("{", "to begin the struct's fields")
        while not self.accept("}"):
            at = self.pos
            no_derivative = False
            if self.accept("@"):
                self.expect_ident("noDerivative", "after '@' on a field")
                no_derivative = True
            self.expect_ident("var", "to declare a field (or '}' to end the struct)")
            field_at = self.pos
            field_name = self.ident("a field name")
            if decl.field(field_name) is not None:
                self.error(f"duplicate field '{field_name}' in struct '{name}'", at=field_at)
            self.expect(":")
            decl.fields.append(FieldDecl(field_name, self.bare_type(), no_derivative, self.span_from(at)))
        self.module.add_type(decl)

    def parse_enum(self) -> None:
        name, span = self._type_declaration_head("enum", "an enum name")
        decl = EnumDecl(name, span=span)
        if self.accept(":"):
            self.expect_ident("Differentiable", "after ':' (the only protocol)")
            decl.differentiable = True
        self.expect("{", "to begin the enum's cases")
        names: set[str] = set()
        while not self.accept("}"):
            self.expect_ident("case", "to declare a case (or '}' to end the enum)")
            at = self.pos
            case_name = self.ident("a case name")
            if case_name in names:
                self.error(f"duplicate case '{case_name}' in enum '{name}'", at=at)
            names.add(case_name)
            payload = None
            if self.accept("("):
                payload = self.bare_type()
                self.expect(")", "after the payload type (use a tuple for several values)")
            decl.cases.append(EnumCase(case_name, payload, self.span_from(at)))
        self.module.add_type(decl)

    # --- functions -----------------------------------------------------------------------------
    def parse_function(self) -> None:
        """``sil [attributes] @name : $type [{ body }]``."""
        attributes: list[FunctionAttr] = []
        self.expect_ident("sil")
        while self.accept("["):
            attributes.append(self.parse_function_attribute())
        m = FUNCTION_NAME_RE.match(self.text, self.pos)
        if m is not None:
            self.pos = m.end()
            name = m.group(2) if m.group(2) is not None else unescape(m.group(3))
            span = Span(self.source, m.start(1), m.end(1))
        else:
            at = self.pos
            name = self.global_name()
            span = self.span_from(at)
            self.expect(":")
        self._declare_name(name, span, "function")
        type_at = self.pos
        t = self.type()
        if not isinstance(t, FunctionType):
            self.error(f"a function must have a function type, not {t}", at=type_at)
        fn = Function(name, t, attributes, span=span, source=self.source)
        self.module.add_function(fn)
        brace = self.pos
        opened = BODY_OPEN_RE.match(self.text, brace)
        if opened is not None:
            self.pos = opened.end()
            self.parse_body(fn, brace, at_line_start=True)
        elif self.accept("{"):
            self.parse_body(fn, brace)

    def _function_line(self, m: re.Match[str], t: FunctionType) -> None:
        """A whole FUNCTION_LINE_RE line, its type's spelling seen before: as ``parse_function``."""
        name = m.group(2) if m.group(2) is not None else unescape(m.group(3))
        span = Span(self.source, m.start(1), m.end(1))
        self._declare_name(name, span, "function")
        fn = Function(name, t, [], span=span, source=self.source)
        self.module.add_function(fn)
        self.pos = m.end()
        self.parse_body(fn, m.start(5), at_line_start=True)

    def parse_function_attribute(self) -> FunctionAttr:
        at = self.pos
        word = self.ident("a function attribute")
        if word in FLAG_ATTRS:
            self.expect("]")
            return FlagAttr(word, self.span_from(at))
        if word not in ("differentiable", "reverse_differentiable"):
            self.error(f"unknown function attribute '{word}'", at=at)
        legacy = word == "reverse_differentiable"
        source: tuple[int, ...] | None = None
        wrt: tuple[int, ...] | None = None
        seed_first = False
        names: dict[str, str] = {}
        allowed = ("primal", "adjoint") if legacy else ("jvp", "vjp")
        expected = (
            "'source', 'wrt', 'primal', 'adjoint' or 'seed_first'"
            if legacy
            else "'source', 'wrt', 'jvp' or 'vjp'"
        )
        while not self.accept("]"):
            key_at = self.pos
            key = self.ident(expected)
            if key == "seed_first" and legacy:
                seed_first = True
                self.expect("]", "('seed_first' ends the attribute)")
                break
            if key == "source":
                source = self.attribute_indices()
                if legacy and len(source) > 1:
                    self.error(
                        "the legacy form differentiates one result: 'source' takes one index", at=key_at
                    )
            elif key == "wrt":
                wrt = self.attribute_indices()
            elif key in allowed:
                if key in names:
                    self.error(f"'{key}' given twice", at=key_at)
                names[key] = self.global_name()
            else:
                self.error(f"unexpected '{key}' in [{word} …]", at=key_at)
        span = self.span_from(at)
        if legacy:  # the 2018 form differentiates one result, 0 unless named
            return LegacyDifferentiableAttr(
                source[0] if source else 0, wrt, names.get("primal"), names.get("adjoint"), seed_first, span
            )
        return DifferentiableAttr(source, wrt, names.get("jvp"), names.get("vjp"), span)

    def attribute_indices(self) -> tuple[int, ...]:
        """``0, 1``: the indices after ``source`` or ``wrt`` in a ``[differentiable]`` attribute,
        as the printer writes them; space-separated ones (``0 1``, as Swift's SIL spells index
        lists) are accepted too."""
        indices = [self.integer()]
        while self.accept(",") or INTEGER_RE.match(self.text, self.pos) is not None:
            indices.append(self.integer())
        return tuple(indices)

    def parse_body(self, fn: Function, brace: int, at_line_start: bool = False) -> None:
        self.scope = scope = _FunctionScope()
        if not at_line_start:
            self.end_of_line()
        text = self.text
        match_line, parse_line = self.fast.line.match, self.fast.line_class.parse_fast
        while True:
            close = self.pos
            if text.startswith("}", close):  # the common case: `}` at a line's start
                self.pos = close + 1
                break
            block = self._optional_label_line(fn)
            if block is None:
                if self.accept("}"):
                    break
                if self.at_end():
                    raise SILError.at(
                        self.point(self.pos),
                        f"expected '}}' to end function '@{fn.name}'",
                        [note(self.point(brace), "to match this '{'")],
                    )
                block = self.parse_block_label(fn)
            append = block.instructions.append
            while True:
                line = match_line(text, self.pos)
                if (
                    line is not None
                    and (found := parse_line(self, line, groups := line.groups())) is not None
                ):
                    at = line.start(1) - 1  # as in optional_instruction's fused path
                    found.location = at
                    self.define(groups[0], found.result, at)
                    self.pos = line.end()
                else:
                    if text.startswith("}", self.pos):  # the end of the body, at a line's start
                        break
                    found = self.optional_instruction()
                    if found is None:
                        break
                found.block = block
                append(found)
        for name, span in scope.block_refs.items():
            if name not in scope.blocks or scope.blocks[name].function is None:
                raise SILError.at(span, f"use of undefined block '{name}'")
        for name, (_, at) in scope.forward.items():
            raise SILError.at(self.point(at), f"use of undefined value '%{name}'")
        if not fn.blocks:
            self.error(f"function '@{fn.name}' has a body with no blocks", at=close)

    def _optional_label_line(self, fn: Function) -> Block | None:
        """A block label written on one line with arguments of plain types (LABEL_LINE_RE), or
        None when the label, if any, needs ``parse_block_label``."""
        line = LABEL_LINE_RE.match(self.text, self.pos)
        if line is None:
            return None
        name, arguments = line.group(1, 2)
        if name in Instruction.registry and not self.text.startswith(":", line.end(1)):
            return None  # an opcode is a label only right before ':'; parse_block_label says so
        recipe = () if arguments is None else self._plain_arguments(arguments)
        if recipe is None:
            return None
        return self._label_line(fn, line, recipe)

    def parse_block_label(self, fn: Function) -> Block:
        at = self.pos
        m = IDENT_RE.match(self.text, self.pos)
        if m is None:
            self.error(f"expected a block label like 'bb0:', found {self.describe_next()}")
        name = m.group(1)
        if name in Instruction.registry and not self.text.startswith(":", m.end()):
            self.error(f"expected a block label before '{name}'", at=at)
        self.pos = m.end()
        block = self._new_block(fn, name, at)
        block.span = self.span_from(at)
        if self.accept("(") and not self.accept(")"):
            text = self.text
            while True:  # fast path: `%a : $T,` or `%a : $T)` with T a plain name
                fast = TYPED_VALUE_IN_LIST_RE.match(text, self.pos)
                if fast is None:
                    break
                self.pos = fast.end()
                arg = block.add_argument(self.simple_type(fast.group(2), fast.start(2)))
                self.define(fast.group(1), arg, fast.start(1) - 1)
                if fast.group(3) == ")":
                    break
            while fast is None:
                arg_name, arg_at = self.value_name_at()
                self.expect(":")
                arg = block.add_argument(self.type())
                self.define(arg_name, arg, arg_at)
                if not self.accept(","):
                    self.expect(")", "to close the block's arguments")
                    break
        self.expect(":", "after the block label")
        self.end_of_line()
        return block

    def _plain_arguments(self, text: str) -> tuple[tuple[str, str, int, int], ...] | None:
        """The arguments of a label written ``text``, when they all have plain types: each name,
        type name and their offsets in ``text``. Argument lists recur verbatim (every function's
        entry block spells its parameters), so each spelling is read once."""
        recipe = self._argument_lists.get(text)
        if recipe is None and PLAIN_ARGUMENTS_RE.fullmatch(text) is not None:
            recipe = self._argument_lists[text] = tuple(
                [(a.group(1), a.group(2), a.start(), a.start(2)) for a in PLAIN_ARGUMENT_RE.finditer(text)]
            )
        return recipe

    def _label_line(
        self, fn: Function, m: re.Match[str], arguments: tuple[tuple[str, str, int, int], ...]
    ) -> Block:
        """A whole LABEL_LINE_RE line whose arguments are plain: as ``parse_block_label``, each
        check in the same order."""
        name = m.group(1)
        start = m.start(1)
        block = self._new_block(fn, name, start)
        block.span = Span(self.source, start, start + len(name))
        if arguments:
            offset = m.start(2)
            add, types, define = block.add_argument, self.simple_types, self.define
            for arg_name, type_name, name_at, type_at in arguments:
                t = types.get(type_name) or self.simple_type(type_name, offset + type_at)
                define(arg_name, add(t), offset + name_at)
        self.pos = m.end()
        return block

    def _new_block(self, fn: Function, name: str, at: int) -> Block:
        """The block a label at ``at`` starts: made now, or made earlier by a branch to it."""
        scope = self.scope
        block = scope.blocks.get(name)
        if block is None:
            block = scope.blocks[name] = Block(sys.intern(name))
        elif block.function is not None:
            raise SILError.at(
                self.point(at),
                f"redefinition of block '{name}'",
                [note(block.span, "previously defined here")],
            )
        block.function = fn
        scope.block_refs.pop(name, None)
        fn.blocks.append(block)
        return block

    def optional_instruction(self) -> Instruction | None:
        """Parse one instruction, or return None at a block label or the end of the body."""
        text = self.text
        m = LINE_HEAD_RE.match(text, self.pos) or INSTRUCTION_HEAD_RE.match(text, self.pos)
        if m is None:
            return self._optional_multi_result_instruction()
        result_name, opname = m.groups()
        op_at, end = m.span(2)
        start = op_at if result_name is None else m.start(1) - 1
        cls = Instruction.registry.get(opname)
        if result_name is None and text.startswith((":", "(", "$", "."), end) and self._at_label(op_at):
            return None
        if cls is None:
            self.error(f"unknown instruction '{opname}'", at=op_at)
        fast = self.fast.tails.get(opname)
        if fast is not None and fast[2] is (result_name is not None):
            rest = fast[0].match(text, end)
            if rest is not None and (fused := fast[1].parse_fast(self, rest, rest.groups())) is not None:
                fused.location = start  # the rest of the line, in one match: as below
                if result_name is not None:
                    self.define(result_name, fused.result, start)
                self.pos = rest.end()
                return fused
        self.pos = end
        names = [] if result_name is None else [(result_name, start)]
        return self._finish_instruction(cls, opname, start, op_at, names)

    def _at_label(self, at: int) -> bool:
        """Whether a block label starts at ``at``: a name followed by ':' (any name), or by '('
        when the name is not an opcode."""
        m = IDENT_RE.match(self.text, at)
        if m is None:
            return False
        follows = self.text[m.end() : m.end() + 1]
        return follows == ":" or (follows == "(" and m.group(1) not in Instruction.registry)

    def _optional_multi_result_instruction(self) -> Instruction | None:
        start = self.token_start()
        text = self.text
        if start >= len(text) or text[start] == "}":
            return None
        names: list[tuple[str, int]] = []
        if text[start] == "%":
            names.append(self.value_name_at())
            self.expect("=", "after the result name")
        elif text[start] == "(":
            self.pos = start + 1
            if not self.accept(")"):
                while True:
                    names.append(self.value_name_at())
                    if not self.accept(","):
                        self.expect(")", "to close the result names")
                        break
            self.expect("=", "after the result names")
        op_at = self.pos
        m = IDENT_RE.match(text, self.pos)
        if m is None:
            self.error(f"expected an instruction, found {self.describe_next()}")
        opname = m.group(1)
        cls = Instruction.registry.get(opname)
        if cls is None:
            self.error(f"unknown instruction '{opname}'", at=op_at)
        self.pos = m.end()
        return self._finish_instruction(cls, opname, start, op_at, names)

    def _finish_instruction(
        self, cls: type[Instruction], opname: str, start: int, op_at: int, names: list[tuple[str, int]]
    ) -> Instruction:
        try:
            inst = cls.parse(self)
        except TypeRuleError as e:
            self.error(str(e), at=op_at)
        inst.location = start
        if names:
            results = inst.results
            if len(names) != len(results):
                self.error(
                    f"'{opname}' produces {len(results)} result(s), but {len(names)} name(s) are given",
                    at=start,
                )
            for (name, at), result in zip(names, results):
                self.define(name, result, at)
        m = END_OF_LINE_RE.match(self.text, self.pos)
        if m is None:
            self.end_of_line()
        else:
            self.pos = m.end()
        return inst

    # --- values and blocks ---------------------------------------------------------------------
    def define(self, name: str, value: Value, at: int) -> None:
        """Bind ``name`` (written at offset ``at``) to ``value``, resolving forward uses."""
        scope = self.scope
        if name in scope.values:
            raise SILError.at(
                self.point(at),
                f"redefinition of value '%{name}'",
                [note(self.point(scope.values_at[name]), "previously defined here")],
            )
        if not name.isdigit():
            value.name = sys.intern(name)  # names recur across functions: share one string
        scope.values[name] = value
        scope.values_at[name] = at
        if scope.forward:
            pending = scope.forward.pop(name, None)
            if pending is not None:
                placeholder, use_at = pending
                if placeholder.type is not value.type and placeholder.type != value.type:
                    raise SILError.at(
                        self.point(use_at),
                        f"'%{name}' is used with type {placeholder.type}, but defined with type {value.type}",
                        [note(self.point(at), "defined here")],
                    )
                placeholder.replace_all_uses_with(value)

    def use(self, name: str, t: Type, at: int) -> Value:
        """The value named ``name`` (written at offset ``at``), which the text says has type ``t``."""
        scope = self.scope
        value = scope.values.get(name)
        if value is not None:
            if value.type is not t and value.type != t:
                raise SILError.at(
                    self.point(at),
                    f"'%{name}' has type {value.type}, but is used here as {t}",
                    [note(self.point(scope.values_at[name]), "defined here")],
                )
            return value
        pending = scope.forward.get(name)
        if pending is None:
            value = Value(t, None if name.isdigit() else name)
            scope.forward[name] = (value, at)
            return value
        if pending[0].type != t:
            raise SILError.at(
                self.point(at),
                f"'%{name}' is used here as {t}, but earlier as {pending[0].type}",
                [note(self.point(pending[1]), "first used here")],
            )
        return pending[0]

    def value_name_at(self) -> tuple[str, int]:
        """``%name`` and the offset where it is written."""
        at = self.pos
        return self.value_name(), at

    def value_names_until(self, close: str) -> list[tuple[str, int]]:
        names: list[tuple[str, int]] = []
        if self.accept(close):
            return names
        while True:
            names.append(self.value_name_at())
            if not self.accept(","):
                self.expect(close)
                return names

    def simple_type(self, name: str, at: int) -> Type:
        """The type spelled by a plain name (cached: most types in a file are a few names)."""
        t = self.simple_types.get(name)
        if t is None:
            t = self.simple_types[name] = self._named_type(name, at)
        return t

    def typed_value(self) -> Value:
        """``%name : $T``."""
        m = TYPED_VALUE_RE.match(self.text, self.pos)
        if m is None:
            name, at = self.value_name_at()
            self.expect(":", f"and the type of '%{name}'")
            self.expect("$")
            return self.use(name, self.memoized_bare_type(), at)
        self.pos = m.end()
        simple = m.group(2)
        t = self.simple_type(simple, m.start(2)) if simple is not None else self.memoized_bare_type()
        return self.use(m.group(1), t, m.start(1) - 1)

    def typed_values_until(self, close: str) -> list[Value]:
        """``%a : $A, %b : $B`` up to and including ``close``."""
        values: list[Value] = []
        if close == ")":
            # Fast path: `%a : $T,` or `%a : $T)` with T a plain name, in one match each.
            text = self.text
            match = TYPED_VALUE_IN_LIST_RE.match
            while True:
                m = match(text, self.pos)
                if m is None:
                    break
                self.pos = m.end()
                values.append(self.use(m.group(1), self.simple_type(m.group(2), m.start(2)), m.start(1) - 1))
                if m.group(3) == ")":
                    return values
        if not values and self.accept(close):
            return values
        while True:
            values.append(self.typed_value())
            if not self.accept(","):
                self.expect(close)
                return values

    def colon_type(self) -> Type:
        """``: $T``."""
        m = COLON_SIMPLE_TYPE_RE.match(self.text, self.pos)
        if m is None:
            self.expect(":")
            return self.type()
        self.pos = m.end()
        return self.simple_type(m.group(1), m.start(1))

    def peek_punct(self, punct: str) -> bool:
        start = self.token_start()
        return self.text.startswith(punct, start)

    def block_ref(self) -> Block:
        at = self.pos
        name = self.ident("a block name")
        block = self.scope.blocks.get(name)
        if block is None:
            block = self.scope.blocks[name] = Block(sys.intern(name))
            self.scope.block_refs[name] = self.span_from(at)
        return block

    def branch_target(self) -> tuple[Block, list[Value]]:
        block = self.block_ref()
        args = self.typed_values_until(")") if self.accept("(") else []
        return block, args

    def member_ref(self, enumelt: bool = False) -> tuple[str, str]:
        """``#Type.member`` (``#Enum.case!enumelt`` when ``enumelt``)."""
        self.expect("#")
        at = self.pos
        path = self.ident("a member reference like '#Point.x'")
        owner, dot, member = path.rpartition(".")
        if not dot:
            self.error(f"expected '#Type.member', found '#{path}'", at=at)
        if enumelt:
            self.expect("!", "after the enum case")
            self.expect_ident("enumelt", "after '!'")
        return owner, member

    def struct_decl(self, t: Type, what: str, at: int) -> StructDecl:
        decl = self.module.struct(t.name) if isinstance(t, NominalType) else None
        if decl is None:
            if isinstance(t, NominalType):
                self.error(f"{what} of '{t}', which is not a struct declared before this function", at=at)
            self.error(f"{what} of a value of non-struct type {t}", at=at)
        return decl

    # --- types -----------------------------------------------------------------------------------
    def type(self) -> Type:
        """``$T``."""
        m = SIMPLE_TYPE_RE.match(self.text, self.pos)
        if m is None:
            self.error(f"expected a type like '$Float', found {self.describe_next()}")
        self.pos = m.end()
        simple = m.group(1)
        if simple is None:
            return self.memoized_bare_type()
        return self.simple_type(simple, m.start(1))

    def memoized_bare_type(self) -> Type:
        """``bare_type``, remembering what each spelling parsed to.

        Function types recur verbatim (a function's type at every ``function_ref`` and
        ``apply``); a spelling seen before is recognized by its text, provided the type does not
        continue past it, and yields the same (interned) type object.
        """
        start = self.token_start()
        text = self.text
        key = text[start : start + _MEMO_KEY_LENGTH]
        cached = self._type_memo.get(key)
        if cached is not None:
            spelling, t = cached
            end = start + len(spelling)
            if text.startswith(spelling, start) and CONTINUES_TYPE_RE.match(text, end) is None:
                self.pos = end
                return t
        t = self.bare_type()
        t = self._interned.setdefault(t, t)
        spelling = text[start : self.pos]
        self._type_memo[key] = (spelling, t)
        self.spelled_types[spelling] = t
        return t

    def _named_type(self, name: str, at: int) -> Type:
        if name == "Tensor":
            self.error("Tensor needs an element type: 'Tensor<Float>' or 'Tensor<Double>'", at=at)
        return NominalType(name)

    def bare_type(self) -> Type:
        """A type without the leading ``$``."""
        self._type_depth += 1
        try:
            if self._type_depth > _MAX_TYPE_DEPTH:
                self.error(f"type is nested more than {_MAX_TYPE_DEPTH} levels deep")
            return self._bare_type()
        finally:
            self._type_depth -= 1

    def _bare_type(self) -> Type:
        at = self.pos
        if self.accept("@"):
            return self._attributed_function_type(at)
        if self.accept("("):
            return self._parenthesized_type(at)
        name = self.ident("a type")
        if name == "Tensor":
            self.expect("<", "after 'Tensor'")
            element_at = self.pos
            element = self.bare_type()
            if not isinstance(element, ScalarType) or not element.is_float:
                self.error(f"Tensor elements must be Float or Double, not {element}", at=element_at)
            self.expect(">", "to close 'Tensor<…'")
            return TensorType(element)
        named = NAMED_TYPES.get(name)
        return named if named is not None else NominalType(name)

    def _attributed_function_type(self, at: int) -> FunctionType:
        differentiable = None
        word_at = self.pos
        word = self.ident("a type attribute")
        if word == "differentiable":
            self.expect("(")
            kind_at = self.pos
            differentiable = self.ident("'reverse'")
            if differentiable != "reverse":
                self.error(f"expected 'reverse', found '{differentiable}'", at=kind_at)
            self.expect(")")
            self.expect("@", "and a function convention after '@differentiable(reverse)'")
            word_at = self.pos
            word = self.ident("a function convention")
        if word == "convention":
            self.expect("(")
            conv_at = self.pos
            if self.ident("'thin'") != "thin":
                self.error("expected 'thin' (closures are written '@callee_guaranteed')", at=conv_at)
            self.expect(")")
            convention: Convention = "thin"
        elif word == "callee_guaranteed":
            convention = "callee_guaranteed"
        else:
            self.error(f"expected '@convention(thin)' or '@callee_guaranteed', found '@{word}'", at=word_at)
        self.expect("(", "to begin the parameter list")
        params: list[Type] = []
        no_derivative: list[bool] = []
        if not self.accept(")"):
            while True:
                m = NO_DERIVATIVE_RE.match(self.text, self.pos)
                nd = m is not None
                if m is not None:
                    self.pos = m.end()
                params.append(self.bare_type())
                no_derivative.append(nd)
                if not self.accept(","):
                    self.expect(")", "to close the parameter list")
                    break
        self.expect("->", "after the parameter list")
        result = self.bare_type()
        if differentiable is None and any(no_derivative):
            self.error("@noDerivative is only allowed in a @differentiable function type", at=at)
        return FunctionType(tuple(params), result, convention, differentiable, tuple(no_derivative))

    def _parenthesized_type(self, at: int) -> Type:
        elements: list[Type] = []
        labels: list[str | None] = []
        if not self.accept(")"):
            while True:
                label = None
                m = IDENT_RE.match(self.text, self.pos)
                if m is not None and self.text.startswith(":", self._skip(m.end())):
                    label = m.group(1)
                    self.pos = m.end()
                    self.expect(":")
                labels.append(label)
                elements.append(self.bare_type())
                if not self.accept(","):
                    self.expect(")", "to close the tuple type")
                    break
        if ARROW_ON_LINE_RE.match(self.text, self.pos):
            self.error("a function type needs '@convention(thin)' or '@callee_guaranteed' before it", at=at)
        if len(elements) == 1 and labels[0] is None:
            return elements[0]
        return TupleType(tuple(elements), tuple(labels))

    def _skip(self, pos: int) -> int:
        while pos < len(self.text) and self.text[pos] in " \t":
            pos += 1
        return pos


def parse(text: str, filename: str = "<input>") -> Module:
    """Parse SIL text into a module; raises ``SILError`` at the first error."""
    return Parser(SourceFile(filename, text)).parse_module()


def parse_source(source: SourceFile) -> Module:
    return Parser(source).parse_module()
