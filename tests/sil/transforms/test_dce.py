"""-dce keeps what a run would show: an unused builtin that can fault still faults."""

from __future__ import annotations

import pytest

from sil import parse, print_module
from sil.transforms.dce import eliminate_dead_code

TEXT = """
sil @f : $@convention(thin) (Int, Double) -> Int {{
bb0(%a : $Int, %x : $Double):
  %unused = builtin "{name}"({operands}) : $Int
  %dead = builtin "add"(%a : $Int, %a : $Int) : $Int
  return %a : $Int
}}
"""


@pytest.mark.parametrize(
    ("name", "operands"),
    [("sdiv", "%a : $Int, %a : $Int"), ("srem", "%a : $Int, %a : $Int"), ("fptosi", "%x : $Double")],
)
def test_an_unused_faulting_builtin_stays_and_the_harmless_one_goes(name: str, operands: str) -> None:
    module = parse(TEXT.format(name=name, operands=operands))
    assert eliminate_dead_code(module.functions["f"]) == 1
    printed = print_module(module)
    assert f'builtin "{name}"' in printed and '"add"' not in printed
