"""The optimization passes on random modules (the round-trip property's generator: every
instruction, random CFGs with loops, switches and unreachable blocks): the module verifies after
each pass, use-lists stay exact, and it prints canonically."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from sil import parse, print_module, verify_module
from sil.ir import Module, Value
from sil.passes import PassManager, registered_passes
from tests.sil.test_roundtrip_property import Gen
from tests.sil.transforms.test_preservation import PRESERVING


def _use_lists_exact(module: Module) -> bool:
    for fn in module.functions.values():
        defined: list[Value] = []
        slots: dict[int, int] = {}
        for block in fn.blocks:
            defined.extend(block.args)
            for inst in block.instructions:
                defined.extend(inst.results)
                for op in inst.operands:
                    slots[id(op)] = slots.get(id(op), 0) + 1
        if any(len(v.uses) != slots.get(id(v), 0) for v in defined):
            return False
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), passes=st.sampled_from(PRESERVING))
def test_passes_keep_random_modules_well_formed(seed: int, passes: tuple[str, ...]) -> None:
    text = print_module(Gen(random.Random(seed), 4, 8, 10).module())
    note(text)
    module = parse(text)
    registry = registered_passes()
    PassManager([registry[p]() for p in passes]).run(module)
    assert [d.render() for d in verify_module(module)] == []
    assert _use_lists_exact(module)
    printed = print_module(module)
    assert print_module(parse(printed)) == printed
