"""The command line (SIL-SPEC §8): a thin layer over the library, in four steps.

``main`` reads the arguments (``silopt.arguments``), builds the pipeline of registered passes
(``build_pipeline``), runs it on the input (``run_pipeline``: parse, verify, the passes, then
printing, ``--run`` or ``--check-derivatives``) and writes what came of it (``finish``: the
diagnostics, or the output through ``silopt.output``, whole or not at all). Exit status: 0
success, 1 a diagnostic was reported, 2 bad usage. Only this package prints diagnostics and
chooses exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING

from sil.diagnostics import Diagnostic, SILError, SourceFile
from sil.ir import Module
from sil.parser import parse_source
from sil.passes import Pass, PassContext, PassManager, registered_passes
from sil.printer import print_module
from sil.verifier import verify_module
from silopt.arguments import UsageError, build_argument_parser, read_arguments
from silopt.expectations import check_expectations
from silopt.output import Console, write_atomically

if TYPE_CHECKING:
    from accel import Backend


class _Failure(Exception):
    """What stops silopt before it has a module (a backend, the input): ``silopt: error: …``, 1."""


def main(
    argv: Sequence[str] | None = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run silopt; returns the exit status."""
    console = Console(stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr)
    parser = build_argument_parser()
    try:
        args = read_arguments(parser, sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        console.stderr.write(parser.format_usage())
        console.stderr.write(f"silopt: error: {e}\n")
        return 2
    answer = _answer_without_input(parser, args)
    if answer is not None:
        return console.write(answer)
    try:
        backend = _backend(args.accel) if args.run is not None or args.check_derivatives else None
        source = _read_input(args.input, console.stdin)
    except _Failure as e:
        return console.error(str(e))
    manager = build_pipeline(
        args.pipeline, args.verify_each, console.stderr if args.print_ir_after_all else None
    )
    text, diagnostics = run_pipeline(args, source, manager, backend, console)
    return finish(args, source, text, diagnostics, console)


def _answer_without_input(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """What ``--help``, ``--version`` and ``--list-passes`` print (None: none of them is given)."""
    if args.help:
        return parser.format_help()
    if args.version:
        from accel import describe_selection

        return f"silopt (sil-workbench) {_version()}\n{describe_selection(args.accel)}\n"
    if args.list_passes:
        registry = registered_passes()
        width = max(map(len, registry), default=0)
        return "".join(f"{name:<{width}}  {cls.description}\n" for name, cls in registry.items())
    return None


def _backend(name: str | None) -> Backend:
    """The tensor backend ``--accel`` (or ``SIL_ACCEL``) asks for, for a run or a check."""
    from accel import BackendUnavailable, select_backend

    try:
        return select_backend(name)
    except (BackendUnavailable, ValueError) as e:
        raise _Failure(str(e)) from None


def _read_input(path: str, stdin: IO[str]) -> SourceFile:
    try:
        if path == "-":
            return SourceFile("<stdin>", stdin.read())
        with open(path, encoding="utf-8") as f:
            return SourceFile(path, f.read())
    except OSError as e:
        raise _Failure(f"cannot read '{path}': {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise _Failure(f"'{path}' is not UTF-8 text (byte {e.start}: {e.reason})") from None


def build_pipeline(names: Sequence[str], verify_each: bool, dump_to: IO[str] | None) -> PassManager:
    """The registered passes ``names``, in order; with ``dump_to``, the module is printed there after
    each (``--print-ir-after-all``)."""
    passes = registered_passes()
    return PassManager(
        [passes[name]() for name in names], verify_each, None if dump_to is None else _dumper(dump_to)
    )


def _dumper(stream: IO[str]) -> Callable[[Pass, Module, PassContext], None]:
    def dump_after(p: Pass, module: Module, ctx: PassContext) -> None:
        stream.write(f"// -----// IR Dump After {p.name} //----- //\n")
        stream.write(print_module(module, ctx.annotations))

    return dump_after


def run_pipeline(
    args: argparse.Namespace,
    source: SourceFile,
    manager: PassManager,
    backend: Backend | None,
    console: Console,
) -> tuple[str, list[Diagnostic]]:
    """What silopt prints for ``source``, or the diagnostics that stop it: parse, verify, run the
    pipeline, then print the module, run a function or check the derivatives."""
    try:
        module = parse_source(source)
        diagnostics = verify_module(module)
        if diagnostics:
            return "", diagnostics
        _transform(manager, module)
        if args.check_derivatives:
            assert backend is not None
            return _check_derivatives(module, backend, args, console), []
        if backend is not None:
            from silopt.run import run_function

            arguments = args.args or []
            text = run_function(
                module,
                args.run,
                arguments,
                backend,
                args.max_steps,
                args.max_depth,
                source.name,
                args.trap_nan,
            )
            return text, []
        return print_module(module, manager.context.annotations), []
    except SILError as e:
        return "", e.diagnostics


def _transform(manager: PassManager, module: Module) -> None:
    manager.run(module)
    if manager.passes and not manager.verify_each:
        # As sil-opt does: a pipeline that breaks the module is reported, not printed.
        broken = verify_module(module)
        if broken:
            raise SILError([Diagnostic("error", "module does not verify after the pass pipeline"), *broken])


def _check_derivatives(module: Module, backend: Backend, args: argparse.Namespace, console: Console) -> str:
    """One line per request checked; a failed or impossible check is an error, after the lines."""
    from silopt.check_derivatives import check_module

    outcomes, errors = check_module(
        module, backend, args.args, max_steps=args.max_steps, max_depth=args.max_depth, trap_nan=args.trap_nan
    )
    text = "".join(o.line() + "\n" for o in outcomes)
    errors += [o.diagnostic() for o in outcomes if not o.passed]
    if errors:
        console.write(text)
        raise SILError(errors)
    return text


def finish(
    args: argparse.Namespace, source: SourceFile, text: str, diagnostics: list[Diagnostic], console: Console
) -> int:
    """Report ``diagnostics`` (checked against the input's expectations with ``--verify-diagnostics``)
    or write ``text``; the exit status."""
    if args.verify_diagnostics:
        problems = check_expectations(source, diagnostics)
        console.report(problems)
        if problems:
            return 1
        if diagnostics:
            return 0
    elif diagnostics:
        console.report(diagnostics)
        return 1
    if args.output is None or args.output == "-":
        return console.write(text)
    try:
        write_atomically(args.output, text)
    except OSError as e:
        return console.error(f"cannot write '{args.output}': {e.strerror}")
    return 0


def _version() -> str:
    import importlib.metadata  # costs tens of milliseconds: only for --version

    try:
        return importlib.metadata.version("sil-workbench")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def console_main() -> None:
    """The ``silopt`` console script."""
    status = main()
    try:
        sys.stdout.flush()
    except OSError as e:
        if status == 0:  # else main has reported it
            sys.stderr.write(f"silopt: error: cannot write the output: {e.strerror or e}\n")
            status = 1
        # Python flushes standard output once more on exit: let it, with nothing left to complain of.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)
