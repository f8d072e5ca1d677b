"""Dead-function elimination: the functions no root reaches are erased, then the synthesized
types nothing left mentions.

Functions carry no linkage in this IR, so the roots are the functions a user wrote: every one whose
name is not a synthesized one (``AD__…``, SIL-SPEC §6). What a pass synthesized is the module's own
business, as Swift's private and shared functions are: once no root refers to it (through a
``function_ref`` or a derivative named in an attribute: ``sil.references``), nothing can run it.
The same holds for the records and trace enums the differentiation passes declare (``_AD__…``):
once no remaining function's signature, block argument or instruction, and no remaining
declaration, mentions one, it goes. A type a user declared stays, used or not.
"""

from __future__ import annotations

from collections.abc import Iterator

from sil.ir import TANGENT_SUFFIX, EnumDecl, Function, Module
from sil.passes import Pass, PassContext, register_pass
from sil.references import referenced_functions
from sil.types import FunctionType, NominalType, TupleType, Type

SYNTHESIZED_PREFIX = "AD__"
"""The prefix of every function name the differentiation passes make (differentiation.naming)."""
SYNTHESIZED_TYPE_PREFIX = "_AD__"
"""The prefix of every struct and enum the differentiation passes declare (differentiation.naming)."""


def is_root(name: str) -> bool:
    """Whether the function ``name`` is kept whatever refers to it: one a user wrote."""
    return not name.startswith(SYNTHESIZED_PREFIX)


@register_pass
class DeadFunctionElimination(Pass):
    """Erases synthesized functions that no function a user wrote can reach."""

    name = "dead-function-elim"
    description = (
        "Erase the synthesized (AD__) functions no user-written function reaches, then the "
        "synthesized (_AD__) types nothing left mentions"
    )

    def run(self, module: Module, ctx: PassContext) -> None:
        erase_dead_functions(module)
        erase_dead_types(module)


def erase_dead_functions(module: Module) -> list[str]:
    """Erase the functions no root reaches; their names, in module order."""
    live = {name for name in module.functions if is_root(name)}
    worklist = list(live)
    while worklist:  # one walk from all the roots at once: linear in the graph
        for callee in referenced_functions(module.functions[worklist.pop()], module):
            if callee not in live:
                live.add(callee)
                worklist.append(callee)
    dead = [name for name in module.functions if name not in live]
    for name in dead:
        del module.functions[name]
    return dead


def erase_dead_types(module: Module) -> list[str]:
    """Erase the synthesized declarations that no function and no declaration kept mentions;
    their names, in module order."""
    live = {name for name in module.types if not name.startswith(SYNTHESIZED_TYPE_PREFIX)}
    seen: set[Type] = set()
    worklist = list(live)
    for fn in module.functions.values():
        for t in _function_types(fn):
            _mark(t, seen, live, worklist)
    while worklist:  # what a kept declaration mentions is kept: one walk over them
        decl = module.types.get(worklist.pop())
        if decl is None:
            continue
        members = (
            [c.payload for c in decl.cases] if isinstance(decl, EnumDecl) else [f.type for f in decl.fields]
        )
        for member in members:
            if member is not None:
                _mark(member, seen, live, worklist)
    dead = [name for name in module.types if name not in live]
    for name in dead:
        del module.types[name]
    return dead


def _function_types(fn: Function) -> Iterator[Type]:
    """Every type ``fn`` mentions: its signature, its block arguments, its instructions' results
    (a type an instruction names, as ``struct`` and ``enum`` do, is its result's type; what
    ``struct_extract`` and ``switch_enum`` name is their operand's, a result or argument too)."""
    yield fn.type
    for block in fn.blocks:
        for arg in block.args:
            yield arg.type
        for inst in block.instructions:
            for result in inst.results:
                yield result.type


def _mark(t: Type, seen: set[Type], live: set[str], worklist: list[str]) -> None:
    """Keep the declarations ``t`` names (within tuples and function types too)."""
    pending = [t]
    while pending:
        t = pending.pop()
        if t in seen:
            continue
        seen.add(t)
        if isinstance(t, NominalType):
            name = t.name.removesuffix(TANGENT_SUFFIX)  # a tangent struct is derived from its base
            if name not in live:
                live.add(name)
                worklist.append(name)
        elif isinstance(t, TupleType):
            pending += t.elements
        elif isinstance(t, FunctionType):
            pending += [*t.params, t.result]
