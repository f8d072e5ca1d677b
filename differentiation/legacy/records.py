"""Rewriting what refers to a function or reads a record, and the contract of a rewrite (refused
whole or done whole), shared by the migration passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sil.builder import Builder
from sil.diagnostics import Diagnostic, SILError
from sil.instructions import DestructureStructInst, FunctionRefInst, StructExtractInst
from sil.ir import Module, StructDecl, Value

P = TypeVar("P")


def rewrite_unless_refused(plans: list[P], problems: list[Diagnostic], rewrite: Callable[[P], None]) -> None:
    """Carry out ``plans``, each found and checked before any change, unless one problem was
    found: then report them all and change nothing."""
    if problems:
        raise SILError(problems)
    for plan in plans:
        rewrite(plan)


def references_to(module: Module, name: str) -> list[FunctionRefInst]:
    """Every ``function_ref`` of ``@name`` in the module."""
    return [
        inst
        for fn in module.functions.values()
        for inst in fn.instructions()
        if isinstance(inst, FunctionRefInst) and inst.function_name == name
    ]


def reread_record(module: Module, record: StructDecl) -> dict[Value, Value]:
    """Rebuild every instruction that reads a field of ``record``, whose field types changed;
    returns each old value read with the new one."""
    replaced: dict[Value, Value] = {}
    for fn in module.functions.values():
        for inst in list(fn.instructions()):
            if isinstance(inst, DestructureStructInst) and inst.operands[0].type == record.type:
                parts = Builder.before(inst, module).destructure_struct(inst.operands[0])
                for old, new in zip(inst.results, parts):
                    new.name = old.name
                    replaced[old] = new
                    old.replace_all_uses_with(new)
                inst.erase()
            elif isinstance(inst, StructExtractInst) and inst.operands[0].type == record.type:
                new = Builder.before(inst, module).struct_extract(inst.operands[0], inst.field)
                new.name = inst.result.name
                replaced[inst.result] = new
                inst.result.replace_all_uses_with(new)
                inst.erase()
    return replaced
