"""silopt's arguments: the parser, its pass flags (one a registered pass), and what makes a command
line bad usage (exit status 2)."""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
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
            message = UNRECOGNIZED + " ".join(_with_hint(w, options) for w in words)
        raise UsageError(message)


def _with_hint(word: str, options: list[str]) -> str:
    """An unrecognized word, with the flag likely meant; a flag that is one came after ``--``,
    where every word is the input file's place."""
    if word in options:
        return f"{word} (a flag after '--' is not read as one: put it before)"
    return word + did_you_mean(word, options) if word.startswith("-") else word


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
            pipeline.extend(pass_names(str(values), "--pass-pipeline"))
        namespace.pipeline = pipeline


def pass_names(text: str, flag: str) -> list[str]:
    """The registered passes a comma-separated list names (spaces and empty entries ignored);
    UsageError, with the likely pass meant, for a name that is none."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = registered_passes()
    for n in names:
        if n not in known:
            hint = did_you_mean(n, list(known)) or " (see --list-passes)"
            raise UsageError(f"unknown pass '{n}' in {flag}{hint}")
    return names


class _AppendPassNames(argparse.Action):
    """``--print-ir-before=a,b`` (repeatable, as mlir-opt's ``--mlir-print-ir-before``): the passes
    named, collected in the option's list."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        names: list[str] = list(getattr(namespace, self.dest, None) or [])
        names.extend(pass_names(str(values), self.option_strings[0]))
        setattr(namespace, self.dest, names)


def build_argument_parser() -> argparse.ArgumentParser:
    """silopt's options, and a flag for each registered pass."""
    p = _ArgumentParser(
        prog="silopt",
        description="Parse, verify, transform and print SIL modules.",
        allow_abbrev=False,
        add_help=False,  # argparse's help would print to sys.stdout and exit; main() answers it
    )
    p.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    p.add_argument("input", nargs="?", help="input file (none, or '-': standard input)")
    p.add_argument(
        "-o", dest="output", metavar="OUT", help="write the module to OUT instead of standard output"
    )
    p.add_argument("--pass-pipeline", metavar="A,B,…", action=_AppendPasses, help="run these passes in order")
    p.add_argument("--list-passes", action="store_true", help="list the available passes and exit")
    p.add_argument("--verify-each", action="store_true", help="run the verifier after every pass")
    p.add_argument(
        "--verify-diagnostics",
        action="store_true",
        help="check diagnostics against '// expected-error {{…}}' comments in the input",
    )
    p.add_argument("--version", action="store_true", help="show the version and the tensor backend, and exit")
    _add_running_arguments(p.add_argument_group("running"))
    _add_cli_arguments(p)
    _add_pictures_arguments(p.add_argument_group("pictures and explanations"))
    _add_ad_stats_arguments(p.add_argument_group("AD statistics"))
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
        help="the arguments of --run (or the point to check at, or --ad-stats' point to measure at); "
        "'--' ends them before the input file",
    )
    run.add_argument(
        "--max-steps",
        type=_positive_int,
        metavar="N",
        help="stop a run (each of --check-derivatives', --verify-derivatives' and --ad-stats' runs) that "
        "executes more than N instructions",
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
        "--verify-derivatives",
        action="store_true",
        help="after each pass, check numerically every derivative it made or changed (at --args where "
        "they fit, and at points drawn) and stop at the first pass that emits a wrong one",
    )
    run.add_argument(
        "--accel",
        choices=BACKEND_NAMES,
        default=None,
        help="the tensor backend (default: $SIL_ACCEL, else auto: CuPy with a GPU, else NumPy)",
    )


def _add_cli_arguments(p: argparse.ArgumentParser) -> None:
    """The input split in modules, and what watches the passes (as mlir-opt's options)."""
    p.add_argument(
        "--split-input-file",
        action="store_true",
        help="split the input at '// -----' lines and process each part on its own",
    )
    watch = p.add_argument_group("instrumentation (to standard error)")
    for when in ("before", "after"):
        watch.add_argument(
            f"--print-ir-{when}",
            action=_AppendPassNames,
            default=[],
            metavar="PASS,…",
            help=f"print the module {when} each run of these passes",
        )
        watch.add_argument(
            f"--print-ir-{when}-all", action="store_true", help=f"print the module {when} every pass"
        )
    watch.add_argument(
        "--timing", action="store_true", help="report the time of each step and pass, as --mlir-timing"
    )


