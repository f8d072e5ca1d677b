"""The contract of every pass (``sil/passes.py``): one that reports an error leaves the module as it
was. Checked for every registered pass on every golden input that verifies but is expected to fail
(its RUN line is ``not silopt``): whichever passes fail on it, the printed module after the failed
pass is the one before."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from golden.harness import GOLDEN, case_paths, read_run_line
from sil import parse, print_module, verify_module
from sil.diagnostics import SILError
from sil.passes import PassContext, registered_passes


def _failing_inputs() -> list[Path]:
    """The golden inputs expected to fail that parse and verify: what a pass may be run on."""
    found = []
    for case in case_paths():
        if not read_run_line(case).expect_failure:
            continue
        try:
            module = parse(case.read_text(encoding="utf-8"), str(case))
        except SILError:
            continue
        if not verify_module(module):
            found.append(case)
    return found


@functools.cache
def _failed_passes(case: Path) -> list[tuple[str, str, str]]:
    """Each pass that fails on ``case``, with the module printed before it and after it."""
    text = case.read_text(encoding="utf-8")
    failed = []
    for name, cls in registered_passes().items():
        module = parse(text, str(case))
        before = print_module(module)
        try:
            cls().run(module, PassContext())
        except SILError:
            failed.append((name, before, print_module(module)))
    return failed


CASES = _failing_inputs()


@pytest.mark.parametrize("case", CASES, ids=[c.relative_to(GOLDEN).as_posix() for c in CASES])
def test_a_failed_pass_leaves_the_module_unchanged(case: Path) -> None:
    for name, before, after in _failed_passes(case):
        assert after == before, f"-{name} failed but changed the module"


def test_the_inputs_make_passes_fail() -> None:
    """The check above is not vacuous: among others, -lower-gradient fails on an input whose
    extracts it would lower (golden/differentiation/lower_gradient_refused.sil)."""
    failed = {(c.name, name) for c in CASES for name, _, _ in _failed_passes(c)}
    assert ("lower_gradient_refused.sil", "lower-gradient") in failed
    assert {name for _, name in failed} >= {
        "differentiation",
        "differentiation-diagnostics",
        "lower-gradient",
    }
