"""``--run`` (silopt/run.py): what a run reaches is lowered in the caller's module, which stays whole."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from accel import Backend, select_backend
from sil import parse, print_module
from sil.diagnostics import SILError
from sil.ir import Module
from sil.passes import PassManager, get_pass
from sil.verifier import verify_module
from silopt.driver import main
from silopt.run import lower_reached, reached_from, run_function

ROOT = Path(__file__).resolve().parent.parent.parent
UNREACHED_REQUEST = (ROOT / "golden" / "run" / "unreached_request.sil").read_text(encoding="utf-8")
GRADIENT = (ROOT / "golden" / "run" / "gradient.sil").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def numpy_backend() -> Backend:
    return select_backend("numpy")


def _function_text(module: Module, name: str) -> str:
    """``@name`` as printed in ``module``."""
    text = print_module(module)
    start = text.index(f"sil @{name} ")
    return text[start : text.index("\n}\n", start) + 3]


def test_the_caller_s_module_gets_what_lowering_adds(numpy_backend: Backend) -> None:
    module = parse(UNREACHED_REQUEST, "m.sil")
    unused = _function_text(module, "unused")
    assert run_function(module, "@main", ["3.0"], numpy_backend, None, 100) == "6.0\n"
    assert verify_module(module) == [], "@main calls a gradient function the module must hold"
    assert "AD__square__grad_src_0_wrt_0" in module.functions
    assert "gradient" not in _function_text(module, "main")
    assert _function_text(module, "unused") == unused, "a request the run cannot reach stays"


def test_a_request_that_cannot_be_differentiated_leaves_the_module_as_it_was(
    numpy_backend: Backend,
) -> None:
    module = parse(UNREACHED_REQUEST, "m.sil")
    before = print_module(module)
    with pytest.raises(SILError, match="not differentiable"):
        run_function(module, "@unused", ["3.0"], numpy_backend, None, 100)
    assert print_module(module) == before
    assert verify_module(module) == []


def _differentiated(text: str) -> str:
    """``text`` after ``-differentiation``, printed (its gradients not lowered)."""
    module = parse(text, "in.sil")
    differentiation = get_pass("differentiation")
    assert differentiation is not None
    PassManager([differentiation()]).run(module)
    return print_module(module)


def test_a_module_differentiated_earlier_runs_with_the_derivatives_it_holds(numpy_backend: Backend) -> None:
    """The VJP of @square is not referenced by @g (its gradient finds it by name): the passes must
    see it, or they synthesize it again and its checkpoints struct's name is taken."""
    text = _differentiated(GRADIENT)
    module = parse(text, "d.sil")
    earlier = dict(module.functions)
    assert run_function(module, "@g", ["3.0"], numpy_backend, None, 100) == "6.0\n"
    assert verify_module(module) == []
    assert all(module.functions[n] is fn for n, fn in earlier.items())
    assert set(module.functions) - set(earlier) == {"AD__square__grad_src_0_wrt_0"}
    out, err = io.StringIO(), io.StringIO()
    assert main(["-", "--run", "@g", "--args", "3.0"], io.StringIO(text), out, err) == 0
    assert (out.getvalue(), err.getvalue()) == ("6.0\n", "")


def test_a_function_set_aside_with_a_name_lowering_gives_is_an_error() -> None:
    """A function the run cannot reach, holding a request, named as lowering names what it makes:
    a located error, not two functions of one name."""
    squatter = GRADIENT.replace("sil @g ", "sil @AD__square__grad_src_0_wrt_0 ", 1)
    module = parse(squatter + GRADIENT.split("\n\n", 2)[2], "m.sil")
    with pytest.raises(SILError) as info:
        lower_reached(module, "g")
    (error,) = info.value.diagnostics
    assert "'@AD__square__grad_src_0_wrt_0' is defined" in error.message
    assert error.span == module.functions["AD__square__grad_src_0_wrt_0"].span


def test_what_a_run_reaches_is_the_call_graph_s() -> None:
    module = parse(UNREACHED_REQUEST, "m.sil")
    assert list(reached_from(module, "main").functions) == ["square", "main"]
    assert list(reached_from(module, "unused").functions) == ["round", "unused"]
