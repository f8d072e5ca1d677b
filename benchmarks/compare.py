"""Compare the benchmarks of this tree with those of a git revision, timed in the same run.

    python3 benchmarks/compare.py REV                      # all four benchmarks, full runs
    python3 benchmarks/compare.py REV --quick              # their smoke runs: a few minutes on 2 cores
    python3 benchmarks/compare.py fed0b21 --bench parse,interp --rounds 3 --noise 0.15

It checks out REV in a temporary git worktree, then runs each chosen benchmark of REV's tree and of
this one (the working tree as it is, uncommitted changes included) alternately, round after round,
the first of each pair flipping every round, so that a slow spell of the machine touches both
alike. Each run is a subprocess started in its own tree with ``PYTHONPATH`` set to that tree, so
it runs that tree's benchmark script on that tree's packages, and writes its figures with
``--json``; ``common.figures`` reads every tree's layout. For each figure both trees report, the
table gives the median of each tree's values over rounds and the median over rounds of the ratio
this tree / REV within a round, and flags a ratio outside the noise band (``--noise``, a fraction:
a ratio above 1 + noise or below 1 / (1 + noise)) that lies on the same side of 1 in every round.
Plain-Python, NumPy and JSON baselines are marked ``control``: no tree changes them, so how far
they move shows the noise of the run. A benchmark whose run fails (in either tree) is left out and
the others go on; the exit status is then 1. The worktree is removed at the end, also after an
error, Ctrl-C, SIGTERM or SIGHUP. ``benchmarks/README.md`` says more.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from common import ROOT, figures

BENCHES = ("parse", "interp", "ad", "element", "nan", "placement", "opt")
SCRIPTS = {"placement": "placement.py"}  # the others are {bench}_bench.py
CONTROLS = ("python", "numpy", "json", "floor", "torch", "jax", "hand ", "cpython")
# --quick runs each benchmark's smoke run, with rounds enough that one slow call does not decide a
# figure (a smoke run takes one sample of each by default).
QUICK_ARGS = {
    "parse": ["--quick", "--reps", "5"],
    "interp": ["--quick", "--reps", "3"],
    "ad": ["--quick", "--reps", "3"],
    "element": ["--quick", "--reps", "3"],
    "nan": ["--quick", "--reps", "3"],
    "placement": ["--quick", "--reps", "21"],  # single calls: rounds are cheap
    "opt": ["--quick", "--reps", "21"],
}
NOISE_FULL, NOISE_QUICK = 0.10, 0.25  # the default noise bands (see README.md: how they were set)
ROUNDS_FULL, ROUNDS_QUICK = 3, 3

Figures = dict[str, tuple[float, str]]


# --- the other tree --------------------------------------------------------------------------------
def git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"compare: git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A detached worktree of ``rev`` in a temporary directory, removed when the block ends, how
    ever it ends (SIGTERM and SIGHUP end it as Ctrl-C does)."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode:
        raise SystemExit(f"compare: no commit {rev} in {ROOT}")
    commit = found.stdout.strip()
    path = Path(tempfile.mkdtemp(prefix=f"bench-{commit[:10]}-"))
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        git("worktree", "add", "--detach", "--quiet", str(path), commit)
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True
        )
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --- running ----------------------------------------------------------------------------------------
class RunFailed(Exception):
    """A benchmark's run ended with an error (its own checks, or a time limit on a loaded machine)."""


def script_name(bench: str) -> str:
    return SCRIPTS.get(bench, f"{bench}_bench.py")


def label_of(bench: str) -> str:
    """What a benchmark's output calls it (its script's name)."""
    return Path(script_name(bench)).stem


