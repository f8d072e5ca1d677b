"""Every optimization pass preserves behaviour on every subject of the harness
(``tests/sil/transforms/preservation.py``): the module verifies after it, and each function gives
the same bits and the same faults on drawn arguments."""

from __future__ import annotations

import functools

import pytest

from sil import SILError, parse, print_module
from sil.passes import PassContext
from sil.transforms.optimize import MAX_ROUNDS, optimize
from tests.sil.transforms.preservation import Subject, check_preserves, optimized, prepared_text, subjects

# The passes (and pipelines) that must preserve behaviour; a new pass adds itself here.
PRESERVING: list[tuple[str, ...]] = [
    ("dce",),
    ("cse",),
    ("canonicalize",),
    ("simplify-cfg",),
    ("dead-function-elim",),
    ("licm",),
    ("loop-unroll",),
    ("inline",),
    ("inline", "simplify-cfg", "canonicalize"),
    ("sroa",),
    ("sroa", "canonicalize", "dead-function-elim"),
    ("O",),
    ("canonicalize", "cse", "simplify-cfg", "canonicalize"),
    ("closure-specialize",),
    ("closure-specialize", "canonicalize", "dead-function-elim"),
]

SUBJECTS = subjects()
# Cases whose run is refused before it starts (the request the run needs cannot be lowered):
# nothing of them runs, so only the unlowered check applies.
UNPREPARED = {"golden/run/fault_gradient_of_declaration.sil"}
RUNNING = [s for s in SUBJECTS if s.id not in UNPREPARED]


@functools.cache
def _prepared(subject: Subject) -> str:
    return prepared_text(subject)


def test_unprepared_subjects_are_refused_runs() -> None:
    for subject in SUBJECTS:
        if subject.id in UNPREPARED:
            with pytest.raises(SILError):
                prepared_text(subject)


def test_the_harness_has_subjects_of_every_kind() -> None:
    kinds = {s.id.split("/")[0] for s in SUBJECTS}
    assert kinds == {"golden", "examples"}
    assert sum(s.id.endswith(".expected") for s in SUBJECTS) >= 20
    assert sum(s.run is not None for s in SUBJECTS) >= 25


@pytest.mark.parametrize("passes", PRESERVING, ids=" ".join)
@pytest.mark.parametrize("subject", RUNNING, ids=lambda s: s.id)
def test_pass_preserves_behaviour(subject: Subject, passes: tuple[str, ...]) -> None:
    check_preserves(_prepared(subject), passes, subject.id)


@pytest.mark.parametrize("passes", PRESERVING, ids=" ".join)
@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: s.id)
def test_pass_keeps_unlowered_modules_verifying(subject: Subject, passes: tuple[str, ...]) -> None:
    """Before differentiation too: requests and all, the module verifies after the passes."""
    optimized(subject.text(), passes, subject.id)


@pytest.mark.parametrize("subject", RUNNING, ids=lambda s: s.id)
def test_optimize_reaches_a_fixed_point_within_a_few_rounds(subject: Subject) -> None:
    """-O: a round enables the next (a merged block folds further, an inlined call exposes a
    closure that the next round calls directly and inlines), so a few rounds are needed; many would
    mean passes undoing each other, which MAX_ROUNDS stops."""
    module = parse(_prepared(subject), subject.id)
    assert optimize(module, PassContext()) <= 6 < MAX_ROUNDS
    again = print_module(module)
    assert optimize(module, PassContext()) == 1  # a fixed point stays one
    assert print_module(module) == again
