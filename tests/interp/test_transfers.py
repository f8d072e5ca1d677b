"""Tensors stay backend arrays during a run: the only host transfers are arguments in, results
out and scalars taken out of tensors (SIL-SPEC §5, issue 3 item 5)."""

from __future__ import annotations

from typing import Any

import numpy as np

from accel import Backend
from accel.numpy_backend import NumpyBackend
from interp import Program
from sil import parse, verify_module


class CountingBackend(NumpyBackend):
    """The NumPy backend, counting every transfer between host and backend."""

    def __init__(self) -> None:
        super().__init__()
        self.transfers: list[str] = []

    def from_host(self, array: Any, dtype: Any) -> Any:
        self.transfers.append("in")
        return super().from_host(array, dtype)

    def to_host(self, t: Any) -> Any:
        self.transfers.append("out")
        return super().to_host(t)

    def to_host_scalar(self, t: Any) -> Any:
        self.transfers.append("scalar")
        return super().to_host_scalar(t)


def hundred_op_program() -> str:
    """``@chain(w, b)``: 100 tensor builtins on 8x8 Float tensors, no scalar taken out."""
    lines = [
        "sil @chain : $@convention(thin) (Tensor<Float>, Tensor<Float>) -> Tensor<Float> {",
        "bb0(%w : $Tensor<Float>, %b : $Tensor<Float>):",
        "  %eight = integer_literal $Int, 8",
        "  %sixty_four = integer_literal $Int, 64",
        "  %zero = integer_literal $Int, 0",
        "  %half = float_literal $Float, 0.5",
    ]
    t = "$Tensor<Float>"
    ops = [
        ("matmul", "%x{i} : {t}, %w : {t}"),
        ("fadd", "%x{i} : {t}, %b : {t}"),
        ("tanh", "%x{i} : {t}"),
        ("fmul", "%x{i} : {t}, %half : $Float"),
        ("transpose", "%x{i} : {t}"),
        ("reshape", "%x{i} : {t}, %sixty_four : $Int"),
        ("reshape", "%x{i} : {t}, %eight : $Int, %eight : $Int"),
        ("sum_axis", "%x{i} : {t}, %zero : $Int"),
        ("broadcast_to", "%x{i} : {t}, %eight : $Int, %eight : $Int"),
        ("relu", "%x{i} : {t}"),
    ]
    lines.append(f'  %x0 = builtin "fsub"(%w : {t}, %b : {t}) : {t}')
    count = 1
    i = 0
    while count < 100:
        name, operands = ops[i % len(ops)]
        lines.append(f'  %x{i + 1} = builtin "{name}"({operands.format(i=i, t=t)}) : {t}')
        i += 1
        count += 1
    lines += [f"  return %x{i} : {t}", "}"]
    return "\n".join(lines) + "\n"


def test_a_hundred_op_tensor_program_transfers_only_arguments_and_result() -> None:
    module = parse(hundred_op_program(), "chain.sil")
    assert verify_module(module) == []
    backend = CountingBackend()
    program = Program(module, backend)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 8)).astype(np.float32) / 8
    b = rng.standard_normal((8, 8)).astype(np.float32)
    result = program.run("@chain", w, b)
    assert backend.transfers == ["in", "in"]  # the run returns a backend array: nothing out yet
    host = backend.to_host(result)
    assert backend.transfers == ["in", "in", "out"]
    assert host.dtype == np.float32 and host.shape == (8, 8)
    assert np.all(np.isfinite(host))


def test_a_reduction_to_a_scalar_is_the_one_transfer_out() -> None:
    text = """\
sil @total : $@convention(thin) (Tensor<Double>) -> Double {
bb0(%t : $Tensor<Double>):
  %e = builtin "exp"(%t : $Tensor<Double>) : $Tensor<Double>
  %s = builtin "sum"(%e : $Tensor<Double>) : $Double
  return %s : $Double
}
"""
    backend = CountingBackend()
    result = Program(parse(text, "t.sil"), backend).run("@total", [0.0, 1.0])
    assert backend.transfers == ["in", "scalar"]
    assert result == float(np.exp(0.0) + np.exp(1.0))


def test_counting_backend_is_a_backend() -> None:
    assert isinstance(CountingBackend(), Backend)