def run_bench(tree: Path, bench: str, quick: bool, scratch: Path, label: str) -> Figures | None:
    """One run of ``bench`` in ``tree``, its figures; None when the tree has no such benchmark."""
    script = tree / "benchmarks" / script_name(bench)
    if not script.exists():
        return None
    out, log = scratch / f"{label}-{bench}.json", scratch / f"{label}-{bench}.log"
    command = [sys.executable, str(script), "--json", str(out), *(QUICK_ARGS[bench] if quick else [])]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with log.open("w") as output:
        result = subprocess.run(
            command, cwd=tree, env=env, stdout=output, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode:
        tail = "".join("    " + line for line in log.read_text().splitlines(keepends=True)[-15:])
        raise RunFailed(f"{script_name(bench)} of {label} ended with status {result.returncode}:\n{tail}")
    found: Figures = figures(json.loads(out.read_text()))
    return found


def measure(
    trees: dict[str, Path], benches: Sequence[str], quick: bool, rounds: int
) -> tuple[dict[str, dict[str, list[Figures]]], dict[str, str]]:
    """Every round: each benchmark of each tree, the trees alternating (the first flips every
    round). Returns by benchmark and tree the figures of each round, and by benchmark why it was
    left out (a run failed: the others go on)."""
    runs: dict[str, dict[str, list[Figures]]] = {b: {label: [] for label in trees} for b in benches}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as scratch:
        for i in range(rounds):
            order = list(trees.items()) if i % 2 == 0 else list(reversed(trees.items()))
            for bench in (b for b in benches if b not in failed):
                for label, tree in order:
                    start = time.perf_counter()
                    try:
                        found = run_bench(tree, bench, quick, Path(scratch), label)
                    except RunFailed as e:
                        failed[bench] = str(e)
                        print(f"  round {i + 1}/{rounds}: {e}", flush=True)
                        break
                    if found is not None:
                        runs[bench][label].append(found)
                    took = time.perf_counter() - start
                    print(
                        f"  round {i + 1}/{rounds}: {label_of(bench)} of {label}, {took:.0f} s",
                        flush=True,
                    )
    return runs, failed


# --- reporting --------------------------------------------------------------------------------------
def is_control(name: str) -> bool:
    """A baseline's figure (plain Python, NumPy, JSON, ...), or a ratio between baselines."""
    return name.rsplit(": ", 1)[-1].lower().startswith(CONTROLS)


def shown(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.3f}x"
    if unit == "B":
        return f"{value:,.0f} B"
    if value >= 1:
        return f"{value:.3f} s"
    return f"{value * 1e3:,.3f} ms" if value >= 1e-3 else f"{value * 1e6:,.2f} µs"


class Row:
    """One figure of both trees: the medians over rounds, and the ratios this tree / REV."""

    def __init__(self, name: str, unit: str, rev: list[float], current: list[float], noise: float) -> None:
        self.name = name
        self.unit = unit
        self.rev = statistics.median(rev)
        self.current = statistics.median(current)
        per_round = [c / r for c, r in zip(current, rev) if r > 0]
        self.ratios = per_round
        self.ratio = statistics.median(per_round) if per_round else math.nan
        self.control = is_control(name)
        # Outside the band, and on that side of 1 in every round: one wild round flags nothing.
        if not per_round or math.isnan(self.ratio):
            self.flag = "?"
        elif self.ratio > 1 + noise and min(per_round) > 1:
            self.flag = "SLOWER" if unit == "s" else "HIGHER"
        elif self.ratio < 1 / (1 + noise) and max(per_round) < 1:
            self.flag = "FASTER" if unit == "s" else "LOWER"
        else:
            self.flag = ""

    def json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "rev": self.rev,
            "current": self.current,
            "ratio": self.ratio,
            "ratios": self.ratios,
            "control": self.control,
            "flag": self.flag,
        }


def rows(runs: dict[str, list[Figures]], noise: float) -> tuple[list[Row], list[str]]:
    """The rows of the figures both trees report in every round, in this tree's order; and the
    names of those only one tree reports."""
    rev, current = runs["REV"], runs["current"]
    names = [n for n in current[0] if all(n in f for f in current) and all(n in f for f in rev)]
    table = []
    for name in names:
        unit = current[0][name][1]
        table.append(Row(name, unit, [f[name][0] for f in rev], [f[name][0] for f in current], noise))
    one_side = sorted(set(current[0]).symmetric_difference(rev[0]) - set(names))
    return table, one_side


