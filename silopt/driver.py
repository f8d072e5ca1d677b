"""The command line (SIL-SPEC §8): parse, verify, run passes, print.

Exit status: 0 success, 1 a diagnostic was reported, 2 bad usage. Only this module prints
diagnostics and chooses exit codes; output files are written whole or not at all.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from typing import IO, Any

from sil.diagnostics import Diagnostic, SILError, SourceFile, quoted
from sil.ir import Module
from sil.parser import parse_source
from sil.passes import Pass, PassContext, PassManager, registered_passes
from sil.printer import print_module
from sil.verifier import verify_module
from silopt.expectations import check_expectations

# accel and interp import NumPy: they are imported only when a run or --version needs them, so that
# parsing and transforming start fast. A test checks these against accel.BACKEND_NAMES and
# interp.DEFAULT_MAX_DEPTH.
BACKEND_NAMES = ("auto", "numpy", "cupy")

DEFAULT_MAX_DEPTH = 10_000
# The deepest --max-depth: Python's recursion limit, a C int, must hold a few frames per call.
MAX_DEPTH = 100_000_000


class _UsageError(Exception):
    pass


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print and exit; we decide instead
        raise _UsageError(message)


class _AppendPasses(argparse.Action):
    """Collects pass flags and ``--pass-pipeline`` entries, in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        pipeline: list[str] = list(getattr(namespace, "pipeline", None) or [])
        if self.const is not None:
            pipeline.append(self.const)
        else:
            names = [n.strip() for n in str(values).split(",") if n.strip()]
            known = registered_passes()
            for n in names:
                if n not in known:
                    raise _UsageError(f"unknown pass '{n}' in --pass-pipeline (see --list-passes)")
            pipeline.extend(names)
        namespace.pipeline = pipeline


def build_argument_parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(
        prog="silopt",
        description="Parse, verify, transform and print SIL modules.",
        allow_abbrev=False,
        add_help=False,  # argparse's help would print to sys.stdout and exit; main() answers it
    )
    p.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    p.add_argument("input", nargs="?", help="input file ('-' for standard input)")
    p.add_argument(
        "-o", dest="output", metavar="OUT", help="write the module to OUT instead of standard output"
    )
    p.add_argument("--pass-pipeline", metavar="A,B,…", action=_AppendPasses, help="run these passes in order")
    p.add_argument("--list-passes", action="store_true", help="list the available passes and exit")
    p.add_argument("--verify-each", action="store_true", help="run the verifier after every pass")
    p.add_argument(
        "--print-ir-after-all",
        action="store_true",
        help="print the module to standard error after every pass",
    )
    p.add_argument(
        "--verify-diagnostics",
        action="store_true",
        help="check diagnostics against '// expected-error {{…}}' comments in the input",
    )
    p.add_argument("--version", action="store_true", help="show the version and the tensor backend, and exit")
    run = p.add_argument_group("running")
    run.add_argument("--run", metavar="@F", help="run function F on the interpreter and print its result")
    run.add_argument(
        "--args",
        nargs="*",
        default=None,
        metavar="ARG",
        help="the arguments of --run (or the point to check at)",
    )
    run.add_argument(
        "--max-steps",
        type=_positive_int,
        metavar="N",
        help="stop a run that executes more than N instructions",
    )
    run.add_argument(
        "--max-depth",
        type=_depth,
        default=DEFAULT_MAX_DEPTH,
        metavar="N",
        help=f"stop a run whose calls nest deeper than N (default {DEFAULT_MAX_DEPTH})",
    )
    run.add_argument(
        "--check-derivatives",
        action="store_true",
        help="after the passes, differentiate and check every derivative requested numerically "
        "(instead of printing the module)",
    )
    run.add_argument(
        "--accel",
        choices=BACKEND_NAMES,
        default=None,
        help="the tensor backend (default: $SIL_ACCEL, else auto: CuPy with a GPU, else NumPy)",
    )
    group = p.add_argument_group("passes")
    for name, cls in registered_passes().items():
        group.add_argument(
            f"-{name}", f"--{name}", action=_AppendPasses, nargs=0, const=name, help=cls.description
        )
    p.set_defaults(pipeline=[])
    return p


