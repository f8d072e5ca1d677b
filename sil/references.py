"""Which functions a function refers to: the edges of the call graph (``analysis.call_graph``) and
what keeps a function alive (``-dead-function-elim``)."""

from __future__ import annotations

from collections.abc import Iterator

from sil.instructions import FunctionRefInst
from sil.ir import DifferentiableAttr, Function, LegacyDifferentiableAttr, Module


def referenced_functions(fn: Function, module: Module) -> Iterator[str]:
    """The functions of ``module`` that ``fn`` names: by ``function_ref``, and as the derivatives
    its attributes register (repeats included)."""
    for inst in fn.instructions():
        if isinstance(inst, FunctionRefInst) and inst.function_name in module.functions:
            yield inst.function_name
    for attr in fn.attributes:
        if isinstance(attr, DifferentiableAttr):
            named: tuple[str | None, ...] = (attr.jvp, attr.vjp)
        elif isinstance(attr, LegacyDifferentiableAttr):
            named = (attr.primal, attr.adjoint)
        else:
            continue
        yield from (name for name in named if name is not None and name in module.functions)
