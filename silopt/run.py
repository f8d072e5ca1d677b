"""``silopt --run @f --args …``: run a function of the module and give its result as text."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from accel import Backend
from analysis.call_graph import CallGraph
from interp import Program
from interp.faults import RunError
from interp.literals import ArgumentSyntaxError, format_value, parse_argument
from sil.diagnostics import Diagnostic, quoted
from sil.instructions import DifferentiableFunctionExtractInst, DifferentiableFunctionInst, GradientInst
from sil.ir import Module
from sil.passes import PassManager, registered_passes


def run_function(
    module: Module,
    name: str,
    arguments: Sequence[str],
    backend: Backend,
    max_steps: int | None,
    max_depth: int,
    source_name: str | None = None,
) -> str:
    """The result of ``@name`` on the command-line ``arguments``, in literal syntax, one line.

    Only the functions ``@name`` can reach are differentiated and lowered, so a derivative request
    that the run never reaches cannot stop it. Raises RunError for a missing function, arguments
    that do not fit, or a fault.
    """
    name = name.removeprefix("@")
    fn = module.functions.get(name)
    if fn is None:
        raise RunError([Diagnostic("error", _no_such_function(module, name, source_name))])
    params = fn.type.params
    if len(arguments) != len(params):
        listed = ", ".join(str(p) for p in params) or "none"
        takes = f"'@{name}' takes {_count(len(params), 'argument')} ({listed})"
        raise RunError([Diagnostic("error", f"{takes}, but --args gives {len(arguments)}", fn.span)])
    values = []
    for i, (text, param) in enumerate(zip(arguments, params)):
        try:
            values.append(parse_argument(text, param))
        except ArgumentSyntaxError as e:
            raise RunError([Diagnostic("error", f"argument {i} of '@{name}': {e}", fn.span)]) from None
    reached = reached_from(module, name)
    lower_derivatives(reached)
    program = Program(reached, backend, max_steps=max_steps, max_depth=max_depth)
    result = program.run(name, *values)
    return format_value(result, fn.type.result, module) + "\n"


_SUGGEST_AMONG = 10_000  # functions: beyond, a suggestion would cost more than it helps


def _no_such_function(module: Module, name: str, source_name: str | None) -> str:
    where = "the module" if source_name is None else quoted(source_name)
    message = f"{where} has no function {quoted('@' + name)} to run (--run)"
    close = (
        difflib.get_close_matches(name, module.functions, n=1)
        if len(module.functions) <= _SUGGEST_AMONG
        else []
    )
    return message + (f"; did you mean '@{close[0]}'?" if close else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def reached_from(module: Module, name: str) -> Module:
    """The part of ``module`` a run of ``@name`` can reach (the call graph's functions reachable
    from it, and every type): it shares the functions, so lowering it lowers them in place."""
    reached = CallGraph(module).reachable_from(name)
    return Module(module.types, {n: module.functions[n] for n in reached}, module.stage)


def lower_derivatives(module: Module) -> None:
    """What Swift's mandatory pipeline does before a module runs: differentiate, and lower each
    ``gradient`` and ``differentiable_function`` (SIL-SPEC §8). A module without one is left alone."""
    lowered = (GradientInst, DifferentiableFunctionInst, DifferentiableFunctionExtractInst)
    if not any(isinstance(inst, lowered) for fn in module.functions.values() for inst in fn.instructions()):
        return
    passes = registered_passes()
    PassManager([passes["differentiation"](), passes["lower-gradient"]()]).run(module)
