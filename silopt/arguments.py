"""silopt's arguments: the parser, its pass flags (one a registered pass), and what makes a command
line bad usage (exit status 2)."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any

from sil.diagnostics import quoted
from sil.passes import registered_passes

# accel and interp import NumPy: they are imported only when a run or --version needs them, so that
# parsing and transforming start fast. A test checks these against accel.BACKEND_NAMES and
# interp.DEFAULT_MAX_DEPTH.
BACKEND_NAMES = ("auto", "numpy", "cupy")
DEFAULT_MAX_DEPTH = 10_000
# The deepest --max-depth: Python's recursion limit, a C int, must hold a few frames per call.
MAX_DEPTH = 100_000_000


class UsageError(Exception):
    """A command line silopt cannot run: reported with the usage line, exit status 2."""


UNRECOGNIZED = "unrecognized arguments: "


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """`` (did you mean 'X'?)`` for the candidate closest to a mistyped ``word``, when one is
    close enough to be the likely intent; else nothing."""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print and exit; we decide instead
        if message.startswith(UNRECOGNIZED):
            options = list(self._option_string_actions)
            words = message[len(UNRECOGNIZED) :].split(" ")
            message = UNRECOGNIZED + " ".join(
                w + did_you_mean(w, options) if w.startswith("-") else w for w in words
            )
        raise UsageError(message)


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
                    hint = did_you_mean(n, list(known)) or " (see --list-passes)"
                    raise UsageError(f"unknown pass '{n}' in --pass-pipeline{hint}")
            pipeline.extend(names)
        namespace.pipeline = pipeline


def build_argument_parser() -> argparse.ArgumentParser:
    """silopt's options, and a flag for each registered pass."""
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
    _add_running_arguments(p.add_argument_group("running"))
    _add_nan_arguments(p)
    group = p.add_argument_group("passes")
    for name, cls in registered_passes().items():
        group.add_argument(
            f"-{name}", f"--{name}", action=_AppendPasses, nargs=0, const=name, help=cls.description
        )
    p.set_defaults(pipeline=[])
    return p


def _add_running_arguments(run: argparse._ArgumentGroup) -> None:
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
        help="stop a run (each of --check-derivatives' runs) that executes more than N instructions",
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


def read_arguments(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """The arguments ``argv`` gives; UsageError when they cannot be run. ``--help``, ``--version``
    and ``--list-passes`` need nothing else, and are answered whatever else is wrong."""
    args = parser.parse_args(list(argv))
    if args.help or args.version or args.list_passes:
        return args
    if args.input is None:
        raise UsageError("no input file (use '-' for standard input)")
    if args.run is not None and args.check_derivatives:
        raise UsageError("--run and --check-derivatives exclude each other")
    if args.run is None and args.max_steps is not None and not args.check_derivatives:
        raise UsageError("--max-steps needs --run or --check-derivatives")
    if args.run is None and args.args is not None and not args.check_derivatives:
        raise UsageError("--args needs --run or --check-derivatives")
    _check_nan_arguments(args)
    return args


def _add_nan_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("NaN debugging")
    group.add_argument(
        "--trap-nan",
        action="store_true",
        help="stop a run (each of --check-derivatives' runs) at the first instruction that makes a NaN "
        "from operands that are not NaN, and show them",
    )


def _check_nan_arguments(args: argparse.Namespace) -> None:
    if args.trap_nan and args.run is None and not args.check_derivatives:
        raise UsageError("--trap-nan needs --run or --check-derivatives")


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
