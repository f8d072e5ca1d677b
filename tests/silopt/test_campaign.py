"""Campaigns (``python -m silopt.campaign``, issue 17, item 4): reproducible by seed, clean on this
tree, a planted wrong rule saved as a ``.sil`` that its own commands show failing, and the same
summary on a Dask cluster as on the local pool."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from differentiation.rules import RULES
from silopt import campaign, campaign_tasks
from silopt.campaign import main, run_campaign
from silopt.campaign_tasks import FILE, Outcome, Task, run_task
from silopt.fuzz import run_silopt
from silopt.mutate_rules import Mutant, mutated

SMALL = {"programs": 20, "inputs": 40, "seed": 7}


def _campaign(out: Path, **more: object) -> dict[str, object]:
    stdout, stderr = io.StringIO(), io.StringIO()
    argv = [f"--{k}={v}" for k, v in {**SMALL, **more}.items()]
    status = main([*argv, f"--out={out}"], stdout, stderr)
    summary: dict[str, object] = json.loads(stdout.getvalue().splitlines()[-1])
    assert status == (1 if summary["failures"] else 0)
    assert "4/4 tasks" in stderr.getvalue()
    del summary["seconds"]
    return summary


def test_a_small_campaign_is_reproducible_and_finds_nothing(tmp_path: Path) -> None:
    first = _campaign(tmp_path / "a", jobs=2)
    assert first == _campaign(tmp_path / "b", jobs=2)
    assert first == {"seed": 7, "programs": 20, "inputs": 40, "failures": 0, "distinct": 0, "saved": []}
    assert not (tmp_path / "a").exists()


def test_a_wrong_rule_is_saved_with_the_commands_that_show_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run in this process, where the wrong rule is installed (a pool's workers would not have it)."""
    mutant = Mutant("fadd", "pullback-negated", (0,))
    monkeypatch.setitem(RULES, mutant.rule, mutated(RULES[mutant.rule], mutant))
    outcome = run_task(Task("generate", 0, 0, 10, shrink_seconds=2.0))
    assert [f.kind for f in outcome.found] == ["derivatives"]
    found = outcome.found[0]
    assert FILE in found.header
    summary = run_campaign(10, 0, 0, tmp_path, jobs=1, shrink_seconds=2.0)
    assert summary.failures == 1 and len(summary.saved) == 1
    saved = Path(summary.saved[0])
    text = saved.read_text(encoding="utf-8")
    commands = [
        line.removeprefix("// RUN: ").split() for line in text.splitlines() if line.startswith("// RUN:")
    ]
    assert commands[0] == ["python", "-m", "silopt.campaign", "--recheck", str(saved)]
    assert main(commands[0][3:], io.StringIO(), io.StringIO()) == 1
    assert commands[1] == ["silopt", str(saved), "--check-derivatives"]
    status, out, _ = run_silopt(commands[1][1:])
    assert status == 1 and "FAILED" in out


def _planted_traceback(real: Callable[..., tuple[int, str, str]]) -> Callable[..., tuple[int, str, str]]:
    """``run_silopt`` with a bug planted: it raises on any input with an ``fmul``."""

    def planted(argv: list[str], stdin: str = "", seconds: int = 10) -> tuple[int, str, str]:
        if "fmul" in stdin.split("// mutated", 1)[-1].split("\n", 1)[-1]:
            raise KeyError("planted")
        return real(argv, stdin, seconds)

    return planted


def test_a_traceback_on_a_mutated_input_is_saved_minimized_with_its_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A planted bug: silopt raises on any input with an ``fmul`` (in this process, where it is
    planted). The fuzzer finds it, saves each distinct failure once, minimized to the token that
    shows it, headed by the command that runs it, which fails the same way."""
    planted = _planted_traceback(run_silopt)
    monkeypatch.setattr(campaign_tasks, "run_silopt", planted)
    summary = run_campaign(0, 50, 3, tmp_path, jobs=1)
    assert summary.failures >= 1 and len(summary.saved) == 1
    assert not (tmp_path / "unsorted").exists()  # a run that ends keeps the distinct ones only
    assert summary.distinct[0] == "traceback: KeyError: '…' (in test_campaign.py, planted)"
    text = Path(summary.saved[0]).read_text(encoding="utf-8")
    header, _, body = text.partition("\n// mutated")
    assert header.startswith(f"// RUN: silopt {summary.saved[0]}")
    assert "fmul" in body and len(body.split("\n", 1)[1]) < 40, body
    with pytest.raises(KeyError, match="planted"):
        planted(["-"], text)


def test_a_run_stopped_before_its_end_keeps_what_it_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each failure is saved as its task ends: a run interrupted after that keeps it."""
    monkeypatch.setattr(campaign_tasks, "run_silopt", _planted_traceback(run_silopt))

    def interrupted(work: list[Task], jobs: int, scheduler: str | None) -> Iterator[Outcome]:
        yield from map(run_task, work[:2])
        raise KeyboardInterrupt

    monkeypatch.setattr(campaign, "outcomes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_campaign(0, 50, 3, tmp_path, jobs=1)
    kept = sorted((tmp_path / "unsorted").glob("fuzz-*-traceback.sil"))
    assert kept and all("// RUN: silopt " + str(p) in p.read_text(encoding="utf-8") for p in kept)


def test_a_dask_run_gives_the_same_summary(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    local = _campaign(tmp_path / "local", jobs=1)
    # Worker processes: hypothesis, drawing in a worker thread of this process, would see the
    # scheduler's threads use the global random state, which it warns of.
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True) as cluster:
        assert _campaign(tmp_path / "dask", scheduler=cluster.scheduler_address) == local


SAVED = sorted((Path(__file__).resolve().parents[2] / "docs" / "campaign-failures").glob("*.sil"))


@pytest.mark.parametrize("saved", SAVED, ids=lambda p: p.name)
def test_the_failures_campaigns_found_and_docs_keep_are_fixed(saved: Path) -> None:
    """Each failure docs/verification.md records as found and fixed rechecks clean."""
    assert SAVED
    assert campaign_tasks.recheck_text(saved.read_text(encoding="utf-8")) == []
