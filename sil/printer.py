"""The canonical printer: the same module always prints to the same text.

Values keep the names the input gave them unless those are numbers; every other value is numbered
in order of definition (``%0``, ``%1``, …). Blocks named ``bbN`` in the input, and unnamed ones,
are numbered by position.
Type declarations come first, then functions, each in module order. An instruction's text after
its opcode is its own ``format`` (declared on ``sil.ir.Instruction``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence

from sil.derivative_types import several_results
from sil.ir import (
    Block,
    DifferentiableAttr,
    EnumDecl,
    FlagAttr,
    Function,
    FunctionAttr,
    LegacyDifferentiableAttr,
    Module,
    StructDecl,
    Value,
)
from sil.types import FunctionType

_PLAIN_GLOBAL = re.compile(r"[A-Za-z_$][\w$.]*\Z")
_NUMBERED = [f"%{i}" for i in range(1024)]  # the common value names, made once


@functools.lru_cache(maxsize=4096)
def format_global(name: str) -> str:
    """``@name``, quoted when the name is not a plain identifier (remembered: a module names each
    function at its definition and at every reference)."""
    if _PLAIN_GLOBAL.match(name):
        return "@" + name
    return '@"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Printer:
    """Prints a module; instructions format their operands through ``value``, ``typed`` and
    ``block``."""

    def __init__(self, annotations: Mapping[Value | Function, str] | None = None) -> None:
        self.names: dict[Value, str] = {}
        self.block_names: dict[Block, str] = {}
        self.annotations = annotations or {}

    # --- what instructions call --------------------------------------------------------------
    def value(self, v: Value) -> str:
        name = self.names.get(v)
        return name if name is not None else "%<undefined>"

    def typed(self, v: Value) -> str:
        return f"{self.value(v)} : ${v.type.text}"

    def value_list(self, values: Iterable[Value]) -> str:
        """``%a, %b``."""
        names = self.names
        return ", ".join([names.get(v, "%<undefined>") for v in values])

    def typed_list(self, values: Sequence[Value]) -> str:
        """``%a : $A, %b : $B``."""
        names = self.names
        if len(values) == 1:  # the common lengths, without a comprehension
            (a,) = values
            return f"{names.get(a, '%<undefined>')} : ${a.type.text}"
        if len(values) == 2:
            a, b = values
            return (
                f"{names.get(a, '%<undefined>')} : ${a.type.text}, "
                f"{names.get(b, '%<undefined>')} : ${b.type.text}"
            )
        return ", ".join([f"{names.get(v, '%<undefined>')} : ${v.type.text}" for v in values])

    def block(self, b: Block) -> str:
        return self.block_names.get(b, "<undefined block>")

    def branch_target(self, b: Block, args: list[Value]) -> str:
        if not args:
            return self.block(b)
        return f"{self.block(b)}({self.typed_list(args)})"

    global_name = staticmethod(format_global)

    # --- module ------------------------------------------------------------------------------
    def print_module(self, module: Module) -> str:
        parts: list[str] = []
        if module.stage is not None:
            parts.append(f"sil_stage {module.stage}\n")
        for decl in module.types.values():
            parts.append(self.print_type_decl(decl))
        for fn in module.functions.values():
            parts.append(self.print_function(fn))
        return "\n".join(parts)

    def print_type_decl(self, decl: StructDecl | EnumDecl) -> str:
        if isinstance(decl, StructDecl):
            conformance = " : Differentiable" if decl.differentiable else ""
            lines = [f"struct {decl.name}{conformance} {{"]
            for f in decl.fields:
                prefix = "@noDerivative " if f.no_derivative else ""
                lines.append(f"  {prefix}var {f.name}: {f.type}")
        else:
            conformance = " : Differentiable" if decl.differentiable else ""
            lines = [f"enum {decl.name}{conformance} {{"]
            for c in decl.cases:
                payload = f"({c.payload})" if c.payload is not None else ""
                lines.append(f"  case {c.name}{payload}")
        lines.append("}\n")
        return "\n".join(lines)

    def print_function(self, fn: Function) -> str:
        attrs = (
            "".join([f"[{format_attribute(a, fn.type)}] " for a in fn.attributes]) if fn.attributes else ""
        )
        header = f"sil {attrs}{format_global(fn.name)} : ${fn.type.text}"
        if fn.is_declaration:
            return header + "\n"
        self._name_values(fn)
        if self.annotations:
            return self._print_annotated(fn, header)
        lines = [header + " {"]
        append = lines.append
        names = self.names
        for block in fn.blocks:
            label = self.block_names[block]
            if block.args:
                append(f"{label}({self.typed_list(block.args)}):")
            else:
                append(f"{label}:")
            for inst in block.instructions:
                body = inst.format(self)
                result = inst.single_result
                if result is not None and body:  # the common case, in one f-string
                    append(f"  {names[result]} = {inst.opname} {body}")
                    continue
                text = f"{inst.opname} {body}" if body else inst.opname
                if result is not None:
                    append(f"  {names[result]} = {text}")
                elif results := inst.results:
                    append(f"  ({', '.join([names[r] for r in results])}) = {text}")
                else:
                    append("  " + text)
        append("}\n")
        return "\n".join(lines)

    def _print_annotated(self, fn: Function, header: str) -> str:
        """The function with each annotation as a comment ending the line that defines its value
        (for a function, its header; for block arguments, the label)."""
        notes = self.annotations
        names = self.names

        def comment(values: Iterable[Value], single: bool) -> str:
            found = [(v, notes[v]) for v in values if v in notes]
            if not found:
                return ""
            if single:
                return "  // " + found[0][1]
            return "  // " + ", ".join(f"{names[v]} {note}" for v, note in found)

        top = f"  // {notes[fn]}" if fn in notes else ""
        lines = [f"{header} {{{top}"]
        for block in fn.blocks:
            label = self.block_names[block]
            args = f"({self.typed_list(block.args)})" if block.args else ""
            lines.append(f"{label}{args}:{comment(block.args, False)}")
            for inst in block.instructions:
                body = inst.format(self)
                text = f"{inst.opname} {body}" if body else inst.opname
                results = inst.results
                if len(results) == 1:
                    text = f"{names[results[0]]} = {text}"
                elif results:
                    text = f"({', '.join([names[r] for r in results])}) = {text}"
                lines.append(f"  {text}{comment(results, len(results) == 1)}")
        lines.append("}\n")
        return "\n".join(lines)

    def _name_values(self, fn: Function) -> None:
        """Choose the printed names of a function's blocks and values."""
        self.block_names = blocks = {}
        used: set[str] = set()
        suffixes: dict[str, int] = {}
        for index, b in enumerate(fn.blocks):
            name = b.name
            if name is None or (name[:2] == "bb" and name[2:].isdecimal()):  # renumbered
                name = f"bb{index}"
            if name in used:
                name = _unique(name, used, suffixes)
            used.add(name)
            blocks[b] = name
        self.names = names = {}
        taken: set[str] = set()
        suffixes = {}
        counter = 0
        for b in fn.blocks:
            values: list[Value] = list(b.args)
            for inst in b.instructions:
                values.extend(inst.results)
            for v in values:
                name = v.name
                if name is None or name.isdigit():
                    names[v] = _NUMBERED[counter] if counter < len(_NUMBERED) else f"%{counter}"
                    counter += 1
                else:
                    if name in taken:
                        name = _unique(name, taken, suffixes)
                    taken.add(name)
                    names[v] = "%" + name


