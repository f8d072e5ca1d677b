"""The interpreter tests run every builtin of ``sil.builtins.BUILTINS``, every tensor operation of the
backend interface, and every registered instruction: adding one without an interpreter test fails."""

from __future__ import annotations

from accel.backend import OPERATIONS
from sil import parse
from sil.builtins import BUILTINS
from sil.ir import Instruction
from tests.interp import test_instructions, test_scalar_builtins, test_tensor_builtins
from tests.interp.support import FILENAME


def test_every_builtin_is_run() -> None:
    covered = test_scalar_builtins.COVERED_BUILTINS | test_tensor_builtins.COVERED_BUILTINS
    assert sorted(set(BUILTINS) - covered) == [], "builtins without an interpreter test"
    assert sorted(covered - set(BUILTINS)) == [], "tests name builtins that do not exist"


def test_every_tensor_operation_is_run_on_tensors() -> None:
    assert sorted(set(OPERATIONS) ^ test_tensor_builtins.COVERED_BUILTINS) == []


def test_every_instruction_is_run() -> None:
    used: set[str] = set()
    for text in test_instructions.PROGRAMS.values():
        for fn in parse(text, FILENAME).functions.values():
            used.update(inst.opname for inst in fn.instructions())
    assert sorted(set(Instruction.registry) - used) == [], "instructions without an interpreter test"
