"""``--emit-dot``, ``--view`` and ``--explain-activity``: what silopt prints instead of the module
when asked for a picture or an explanation (the pictures themselves are ``analysis.dot``'s, the
chains ``analysis.explain``'s)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess

from analysis.activity import ActivityInfo, Config, analyze_activity, differentiation_requests
from analysis.explain import (
    ActivityExplainer,
    Chain,
    instruction_text,
    named_values,
    parameter_index,
    value_span,
)
from sil.diagnostics import Diagnostic, SILError, Span
from sil.ir import BlockArgument, Function, Instruction, Module, Result, Value
from sil.printer import Printer, format_global
from silopt.arguments import did_you_mean
from silopt.output import Console

DOT_KINDS = ("cfg", "activity", "callgraph")
VIEW_TIMEOUT_S = 60
GET_GRAPHVIZ = (
    "--view needs Graphviz's 'dot', which is not on PATH: install Graphviz "
    "('apt install graphviz', 'brew install graphviz' or 'conda install graphviz'), "
    "or render the DOT yourself"
)


def output(module: Module, args: argparse.Namespace) -> str | None:
    """What silopt prints instead of the module (None: the module itself)."""
    if args.emit_dot is not None:
        return emit_dot(module, args.emit_dot, args.function)
    if args.explain_activity is not None:
        return "".join(explain_activity(module, spec) for spec in args.explain_activity)
    return None


def _function(module: Module, name: str) -> Function:
    bare = name.removeprefix("@").strip('"')
    fn = module.functions.get(bare)
    if fn is None:
        hint = did_you_mean(format_global(bare), [format_global(n) for n in module.functions])
        raise SILError([Diagnostic("error", f"no function '{format_global(bare)}' in the module{hint}")])
    return fn


def emit_dot(module: Module, kind: str, function: str | None) -> str:
    """The DOT of ``kind`` for ``function`` (by default every function it applies to)."""
    from analysis.dot import activity_dot, callgraph_dot, cfg_dot

    chosen = None if function is None else _function(module, function)
    if kind == "callgraph":
        return callgraph_dot(module, None if chosen is None else [chosen.name])
    if kind == "cfg":
        if chosen is not None and chosen.is_declaration:
            raise SILError.at(chosen.span, f"'@{chosen.name}' has no body to draw")
        return cfg_dot([chosen] if chosen else [f for f in module.functions.values() if f.blocks])
    return activity_dot(_requested_activity(module, chosen))


def covered_configs(module: Module) -> dict[str, list[Config]]:
    """Each function something asks to differentiate, with each configuration: the requests, as
    ``-print-activity`` finds them, then the functions they differentiate through calls, as the
    differentiation diagnostics walk them."""
    from differentiation.diagnostics import DifferentiabilityChecker

    configs = differentiation_requests(module)
    checker = DifferentiabilityChecker(module)
    checker.check_module()
    for fn, config in checker.checked:
        found = configs.setdefault(fn.name, [])
        if config not in found:
            found.append(config)
    return configs


def _requested_activity(module: Module, chosen: Function | None) -> list[ActivityInfo]:
    """The activity of each function something asks to differentiate, for each configuration."""
    requests = covered_configs(module)
    if chosen is not None and chosen.name not in requests:
        raise SILError.at(chosen.span, f"nothing asks to differentiate '@{chosen.name}': it has no activity")
    names = [chosen.name] if chosen is not None else list(requests)
    return [analyze_activity(module, module.functions[n], config) for n in names for config in requests[n]]


def svg_path(args: argparse.Namespace) -> str:
    """Where ``--view`` writes: beside ``-o OUT`` (its extension replaced by ``.svg``), else
    ``NAME.KIND.svg`` in the working directory, NAME the input's file name less ``.sil``."""
    output = str(args.output or "-")
    if output != "-":
        path = os.path.splitext(output)[0] + ".svg"
        return output + ".svg" if path == output else path
    source = str(args.input or "-")
    name = "stdin" if source == "-" else os.path.basename(source).removesuffix(".sil")
    return f"{name}.{args.emit_dot}.svg"


def view(dot_text: str, path: str) -> str:
    """Render ``dot_text`` to the SVG file ``path`` with Graphviz; what to report (on standard
    error) when done. Raises ``ViewError`` when it cannot."""
    dot = shutil.which("dot")
    if dot is None:
        raise ViewError(GET_GRAPHVIZ)
    try:
        done = subprocess.run(
            [dot, "-Tsvg", "-o", path],
            input=dot_text,
            capture_output=True,
            text=True,
            timeout=VIEW_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ViewError(f"'dot' did not finish in {VIEW_TIMEOUT_S} s") from None
    except OSError as e:
        raise ViewError(f"cannot run '{dot}': {e.strerror or e}") from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0]
        raise ViewError(f"'dot' could not render the picture: {why}")
    return f"silopt: wrote {path}\n"


