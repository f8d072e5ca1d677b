"""Generated programs (``silopt.generate``, issue 17, item 3): each verifies, prints and re-parses
identically, runs the same before and after ``-O``, and differentiates to derivatives that pass
``silopt.check_derivatives`` in both modes, with ``-O`` before differentiation too.

The examples are derandomized, so CI sees the same ones each run; ``GENERATOR_EXAMPLES`` raises
their number for a longer hunt (the tensor property takes a third of it).
"""

from __future__ import annotations

import collections
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings

from accel.numpy_backend import NumpyBackend
from differentiation.rules import RULES
from silopt import verify_derivatives
from silopt.generate import FEATURES, GeneratedProgram, check_program, generated, programs
from silopt.generate import ast as A
from silopt.mutate_rules import Mutant, mutated

EXAMPLES = int(os.environ.get("GENERATOR_EXAMPLES", "450"))
BACKEND = NumpyBackend()
TENSORS = frozenset({"tensor", "broadcast", "element", "loop", "branch", "float"})

PROPERTY = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _assert_has_every_property(program: GeneratedProgram) -> None:
    note(program.text)
    failures = check_program(program, BACKEND)
    assert failures == [], "\n".join(f"{f.kind}: {f.message}" for f in failures)


@settings(PROPERTY, max_examples=EXAMPLES * 2 // 3)
@given(program=programs())
def test_every_generated_program_has_every_property(program: GeneratedProgram) -> None:
    _assert_has_every_property(program)


@settings(PROPERTY, max_examples=EXAMPLES // 3)
@given(program=programs(TENSORS))
def test_every_generated_tensor_program_has_every_property(program: GeneratedProgram) -> None:
    _assert_has_every_property(program)


def test_the_generator_reaches_every_feature() -> None:
    reached: collections.Counter[str] = collections.Counter()

    @settings(PROPERTY, max_examples=150, phases=[Phase.generate])
    @given(program=programs())
    def sample(program: GeneratedProgram) -> None:
        reached.update(program.features)

    sample()
    assert set(FEATURES) <= reached.keys(), set(FEATURES) - reached.keys()


@settings(PROPERTY, max_examples=40, phases=[Phase.generate])
@given(program=programs(frozenset({"branch", "loop"})))
def test_a_restricted_generator_uses_only_the_features_it_is_given(program: GeneratedProgram) -> None:
    assert program.features <= {"branch", "loop"}
    for absent in ("Tensor", "struct", "enum", "tuple", "apply", "Float", "no_derivative"):
        assert absent not in program.text


# sin(x) * y, differentiated with respect to both: every rule a mistake below is in is reached.
SIN_TIMES_Y = generated(
    A.Program(
        "Double",
        None,
        False,
        (),
        None,
        (A.Return(A.Binary("fmul", A.Unary("sin", A.Var("x")), A.Var("y"))),),
        (0, 1),
    )
)


def test_a_right_program_passes() -> None:
    assert check_program(SIN_TIMES_Y, BACKEND) == []


@pytest.mark.parametrize(
    "mutant",
    [
        Mutant("sin", "differential-doubled"),
        Mutant("sin", "pullback-negated", (0,)),
        Mutant("fmul", "pullback-swapped", (0, 1)),
    ],
    ids=lambda m: m.key,
)
def test_a_wrong_derivative_is_caught(mutant: Mutant, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong rule (as ``silopt.mutate_rules`` makes them) gives a wrong JVP or VJP: both
    placements report it, and so does the second order (whose first derivative is wrong), and
    nothing else fails."""
    monkeypatch.setitem(RULES, mutant.rule, mutated(RULES[mutant.rule], mutant))
    failures = check_program(SIN_TIMES_Y, BACKEND)
    assert [f.kind for f in failures] == ["derivatives", "derivatives after -O", "second order"]
    assert all("disagree" in f.message for f in failures)


def test_the_second_order_stage_checks_the_gradient_and_the_hessians_symmetry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stage runs the first differentiation unverified (stage "derivatives" verifies what it
    emits), but verifies the lowered gradient @hvp asks for, and the symmetry of its Hessian."""
    checked: list[str] = []
    symmetry = verify_derivatives.hessian_asymmetry

    def counted(*args: Any, **kwargs: Any) -> Any:
        checked.append(args[1].describe())
        return symmetry(*args, **kwargs)

    monkeypatch.setattr(verify_derivatives, "hessian_asymmetry", counted)
    assert [f.kind for f in check_program(SIN_TIMES_Y, BACKEND)] == []
    assert checked == ["@AD__f__grad_src_0_wrt_0_1 (source 0, 1 wrt 0, 1)"]