def _add_pictures_arguments(pictures: argparse._ArgumentGroup) -> None:
    pictures.add_argument(
        "--emit-dot",
        choices=("cfg", "activity", "callgraph"),
        help="after the passes, write Graphviz DOT instead of the module: each function's control-flow "
        "graph, the same coloured by activity (per differentiation request), or the call graph",
    )
    pictures.add_argument(
        "--function",
        metavar="@F",
        help="draw only F (--emit-dot cfg or activity), or what F can reach (callgraph)",
    )
    pictures.add_argument(
        "--view",
        action="store_true",
        help="also render the DOT to SVG with Graphviz's dot (beside -o OUT as OUT.svg, else NAME.KIND.svg)",
    )
    pictures.add_argument(
        "--explain-activity",
        action="append",
        metavar="[@F:]%V",
        help="say why value V (of F) is or is not active, for each request differentiating its function "
        "(may be given several times)",
    )


def _check_pictures_arguments(args: argparse.Namespace) -> None:
    """``--emit-dot`` and ``--explain-activity`` print something else than the module, as ``--run``
    and ``--check-derivatives`` do: one of them at most."""
    given = [
        flag
        for flag, on in (
            ("--emit-dot", args.emit_dot is not None),
            ("--explain-activity", args.explain_activity is not None),
            ("--run", args.run is not None),
            ("--check-derivatives", args.check_derivatives),
        )
        if on
    ]
    if len(given) > 1 and given[0] in ("--emit-dot", "--explain-activity"):
        raise UsageError(f"{given[0]} and {given[1]} exclude each other")
    if args.view and args.emit_dot is None:
        raise UsageError("--view needs --emit-dot")
    if args.view and args.split_input_file:
        raise UsageError("--view and --split-input-file exclude each other (one picture per file)")
    if args.function is not None and args.emit_dot is None:
        raise UsageError("--function needs --emit-dot")


def _add_ad_stats_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--ad-stats",
        action="store_true",
        help="after the output, print to standard error what -differentiation and -lower-gradient "
        "made for each request: instructions, zeros kept symbolic or materialized, record sizes; "
        "with --args, the cost of the gradient over the primal there",
    )
    group.add_argument(
        "--ad-stats-untimed",
        action="store_true",
        help="--ad-stats without the wall time, so that the report is the same on every run",
    )


def _check_ad_stats(args: argparse.Namespace) -> None:
    """``--ad-stats-untimed`` is ``--ad-stats``; either reports what the pipeline's
    differentiation passes make, so it needs one."""
    args.ad_stats = args.ad_stats or args.ad_stats_untimed
    if args.ad_stats and not {"differentiation", "lower-gradient"} & set(args.pipeline):
        raise UsageError("--ad-stats reports what -differentiation or -lower-gradient makes: run one")


def read_arguments(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """The arguments ``argv`` gives; UsageError when they cannot be run. ``--help``, ``--version``
    and ``--list-passes`` need nothing else, and are answered whatever else is wrong."""
    args = parser.parse_args(list(argv))
    if args.help or args.version or args.list_passes:
        return args
    if args.input is None:
        refuse_input_taken_by_args(args.args)
        args.input = "-"  # as mlir-opt: no file, standard input
    _check_ad_stats(args)
    if args.run is not None and args.check_derivatives:
        raise UsageError("--run and --check-derivatives exclude each other")
    _check_pictures_arguments(args)
    if args.verify_derivatives and not args.pipeline:
        raise UsageError("--verify-derivatives checks what the passes emit: name some")
    runs = args.run is not None or args.check_derivatives or args.verify_derivatives
    if not runs and args.max_steps is not None and not args.ad_stats:
        raise UsageError("--max-steps needs --run, --check-derivatives, --verify-derivatives or --ad-stats")
    if not runs and args.args is not None and not args.ad_stats:
        raise UsageError("--args needs --run, --check-derivatives, --verify-derivatives or --ad-stats")
    if args.trap_nan and not runs:
        raise UsageError("--trap-nan needs --run, --check-derivatives or --verify-derivatives")
    return args


def _add_nan_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("NaN debugging")
    group.add_argument(
        "--trap-nan",
        action="store_true",
        help="stop a run (each of --check-derivatives' and --verify-derivatives' runs) at the first "
        "instruction that makes a NaN "
        "from operands that are not NaN, and show them",
    )


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


def refuse_input_taken_by_args(arguments: Sequence[str] | None) -> None:
    """UsageError when ``--args`` took what must be the input file (``--args 1 2 f.sil``:
    ``--args`` takes every word up to the next flag), which would leave silopt reading standard
    input: its last word ends in ``.sil``, or names a file that is not a tensor's ``.npy``."""
    if not arguments:
        return
    last = arguments[-1]
    if last.endswith(".sil") or (os.path.isfile(last) and not last.endswith(".npy")):
        fixed = shlex.join(["--args", *arguments[:-1], "--", last])
        raise UsageError(
            f"no input file: --args took {quoted(last)} as an argument; end --args with '--' "
            f"({fixed}) or put the input file first"
        )