def _unique(name: str, taken: set[str], suffixes: dict[str, int]) -> str:
    """``name_N`` for the smallest N not taken. ``taken`` only grows, so the search for a name
    starts past the suffix it found last time (``suffixes``): many values named alike (a
    derivative's ``%pred`` in each block) cost one test each, not one per earlier value."""
    suffix = suffixes.get(name, 1)
    while f"{name}_{suffix}" in taken:
        suffix += 1
    suffixes[name] = suffix + 1
    return f"{name}_{suffix}"


def format_attribute(attr: FunctionAttr, fn_type: FunctionType) -> str:
    """The text of an attribute of a function of type ``fn_type``. ``source`` left out means
    every result of differentiable type; of a function with one result that is ``source 0``,
    which is written out, so that the text names the result."""
    if isinstance(attr, FlagAttr):
        return attr.name
    keyword = "differentiable" if isinstance(attr, DifferentiableAttr) else "reverse_differentiable"
    parts = [keyword]
    if isinstance(attr, LegacyDifferentiableAttr):
        parts.append(f"source {attr.source}")
    elif attr.source is not None:
        parts.append("source " + ", ".join(map(str, attr.source)))
    elif not several_results(fn_type.result):
        parts.append("source 0")
    if attr.wrt is not None:
        parts.append("wrt " + ", ".join(map(str, attr.wrt)))
    if isinstance(attr, DifferentiableAttr):
        named = [("jvp", attr.jvp), ("vjp", attr.vjp)]
    else:
        assert isinstance(attr, LegacyDifferentiableAttr)
        named = [("primal", attr.primal), ("adjoint", attr.adjoint)]
    parts.extend(f"{key} {format_global(name)}" for key, name in named if name is not None)
    if isinstance(attr, LegacyDifferentiableAttr) and attr.seed_first:
        parts.append("seed_first")
    return " ".join(parts)


def print_module(module: Module, annotations: Mapping[Value | Function, str] | None = None) -> str:
    """The canonical text of a module; ``annotations`` (of values and functions, from an analysis
    such as ``-print-activity``) become comments at the end of the lines that define them."""
    return Printer(annotations).print_module(module)
