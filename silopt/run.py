"""``silopt --run @f --args …``: run a function of the module and give its result as text."""

from __future__ import annotations

from collections.abc import Sequence

from accel import Backend
from interp import Program
from interp.faults import RunError
from interp.literals import ArgumentSyntaxError, format_value, parse_argument
from sil.diagnostics import Diagnostic
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
) -> str:
    """The result of ``@name`` on the command-line ``arguments``, in literal syntax, one line.

    Raises RunError for a missing function, arguments that do not fit, or a fault.
    """
    name = name.removeprefix("@")
    fn = module.functions.get(name)
    if fn is None:
        raise RunError([Diagnostic("error", f"no function '@{name}' to run in the module")])
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
    lower_derivatives(module)
    program = Program(module, backend, max_steps=max_steps, max_depth=max_depth)
    result = program.run(name, *values)
    return format_value(result, fn.type.result, module) + "\n"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def lower_derivatives(module: Module) -> None:
    """What Swift's mandatory pipeline does before a module runs: differentiate, and lower each
    ``gradient`` and ``differentiable_function`` (SIL-SPEC §8). A module without one is left alone."""
    lowered = (GradientInst, DifferentiableFunctionInst, DifferentiableFunctionExtractInst)
    if not any(isinstance(inst, lowered) for fn in module.functions.values() for inst in fn.instructions()):
        return
    passes = registered_passes()
    PassManager([passes["differentiation"](), passes["lower-gradient"]()]).run(module)
