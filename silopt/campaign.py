"""``python -m silopt.campaign``: the program generator and the fuzzer at scale (issue 17, item 4).

``--programs N`` programs drawn by ``silopt.generate`` and checked by ``check_program`` (hypothesis
shrinks a failing one), and ``--inputs M`` mutated corpus inputs run through silopt under its
contract (``silopt.fuzz``: never a traceback, never a hang, located diagnostics). The work is cut
into deterministic tasks, each seeded from ``--seed`` and its index, so a seed names the same
programs and inputs on any number of workers: a local process pool (``--jobs``), or a Dask cluster
given by ``--scheduler ADDRESS`` (an existing one: the ``dask`` extra installs the client).

Each distinct failure (its kind and the first line of its message, numbers and names blurred) is
saved in ``--out`` as ``NNN-KIND.sil``, minimized, beginning with the commands that show it. The
summary ends with a JSON line; the exit status is 1 when anything failed. The generator needs
hypothesis (the ``test`` or ``campaign`` extra).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import IO, Any

import attrs

from silopt import campaign_tasks
from silopt.campaign_tasks import SHRINK_SECONDS, Found, Outcome, Task, failure_key, run_task

PROGRAMS_PER_TASK = 10
INPUTS_PER_TASK = 25
UNSORTED = "unsorted"  # where failures go as their tasks end, until the run ends


def tasks(programs: int, inputs: int, seed: int, shrink_seconds: float = SHRINK_SECONDS) -> list[Task]:
    """The campaign's work, cut in tasks of a few programs or inputs each."""
    cut: list[Task] = []
    for kind, total, size in (("generate", programs, PROGRAMS_PER_TASK), ("fuzz", inputs, INPUTS_PER_TASK)):
        cut += [
            Task(kind, seed, start, min(size, total - start), shrink_seconds)
            for start in range(0, total, size)
        ]
    return cut


class Progress:
    """A progress bar on ``stream``: redrawn in place on a terminal, a line per tenth otherwise."""

    def __init__(self, total: int, stream: IO[str]) -> None:
        self.total, self.stream, self.done, self.failed = total, stream, 0, 0
        self.tty = stream.isatty()
        self.start = time.monotonic()

    def advance(self, outcome: Outcome) -> None:
        before = self.done * 10 // max(1, self.total)
        self.done += 1
        self.failed += len(outcome.found)
        if self.tty:
            filled = self.done * 30 // max(1, self.total)
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self._counts()}")
            if self.done == self.total:
                self.stream.write("\n")
        elif self.done * 10 // max(1, self.total) > before:
            self.stream.write(f"{self._counts()}\n")
        self.stream.flush()

    def _counts(self) -> str:
        seconds = time.monotonic() - self.start
        return f"{self.done}/{self.total} tasks, {self.failed} failures, {seconds:.0f} s"


def _distributed() -> Any:
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise SystemExit(
            "silopt: error: --scheduler needs Dask distributed (pip install 'sil-workbench[dask]')"
        ) from None


def outcomes(work: Sequence[Task], jobs: int, scheduler: str | None) -> Iterator[Outcome]:
    """Each task's outcome as it completes: on the Dask cluster at ``scheduler``, in-process for one
    job, else on a pool of ``jobs`` processes."""
    if scheduler is not None:
        distributed = _distributed()
        with distributed.Client(scheduler) as client:
            futures = [client.submit(run_task, t, pure=False) for t in work]
            for future in distributed.as_completed(futures):
                yield future.result()
    elif jobs == 1:
        yield from map(run_task, work)
    else:
        with ProcessPoolExecutor(jobs) as pool:
            for done in as_completed([pool.submit(run_task, t) for t in work]):
                yield done.result()


@attrs.frozen
class Summary:
    """What a campaign tried and found; ``seconds`` aside, the same for the same seed."""

    seed: int
    programs: int
    inputs: int
    failures: int
    distinct: tuple[str, ...]
    saved: tuple[str, ...]
    seconds: float = attrs.field(eq=False)

    def as_json(self) -> str:
        return json.dumps({**attrs.asdict(self), "distinct": len(self.distinct), "seconds": self.seconds})


