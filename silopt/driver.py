"""The command line (SIL-SPEC §8): a thin layer over the library, in four steps.

``main`` reads the arguments (``silopt.arguments``), reads the input and splits it in chunks (the
whole input, or the parts of ``--split-input-file``: ``silopt.split_input``), and processes each
chunk (``process_chunk``): builds the pipeline of registered passes with its instrumentations
(``build_pipeline``), runs it (``run_pipeline``: parse, verify, the passes, then printing,
``--run`` or ``--check-derivatives``), and hands what came of it to ``silopt.output`` (standard
output as it comes, or a file written whole or not at all) before reporting its diagnostics.
``--timing`` times the steps (``silopt.timing``). Exit status: 0 success, 1 a diagnostic was
reported, 2 bad usage. Only this package prints diagnostics and chooses exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from sil.diagnostics import Diagnostic, SILError, SourceFile
from sil.ir import Module
from sil.parser import parse_source
from sil.passes import PassInstrumentation, PassManager, registered_passes
from sil.printer import print_module
from sil.verifier import verify_module
from silopt import ad_stats, pictures
from silopt.arguments import UsageError, build_argument_parser, read_arguments
from silopt.expectations import check_expectations
from silopt.ir_printing import IRPrinting
from silopt.output import Console, Output
from silopt.split_input import MARKER, Chunk, split_input
from silopt.timing import Timing, step

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
    timing = Timing() if args.timing else None
    status = _process_input(args, console, timing)
    if timing is not None:
        console.stderr.write(timing.report())
    return status


def _process_input(args: argparse.Namespace, console: Console, timing: Timing | None) -> int:
    """Read the input and process each of its chunks, the next one whether or not one failed."""
    try:
        runs = (
            args.run is not None
            or args.check_derivatives
            or args.verify_derivatives
            or (args.ad_stats and args.args is not None)
        )
        backend = _backend(args.accel, timing) if runs else None
        chunks = _read_chunks(args, console)
    except _Failure as e:
        return console.error(str(e))
    output = Output(console, None if args.output in (None, "-") else args.output, MARKER + "\n")
    succeeded = True
    for chunk in chunks:
        succeeded = process_chunk(args, chunk, backend, console, output, timing) and succeeded
    with step(timing, "Output"):
        return output.close(succeeded)


def _read_chunks(args: argparse.Namespace, console: Console) -> list[Chunk]:
    source = _read_input(args.input, console.stdin)
    if not args.split_input_file:
        return [Chunk.whole(source)]
    chunks, near_misses = split_input(source)
    console.report(near_misses)
    return chunks


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


def _backend(name: str | None, timing: Timing | None) -> Backend:
    """The tensor backend ``--accel`` (or ``SIL_ACCEL``) asks for, for a run or a check."""
    with step(timing, "Backend"):
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


def process_chunk(
    args: argparse.Namespace,
    chunk: Chunk,
    backend: Backend | None,
    console: Console,
    output: Output,
    timing: Timing | None,
) -> bool:
    """Run a chunk through the pipeline, hand its output on, then report its diagnostics (checked
    against the chunk's expectations with ``--verify-diagnostics``); whether it succeeded."""
    manager = build_pipeline(args, console.stderr, timing, backend)
    statistics = ad_stats.attach(manager) if args.ad_stats else None
    text, diagnostics = run_pipeline(args, chunk, manager, backend, timing)
    problems = check_expectations(chunk.source, diagnostics) if args.verify_diagnostics else diagnostics
    if problems and not diagnostics:  # a run that failed only the expectations prints nothing
        text = ""
    with step(timing, "Output"):
        output.add(text, printed=not problems and not diagnostics)
    console.report(problems)
    if problems or diagnostics:
        return not problems
    if statistics is not None:  # after the output, as MLIR's statistics
        console.stderr.write(ad_stats.report(statistics, args, backend))
    if args.view:
        return pictures.finish_view(args, text, console) == 0
    return True


def build_pipeline(
    args: argparse.Namespace, dump_to: IO[str], timing: Timing | None, backend: Backend | None = None
) -> PassManager:
    """The registered passes ``args.pipeline`` names, in order, with the instrumentations asked for:
    the derivatives each emits checked on ``backend`` (``--verify-derivatives``; first, so that it
    checks after the others have seen the pass), the module printed to ``dump_to`` around them
    (``--print-ir-…``), their times (``--timing``)."""
    passes = registered_passes()
    instrumentations: list[PassInstrumentation] = []
    if args.verify_derivatives:
        assert backend is not None
        from silopt.verify_derivatives import DerivativeVerification

        verification = DerivativeVerification(
            backend, args.args, max_steps=args.max_steps, max_depth=args.max_depth, trap_nan=args.trap_nan
        )
        instrumentations.append(verification)
    before = None if args.print_ir_before_all else args.print_ir_before
    after = None if args.print_ir_after_all else args.print_ir_after
    if before != [] or after != []:
        instrumentations.append(IRPrinting(dump_to, before, after))
    if timing is not None:  # last, so that it times the passes and not the printing
        instrumentations.append(timing.instrumentation())
    return PassManager([passes[name]() for name in args.pipeline], args.verify_each, instrumentations)


def run_pipeline(
    args: argparse.Namespace,
    chunk: Chunk,
    manager: PassManager,
    backend: Backend | None,
    timing: Timing | None,
) -> tuple[str, list[Diagnostic]]:
    """What silopt prints for ``chunk`` and the diagnostics that stopped it: parse, verify, run the
    pipeline, then print the module, run a function or check the derivatives (whose report is
    printed even when a check fails)."""
    try:
        with step(timing, "Parser"):
            module = parse_source(chunk.source)
        with step(timing, "Verifier"):
            diagnostics = verify_module(module)
        if diagnostics:
            return "", diagnostics
        _transform(manager, module, timing)
        if args.check_derivatives:
            assert backend is not None
            with step(timing, "Check derivatives"):
                return _check_derivatives(module, backend, args)
        if args.run is not None:
            assert backend is not None
            with step(timing, "Run"):
                from silopt.run import run_function

                arguments = args.args or []
                text = run_function(
                    module,
                    args.run,
                    arguments,
                    backend,
                    args.max_steps,
                    args.max_depth,
                    chunk.label,
                    args.trap_nan,
                )
            return text, []
        with step(timing, "Output"):
            picture = pictures.output(module, args)
            return (print_module(module, manager.context.annotations) if picture is None else picture), []
    except SILError as e:
        return "", e.diagnostics


def _transform(manager: PassManager, module: Module, timing: Timing | None) -> None:
    if not manager.passes:
        return
    with step(timing, "Pipeline"):
        manager.run(module)
    if not manager.verify_each:
        # As sil-opt does: a pipeline that breaks the module is reported, not printed.
        with step(timing, "Verifier"):
            broken = verify_module(module)
        if broken:
            raise SILError([Diagnostic("error", "module does not verify after the pass pipeline"), *broken])


def _check_derivatives(
    module: Module, backend: Backend, args: argparse.Namespace
) -> tuple[str, list[Diagnostic]]:
    """One line per request checked; a failed or impossible check is an error, after the lines."""
    from silopt.check_derivatives import check_module

    outcomes, errors = check_module(
        module, backend, args.args, max_steps=args.max_steps, max_depth=args.max_depth, trap_nan=args.trap_nan
    )
    text = "".join(o.line() + "\n" for o in outcomes)
    return text, errors + [o.diagnostic() for o in outcomes if not o.passed]


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