def print_table(bench: str, table: list[Row], one_side: list[str], rev: str) -> None:
    width = max([len(r.name) for r in table] + [10])
    print()
    print(f"{label_of(bench)}: {rev} against this tree (medians over rounds; ratio = this tree / {rev})")
    print(f"  {'figure':<{width}} {rev:>14} {'this tree':>14} {'ratio':>7}  {'range':>11}")
    for r in table:
        spread = f"{min(r.ratios):.2f}-{max(r.ratios):.2f}" if len(r.ratios) > 1 else ""
        note = " ".join(x for x in (r.flag, "(control)" if r.control else "") if x)
        print(
            f"  {r.name:<{width}} {shown(r.rev, r.unit):>14} {shown(r.current, r.unit):>14}"
            f" {r.ratio:>6.3f}x  {spread:>11}  {note}"
        )
    if one_side:
        listed = ", ".join(one_side[:6]) + (f", and {len(one_side) - 6} more" if len(one_side) > 6 else "")
        print(f"  reported by one tree only: {listed}")


def summary(tables: dict[str, list[Row]], noise: float) -> None:
    """How many figures are flagged, ours and the controls'."""
    print()
    print(
        f"Flagged: outside the noise band (above {1 + noise:.2f} or below {1 / (1 + noise):.2f}), "
        "on the same side of 1 in every round:"
    )
    for bench, table in tables.items():
        ours = [r for r in table if not r.control]
        controls = [r for r in table if r.control]
        flagged = [r for r in ours if r.flag]
        moved = sum(1 for r in controls if r.flag)
        print(
            f"  {bench}: {len(flagged)} of {len(ours)} figures of ours, {moved} of {len(controls)} controls"
            + "".join(f"\n    {r.flag:<6} {r.ratio:.3f}x  {r.name}" for r in flagged)
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev", help="the revision to compare with (a commit, branch or tag)")
    ap.add_argument(
        "--bench", default=",".join(BENCHES), help="which benchmarks, comma-separated (default all)"
    )
    ap.add_argument("--quick", action="store_true", help="run each benchmark's --quick smoke run")
    ap.add_argument(
        "--rounds", type=int, help=f"runs of each tree (default {ROUNDS_FULL}; {ROUNDS_QUICK} with --quick)"
    )
    ap.add_argument(
        "--noise", type=float, help=f"the noise band (default {NOISE_FULL}; {NOISE_QUICK} with --quick)"
    )
    ap.add_argument("--json", metavar="FILE", help="also write every row to FILE as JSON")
    args = ap.parse_args(argv)
    benches = [b.strip() for b in args.bench.split(",") if b.strip()]
    unknown = [b for b in benches if b not in BENCHES]
    if unknown or not benches:
        ap.error(f"--bench: choose among {', '.join(BENCHES)}")
    rounds = args.rounds or (ROUNDS_QUICK if args.quick else ROUNDS_FULL)
    noise = args.noise if args.noise is not None else (NOISE_QUICK if args.quick else NOISE_FULL)
    started = time.perf_counter()
    print(
        f"compare: {args.rev} against this tree: {', '.join(benches)}, {rounds} round(s)"
        + (", quick" if args.quick else "")
    )
    try:
        with worktree(args.rev) as other:
            runs, failed = measure({"REV": other, "current": ROOT}, benches, args.quick, rounds)
    except KeyboardInterrupt:
        print("compare: interrupted; the worktree is removed", file=sys.stderr)
        return 130
    tables: dict[str, list[Row]] = {}
    for bench in benches:
        if bench in failed:
            print(f"\n{label_of(bench)}: a run failed; not compared")
            continue
        if not runs[bench]["REV"] or not runs[bench]["current"]:
            where = "REV" if not runs[bench]["REV"] else "this tree"
            print(f"\n{label_of(bench)}: missing in {where}; not compared")
            continue
        tables[bench], one_side = rows(runs[bench], noise)
        print_table(bench, tables[bench], one_side, args.rev)
    summary(tables, noise)
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")
    if args.json:
        doc = {b: {r.name: r.json() for r in table} for b, table in tables.items()}
        Path(args.json).write_text(
            json.dumps({"rev": args.rev, "noise": noise, "rounds": rounds, "figures": doc}, indent=2) + "\n"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