def run_campaign(
    programs: int,
    inputs: int,
    seed: int,
    out: Path,
    jobs: int = 1,
    scheduler: str | None = None,
    progress: IO[str] | None = None,
    shrink_seconds: float = SHRINK_SECONDS,
) -> Summary:
    """Run the tasks, save each distinct failure in ``out``, and say what was tried and found.
    Each failure is also saved as soon as its task ends, in ``out/unsorted`` (named after the
    task), so that a run stopped before its end keeps what it found; a run that ends replaces
    those by the distinct failures, numbered in task order."""
    start = time.monotonic()
    work = tasks(programs, inputs, seed, shrink_seconds)
    bar = Progress(len(work), progress) if progress is not None else None
    done: list[Outcome] = []
    unsorted = out / UNSORTED
    for outcome in outcomes(work, jobs, scheduler):
        done.append(outcome)
        for i, f in enumerate(outcome.found):
            _save_as(unsorted / f"{outcome.task.kind}-{outcome.task.start}-{i}-{_kind_name(f)}.sil", f)
        if bar is not None:
            bar.advance(outcome)
    if unsorted.exists():
        shutil.rmtree(unsorted)
    done.sort(key=lambda o: (o.task.kind, o.task.start))
    found = [f for o in done for f in o.found]
    distinct: dict[str, Found] = {}
    for f in found:
        distinct.setdefault(failure_key(f.kind, f.message), f)
    saved = [_save(out, n, f) for n, f in enumerate(distinct.values(), 1)]
    return Summary(
        seed,
        sum(o.tried for o in done if o.task.kind == "generate"),
        sum(o.tried for o in done if o.task.kind == "fuzz"),
        len(found),
        tuple(distinct),
        tuple(saved),
        round(time.monotonic() - start, 1),
    )


def _save(out: Path, n: int, found: Found) -> str:
    return _save_as(out / f"{n:03}-{_kind_name(found)}.sil", found)


def _kind_name(found: Found) -> str:
    return found.kind.replace(" ", "-")


def _save_as(path: Path, found: Found) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(found.header.replace(campaign_tasks.FILE, str(path)) + found.text, encoding="utf-8")
    return str(path)


def recheck(path: Path, stdout: IO[str]) -> int:
    """Check the generated program a saved failure holds again: 1 and its failures, or 0."""
    failures = campaign_tasks.recheck_text(path.read_text(encoding="utf-8"))
    for f in failures:
        stdout.write(f"{f.kind}: {f.message}\n")
    return 1 if failures else 0


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m silopt.campaign", description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=100, metavar="N", help="generated programs to check")
    parser.add_argument("--inputs", type=int, default=100, metavar="M", help="mutated inputs to run")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="names the programs and inputs")
    parser.add_argument("--jobs", type=int, default=None, metavar="J", help="local processes (default: all)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler to run the tasks on")
    parser.add_argument("--out", type=Path, default=Path("campaign-failures"), metavar="DIR")
    parser.add_argument("--recheck", type=Path, metavar="FILE", help="check a saved generator failure again")
    parser.add_argument(
        "--shrink-seconds",
        type=float,
        default=SHRINK_SECONDS,
        metavar="T",
        help=f"how long to shrink a failing generated program (default {SHRINK_SECONDS:g})",
    )
    return parser.parse_args(argv)


def main(
    argv: Sequence[str] | None = None, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    """The command line; returns the exit status."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = _arguments(argv)
    if args.recheck is not None:
        return recheck(args.recheck, out)
    if args.programs and importlib.util.find_spec("hypothesis") is None:
        err.write("silopt: error: --programs needs hypothesis (pip install 'sil-workbench[campaign]')\n")
        return 2
    try:
        summary = run_campaign(
            args.programs,
            args.inputs,
            args.seed,
            args.out,
            _jobs(args.jobs),
            args.scheduler,
            err,
            args.shrink_seconds,
        )
    except SystemExit as e:
        err.write(f"{e}\n")
        return 2
    _report(summary, out)
    return 1 if summary.failures else 0


def _jobs(asked: int | None) -> int:
    return asked if asked is not None else max(1, os.cpu_count() or 1)


def _report(summary: Summary, out: IO[str]) -> None:
    out.write(
        f"seed {summary.seed}: {summary.programs} programs and {summary.inputs} inputs tried, "
        f"{summary.failures} failures ({len(summary.distinct)} distinct), {summary.seconds} s\n"
    )
    lines: Iterable[str] = (f"  {path}: {key}\n" for key, path in zip(summary.distinct, summary.saved))
    out.writelines(lines)
    out.write(summary.as_json() + "\n")


if __name__ == "__main__":
    sys.exit(main())