class ViewError(Exception):
    """``--view`` could not render: ``silopt: error: …``, exit status 1."""


def finish_view(args: argparse.Namespace, dot_text: str, console: Console) -> int:
    """``--view``, once the DOT is written: render it, and say where (or why not)."""
    try:
        console.stderr.write(view(dot_text, svg_path(args)))
    except ViewError as e:
        return console.error(str(e))
    return 0


def explain_activity(module: Module, spec: str) -> str:
    """Why the value ``spec`` (``%v``, or ``@f:%v``) is or is not active, for each request that
    covers its function."""
    requests = covered_configs(module)
    fn_name, _, value_name = spec.rpartition(":")
    out: list[str] = []
    for fn in _explained_functions(module, requests, fn_name, value_name):
        printer, values = named_values(fn)
        value = values.get(value_name)
        if value is None:
            hint = did_you_mean(value_name, list(values))
            raise SILError.at(fn.span, f"no value '{value_name}' in '@{fn.name}'{hint}")
        for config in requests[fn.name]:
            out += _explain(printer, ActivityExplainer(analyze_activity(module, fn, config)), value)
    return "\n".join(out) + "\n"


def _explained_functions(
    module: Module, requests: dict[str, list[Config]], fn_name: str, value_name: str
) -> list[Function]:
    """The function ``fn_name`` names; without one, every function something asks to
    differentiate that defines ``value_name`` (or the only one there is)."""
    if fn_name:
        fn = _function(module, fn_name)
        if fn.name not in requests:
            raise SILError.at(fn.span, f"nothing asks to differentiate '@{fn.name}': it has no activity")
        return [fn]
    named = {n: named_values(module.functions[n])[1] for n in requests}
    found = [module.functions[n] for n, values in named.items() if value_name in values]
    if not found and len(named) == 1:
        return [module.functions[next(iter(named))]]  # reported there, among its values
    if not found:
        every = sorted({v for values in named.values() for v in values})
        message = f"no function something asks to differentiate defines '{value_name}'"
        raise SILError([Diagnostic("error", message + did_you_mean(value_name, every))])
    return found


def _explain(printer: Printer, ex: ActivityExplainer, value: Value) -> list[str]:
    info = ex.info
    fn = info.function
    name = printer.value(value)
    activity = info.activity(value)
    lines = [f"{name} in '@{fn.name}' for {info.config.describe()}: {activity.value}"]
    if info.module.tangent_type(value.type) is None:
        lines.append(f"  its type {value.type} has no tangent: it is never active")
    varied = ex.varied_chain(value)
    if varied is not None:
        lines.append(f"  varied: parameter {parameter_index(varied.start)} reaches it:")
        lines += _steps(printer, varied)
    else:
        lines.append(f"  not varied: no chain from a wrt parameter ({_wrt(info)}) reaches it")
        lines += [_stop(printer, f.through) for f in ex.stops_before(value)]
    useful = ex.useful_chain(value)
    if useful is not None:
        lines.append("  useful: it reaches a result:")
        lines += _steps(printer, useful)
    else:
        lines.append("  not useful: no chain from it reaches a result")
        lines += [_stop(printer, f.through) for f in ex.stops_after(value)]
        lines += [
            f"    decides {_where(b.span)}: {instruction_text(printer, b)} (control: no derivative)"
            for b in ex.branches_after(value)
        ]
    return lines


def _wrt(info: ActivityInfo) -> str:
    fn = info.function
    return ", ".join(
        f"{i}, @noDerivative" if i < len(fn.type.no_derivative) and fn.type.no_derivative[i] else str(i)
        for i in info.config.wrt
    )


def _where(span: Span | None) -> str:
    if span is None:
        return "(no location)"
    line, col = span.source.line_col(span.start)
    return f"{span.source.name}:{line}:{col}"


def _first_step(printer: Printer, start: Value) -> str:
    if isinstance(start, Result) and start.owner is not None:
        return instruction_text(printer, start.owner)
    index = parameter_index(start)
    if index is not None:
        return f"{printer.value(start)} (parameter {index})"
    block = start.block if isinstance(start, BlockArgument) else None
    return f"{printer.value(start)} (argument of {printer.block(block) if block else 'a block'})"


def _steps(printer: Printer, chain: Chain) -> list[str]:
    lines = [f"    {_where(value_span(chain.start))}: {_first_step(printer, chain.start)}"]
    for flow in chain.flows:
        text = instruction_text(printer, flow.through)
        if flow.through.is_terminator:
            text += f"  (to {printer.value(flow.target)})"
        lines.append(f"    {_where(flow.through.span)}: {text}")
    if chain.returned_by is not None:
        lines.append(f"    {_where(chain.returned_by.span)}: {instruction_text(printer, chain.returned_by)}")
    return lines


def _stop(printer: Printer, inst: Instruction) -> str:
    return (
        f"    stops at {_where(inst.span)}: {instruction_text(printer, inst)} (no derivative flows through)"
    )
