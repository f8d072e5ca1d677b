"""Tensors stay backend arrays during a run: the only host transfers are arguments in, results
out and scalars taken out of tensors (SIL-SPEC §5, issue 3 item 5)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from accel import Backend, BackendUnavailable
from accel.cupy_backend import CupyBackend
from accel.numpy_backend import NumpyBackend
from benchmarks.common import mlp_sil
from interp import Program
from sil import parse, verify_module
from sil.instructions import BuiltinInst
from sil.passes import PassManager, registered_passes
from sil.types import TensorType
from silopt import driver  # noqa: F401  (registers the differentiation passes)
from tests.accel.conformance import TransferCounter


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


def mlp_gradient_text() -> str:
    """``@loss(x, t, w1, b1, w2, b2, w3, b3)``: a 3-layer tanh MLP's mean squared error, the
    biases broadcast along the batch, and ``@grad`` its gradient by the weights and biases."""
    t = "$Tensor<Float>"
    params = ("x", "t", "w1", "b1", "w2", "b2", "w3", "b3")
    grads = f"({', '.join(['Tensor<Float>'] * 6)})"
    lines, h, fn_type = mlp_sil("loss", params, "Float")  # the layers the benchmarks run
    lines += [
        f'  %d = builtin "fsub"({h} : {t}, %t : {t}) : {t}',
        f'  %sq = builtin "fmul"(%d : {t}, %d : {t}) : {t}',
        f'  %l = builtin "mean"(%sq : {t}) : $Float',
        "  return %l : $Float",
        "}",
        f"sil @grad : $@convention(thin) ({', '.join(['Tensor<Float>'] * 8)}) -> {grads} {{",
        f"bb0({', '.join(f'%{p} : {t}' for p in params)}):",
        f"  %f = function_ref @loss : {fn_type}",
        f"  %g = gradient [wrt 2, 3, 4, 5, 6, 7] %f : {fn_type}",
        f"  %r = apply %g({', '.join(f'%{p}' for p in params)}) : $@convention(thin) "
        f"({', '.join(['Tensor<Float>'] * 8)}) -> {grads}",
        f"  return %r : ${grads}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def available_backends() -> list[Any]:
    """NumPy, and CuPy where it runs (``benchmarks/gpu_check.sh`` runs this test on a GPU)."""
    try:
        cupy = CupyBackend()
    except BackendUnavailable as exc:
        return ["numpy", pytest.param("cupy", marks=pytest.mark.skip(reason=f"CuPy: {exc}"))]
    return ["numpy", pytest.param(cupy, id="cupy")]


@pytest.mark.parametrize("chosen", available_backends())
def test_the_mlp_gradient_transfers_only_its_scalars(chosen: Backend | str) -> None:
    """The gradient runs some forty tensor builtins; the only transfers are the scalars its SIL
    takes out of tensors (the loss's ``mean``, and whatever reduction the pullback makes to a
    scalar), none per operation, and the arguments and results when the caller moves them."""
    backend = NumpyBackend() if chosen == "numpy" else chosen
    assert isinstance(backend, Backend)
    module = parse(mlp_gradient_text(), "mlp.sil")
    PassManager([registered_passes()[name]() for name in ("differentiation", "lower-gradient")]).run(module)
    assert verify_module(module) == []
    grad = Program(module, backend).function("@grad")
    tensor_ops = scalar_outs = 0
    for fn in module.functions.values():
        if fn.name.startswith("AD__loss__"):
            for inst in fn.instructions():
                if isinstance(inst, BuiltinInst) and inst.operands:
                    tensor_ops += isinstance(inst.operands[0].type, TensorType)
                    scalar_outs += inst.name in ("sum", "mean", "element", "scalar_from_tensor")
    rng = np.random.default_rng(3)
    shapes = [(16, 8), (16, 4), (8, 32), (32,), (32, 32), (32,), (32, 4), (4,)]
    host = [rng.standard_normal(s).astype(np.float32) / 4 for s in shapes]
    counter = TransferCounter(backend)
    args = [backend.from_host(a, np.float32) for a in host]
    grads = grad(1, *args)
    assert counter.counts == {"from_host": 8, "to_host": 0, "to_host_scalar": scalar_outs}
    assert tensor_ops >= 30 and 1 <= scalar_outs <= 2
    results = [backend.to_host(g) for g in grads]
    assert counter.counts["to_host"] == 6
    assert [r.shape for r in results] == shapes[2:]
