"""The preservation harness itself: it compares what it claims to, and a pass that changes
behaviour in the ways IEEE arithmetic allows for (a signed zero, Float rounding) fails it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sil.instructions import BuiltinInst, FloatLiteralInst
from sil.ir import Module
from sil.passes import Pass, PassContext, register_pass
from tests.sil.transforms.preservation import (
    POINTS,
    ArgumentDraw,
    check_preserves,
    fingerprint,
    prepared_text,
    subjects,
)

ADD_ZERO = """
sil @add_zero : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %z = float_literal $Float, 0.0
  %r = builtin "fadd"(%x : $Float, %z : $Float) : $Float
  return %r : $Float
}
"""

SUM_IN_FLOAT = """
sil @sum3 : $@convention(thin) (Float, Float, Float) -> Float {
bb0(%a : $Float, %b : $Float, %c : $Float):
  %ab = builtin "fadd"(%a : $Float, %b : $Float) : $Float
  %r = builtin "fadd"(%ab : $Float, %c : $Float) : $Float
  return %r : $Float
}
"""


@pytest.fixture
def wrong_passes(scratch_registry: None) -> Iterator[None]:
    """Two passes that are wrong in IEEE arithmetic: ``x + 0.0`` to ``x`` (wrong at -0.0) and
    ``(a + b) + c`` to ``a + (b + c)`` (reassociation: another rounding)."""

    @register_pass
    class FoldAddZero(Pass):
        name = "test-fold-add-zero"

        def run(self, module: Module, ctx: PassContext) -> None:
            for fn in module.functions.values():
                for inst in list(fn.instructions()):
                    zero = inst.operands[1].owner if isinstance(inst, BuiltinInst) else None  # type: ignore[attr-defined]
                    if isinstance(zero, FloatLiteralInst) and inst.opname == "builtin" and zero.value == 0.0:
                        inst.result.replace_all_uses_with(inst.operands[0])
                        inst.erase()

    @register_pass
    class Reassociate(Pass):
        name = "test-reassociate"

        def run(self, module: Module, ctx: PassContext) -> None:
            entry = module.functions["sum3"].entry
            ab, r = entry.instructions[0], entry.instructions[1]
            a, b = ab.operands
            c = r.operands[1]
            ab.set_operands([b, c])
            r.set_operands([a, ab.result])

    yield


def test_a_signed_zero_lost_is_caught(wrong_passes: None) -> None:
    assert check_preserves(ADD_ZERO, ["cse"]).calls > 0
    with pytest.raises(AssertionError, match="add_zero"):
        check_preserves(ADD_ZERO, ["test-fold-add-zero"])


def test_float_rounding_changed_is_caught(wrong_passes: None) -> None:
    with pytest.raises(AssertionError, match="sum3"):
        check_preserves(SUM_IN_FLOAT, ["test-reassociate"])


def test_fingerprints_tell_apart_what_compares_equal() -> None:
    assert fingerprint(0.0) != fingerprint(-0.0)
    assert fingerprint(np.float32(1.0)) != fingerprint(1.0)
    assert fingerprint(float("nan")) == fingerprint(float("nan"))
    assert fingerprint(np.array([0.0], np.float32)) != fingerprint(np.array([-0.0], np.float32))


def test_edge_values_are_drawn() -> None:
    from sil import parse
    from sil.types import FLOAT

    draw = ArgumentDraw(parse(ADD_ZERO), "seed")
    drawn = [draw.point([FLOAT], i)[0] for i in range(POINTS)]
    bits = {np.float32(x).tobytes() for x in drawn}
    assert np.float32(-0.0).tobytes() in bits and np.float32(0.0).tobytes() in bits
    assert any(np.isnan(x) for x in drawn) and any(np.isinf(x) for x in drawn)


def test_the_subjects_run_many_functions() -> None:
    """The harness compares hundreds of calls with cse alone (most golden functions draw)."""
    calls = 0
    skipped = 0
    for subject in subjects():
        if subject.id == "golden/run/fault_gradient_of_declaration.sil":
            continue
        report = check_preserves(prepared_text(subject), ["cse"], subject.id)
        calls += report.calls
        skipped += len(report.skipped)
    assert calls > 1000
    assert skipped < calls / 10
