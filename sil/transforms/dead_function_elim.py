"""Dead-function elimination: the functions no root reaches are erased.

Functions carry no linkage in this IR, so the roots are the functions a user wrote: every one whose
name is not a synthesized one (``AD__…``, SIL-SPEC §6). What a pass synthesized is the module's own
business, as Swift's private and shared functions are: once no root refers to it (through a
``function_ref`` or a derivative named in an attribute: ``sil.references``), nothing can run it.
"""

from __future__ import annotations

from sil.ir import Module
from sil.passes import Pass, PassContext, register_pass
from sil.references import referenced_functions

SYNTHESIZED_PREFIX = "AD__"
"""The prefix of every function name the differentiation passes make (differentiation.naming)."""


def is_root(name: str) -> bool:
    """Whether the function ``name`` is kept whatever refers to it: one a user wrote."""
    return not name.startswith(SYNTHESIZED_PREFIX)


@register_pass
class DeadFunctionElimination(Pass):
    """Erases synthesized functions that no function a user wrote can reach."""

    name = "dead-function-elim"
    description = "Erase the synthesized (AD__) functions no user-written function reaches"

    def run(self, module: Module, ctx: PassContext) -> None:
        erase_dead_functions(module)


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
