"""-dce keeps what a run would show: an unused builtin that can fault (on scalars or on shapes)
still faults."""

from __future__ import annotations

import numpy as np
import pytest

from interp import Program, RunError
from sil import parse, print_module
from sil.instructions import BuiltinInst
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


TENSORS = """
sil @g : $@convention(thin) (Tensor<Double>, Tensor<Double>, Double, Int) -> Double {
bb0(%a : $Tensor<Double>, %b : $Tensor<Double>, %x : $Double, %n : $Int):
  %product = builtin "matmul"(%a : $Tensor<Double>, %b : $Tensor<Double>) : $Tensor<Double>
  %sum = builtin "fadd"(%a : $Tensor<Double>, %b : $Tensor<Double>) : $Tensor<Double>
  %flat = builtin "reshape"(%a : $Tensor<Double>, %n : $Int) : $Tensor<Double>
  %read = builtin "element"(%a : $Tensor<Double>, %n : $Int) : $Double
  %made = builtin "zeros"(%n : $Int) : $Tensor<Double>
  %size = builtin "dim"(%a : $Tensor<Double>, %n : $Int) : $Int
  %e = builtin "exp"(%a : $Tensor<Double>) : $Tensor<Double>
  %scaled = builtin "fmul"(%e : $Tensor<Double>, %x : $Double) : $Tensor<Double>
  %t = builtin "transpose"(%a : $Tensor<Double>) : $Tensor<Double>
  %s = builtin "shape"(%a : $Tensor<Double>) : $TensorShape
  %total = builtin "sum"(%a : $Tensor<Double>) : $Double
  return %x : $Double
}
"""


def test_unused_tensor_builtins_that_can_fault_on_shapes_stay() -> None:
    module = parse(TENSORS)
    assert eliminate_dead_code(module.functions["g"]) == 5  # exp, fmul, transpose, shape, sum
    kept = [inst.name for inst in module.functions["g"].instructions() if isinstance(inst, BuiltinInst)]
    assert kept == ["matmul", "fadd", "reshape", "element", "zeros", "dim"]


def test_a_run_that_faults_on_shapes_still_faults_after_dce() -> None:
    before = parse(TENSORS)
    after = parse(TENSORS)
    eliminate_dead_code(after.functions["g"])
    a, b = np.ones((2, 3)), np.ones((2, 3))  # they add, but do not multiply
    for module in (before, after):
        with pytest.raises(RunError, match="matmul"):
            Program(module).run("@g", a, b, 1.0, 6)