def main(
    argv: Sequence[str] | None = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run silopt; returns the exit status."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_argument_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if args.help:
            return _write_output(stdout, stderr, parser.format_help())
        if args.version:
            from accel import describe_selection

            version = f"silopt (sil-workbench) {_version()}\n{describe_selection(args.accel)}\n"
            return _write_output(stdout, stderr, version)
        if args.list_passes:
            registry = registered_passes()
            width = max(map(len, registry), default=0)
            listing = "".join(f"{name:<{width}}  {cls.description}\n" for name, cls in registry.items())
            return _write_output(stdout, stderr, listing)
        if args.input is None:
            raise _UsageError("no input file (use '-' for standard input)")
        if args.run is not None and args.check_derivatives:
            raise _UsageError("--run and --check-derivatives exclude each other")
        if args.run is None and args.max_steps is not None:
            raise _UsageError("--max-steps needs --run")
        if args.run is None and args.args is not None and not args.check_derivatives:
            raise _UsageError("--args needs --run or --check-derivatives")
    except _UsageError as e:
        stderr.write(parser.format_usage())
        stderr.write(f"silopt: error: {e}\n")
        return 2
    backend = None
    if args.run is not None or args.check_derivatives:
        from accel import BackendUnavailable, select_backend

        try:
            backend = select_backend(args.accel)
        except (BackendUnavailable, ValueError) as e:
            stderr.write(f"silopt: error: {e}\n")
            return 1

    try:
        source = _read_input(args.input, stdin)
    except OSError as e:
        stderr.write(f"silopt: error: cannot read '{args.input}': {e.strerror}\n")
        return 1
    except UnicodeDecodeError as e:
        stderr.write(f"silopt: error: '{args.input}' is not UTF-8 text (byte {e.start}: {e.reason})\n")
        return 1

    def dump_after(p: Pass, module: Module, ctx: PassContext) -> None:
        stderr.write(f"// -----// IR Dump After {p.name} //----- //\n")
        stderr.write(print_module(module, ctx.annotations))

    diagnostics: list[Diagnostic] = []
    text = ""
    try:
        module = parse_source(source)
        diagnostics = verify_module(module)
        if not diagnostics:
            passes = [registered_passes()[name]() for name in args.pipeline]
            manager = PassManager(passes, args.verify_each, dump_after if args.print_ir_after_all else None)
            manager.run(module)
            if passes and not args.verify_each:
                # As sil-opt does: a pipeline that breaks the module is reported, not printed.
                broken = verify_module(module)
                if broken:
                    summary = Diagnostic("error", "module does not verify after the pass pipeline")
                    raise SILError([summary, *broken])
            if args.check_derivatives:
                from silopt.check_derivatives import check_module

                assert backend is not None
                outcomes, errors = check_module(module, backend, args.args)
                text = "".join(o.line() + "\n" for o in outcomes)
                errors += [o.diagnostic() for o in outcomes if not o.passed]
                if errors:
                    _write_output(stdout, stderr, text)
                    raise SILError(errors)
            elif backend is not None:
                from silopt.run import run_function

                text = run_function(
                    module, args.run, args.args or [], backend, args.max_steps, args.max_depth, source.name
                )
            else:
                text = print_module(module, manager.context.annotations)
    except SILError as e:
        diagnostics = e.diagnostics

    if args.verify_diagnostics:
        problems = check_expectations(source, diagnostics)
        for d in problems:
            stderr.write(d.render())
        if problems:
            return 1
        if diagnostics:
            return 0
    elif diagnostics:
        for d in diagnostics:
            stderr.write(d.render())
        return 1

    if args.output is None or args.output == "-":
        return _write_output(stdout, stderr, text)
    try:
        _write_atomically(args.output, text)
    except OSError as e:
        stderr.write(f"silopt: error: cannot write '{args.output}': {e.strerror}\n")
        return 1
    return 0


def _positive_int(text: str) -> int:
    if len(text) > 30:  # Python converts no more than 4,300 digits; none of ours needs 30
        raise argparse.ArgumentTypeError(f"a number of {len(text)} characters is too large")
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{quoted(text)} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def _depth(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_DEPTH:
        raise argparse.ArgumentTypeError(f"{value} is more than {MAX_DEPTH}, the deepest a run can go")
    return value


def _version() -> str:
    try:
        return importlib.metadata.version("sil-workbench")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def _read_input(path: str, stdin: IO[str]) -> SourceFile:
    if path == "-":
        return SourceFile("<stdin>", stdin.read())
    with open(path, encoding="utf-8") as f:
        return SourceFile(path, f.read())


def _write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a failure leaves nothing half-way.

    The file gets the mode an existing ``path`` has, else the one ``open`` would give a new file
    (0666 less the umask), not the temporary file's 0600. A symbolic link is written through, and
    what is not a regular file (``/dev/full``, a pipe) is written directly: renaming over it would
    replace the device or pipe with a file."""
    path = os.path.realpath(path)
    directory = os.path.dirname(path)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    else:
        if not stat.S_ISREG(status.st_mode):
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
            return
        mode = stat.S_IMODE(status.st_mode)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".silopt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it back at once
    os.umask(mask)
    return mask


def _write_output(stdout: IO[str], stderr: IO[str], text: str) -> int:
    """Write ``text`` to standard output; a failure (a full disk) is reported, status 1."""
    try:
        stdout.write(text)
        stdout.flush()
    except OSError as e:
        stderr.write(f"silopt: error: cannot write the output: {e.strerror or e}\n")
        return 1
    return 0


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
