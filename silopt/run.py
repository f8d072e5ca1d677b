"""``silopt --run @f --args …``: run a function of the module and give its result as text.

What the function reaches is the call graph's (``analysis.call_graph``): its derivative requests
are lowered, in the module, before the run; requests it cannot reach are set aside, so that one
that cannot be differentiated does not stop it. The run itself sees only the functions reached.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from accel import Backend
from analysis.call_graph import CallGraph
from interp import Program
from interp.faults import RunError
from interp.literals import ArgumentSyntaxError, format_value, parse_argument
from sil.diagnostics import Diagnostic, SILError, quoted
from sil.instructions import DifferentiableFunctionExtractInst, DifferentiableFunctionInst, GradientInst
from sil.ir import DifferentiableAttr, Function, Module
from sil.passes import PassManager, registered_passes


def run_function(
    module: Module,
    name: str,
    arguments: Sequence[str],
    backend: Backend,
    max_steps: int | None,
    max_depth: int,
    source_name: str | None = None,
    trap_nan: bool = False,
) -> str:
    """The result of ``@name`` on the command-line ``arguments``, in literal syntax, one line.

    The derivative requests ``@name`` reaches are lowered in ``module`` first (``lower_reached``).
    Raises RunError for a missing function, arguments that do not fit, or a fault (with
    ``trap_nan``, also the first NaN made from operands that are not NaN); SILError for a request
    that cannot be differentiated.
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
    lower_reached(module, name)
    program = Program(
        reached_from(module, name), backend, max_steps=max_steps, max_depth=max_depth, trap_nan=trap_nan
    )
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
    from it, and every type), sharing its functions."""
    reached = CallGraph(module).reachable_from(name)
    return Module(module.types, {n: module.functions[n] for n in reached}, module.stage)


def lower_reached(module: Module, name: str) -> None:
    """Lower the derivative requests a run of ``@name`` reaches (``lower_derivatives``), in
    ``module``, which gets every function the passes synthesize for them.

    The passes run on ``module`` less the functions that hold requests the run cannot reach, so
    that those requests stop nothing; every other function stays in sight, for the passes find a
    derivative an earlier ``-differentiation`` synthesized by its name, not through a reference.
    ``module`` is whole afterwards, whether the passes succeed or one reports an error (leaving
    the part as the passes before it left it): it gets what they add to the part (its types are
    the part's), so that no function of it names a function it lacks."""
    if not any(_holds_request(fn) for fn in module.functions.values()):
        return
    reached = set(CallGraph(module).reachable_from(name))
    aside = {n for n, fn in module.functions.items() if n not in reached and _holds_request(fn)}
    if not aside:
        lower_derivatives(module)
        return
    part = Module(module.types, {n: f for n, f in module.functions.items() if n not in aside}, module.stage)
    try:
        lower_derivatives(part)
    finally:
        _adopt(module, part)


def _adopt(module: Module, part: Module) -> None:
    """Add to ``module`` the functions the passes added to ``part``, in the order they were added."""
    for n, fn in part.functions.items():
        existing = module.functions.get(n)
        if existing is None:
            module.add_function(fn)
        elif existing is not fn:  # a function set aside, named as the passes name what they make
            message = (
                f"'@{n}' is defined, and lowering what --run reaches synthesizes a function of that name"
            )
            raise SILError.at(existing.span, message)


_REQUESTS = (GradientInst, DifferentiableFunctionInst, DifferentiableFunctionExtractInst)


def _holds_request(fn: Function) -> bool:
    """Whether ``fn`` asks the differentiation passes for something: a ``gradient`` or a
    ``differentiable_function`` (or an extract of one) in its body, or a ``[differentiable]``
    attribute without its derivatives."""
    return any(
        isinstance(attr, DifferentiableAttr) and (attr.jvp is None or attr.vjp is None)
        for attr in fn.attributes
    ) or any(isinstance(inst, _REQUESTS) for inst in fn.instructions())


def lower_derivatives(module: Module) -> None:
    """What Swift's mandatory pipeline does before a module runs: differentiate, and lower each
    ``gradient`` and ``differentiable_function`` (SIL-SPEC §8). A module without one is left alone."""
    if not any(isinstance(inst, _REQUESTS) for fn in module.functions.values() for inst in fn.instructions()):
        return
    passes = registered_passes()
    PassManager([passes["differentiation"](), passes["lower-gradient"]()]).run(module)
