"""The SR-9395 migration passes keep behaviour: every golden legacy module gives the same gradients
(its @main) before and after each pass, at several points; what a pass cannot rewrite safely is
refused with a located diagnostic and leaves the module as it was."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest

from accel.numpy_backend import NumpyBackend
from golden.harness import GOLDEN
from interp import Program
from sil import parse, print_module, verify_module
from sil.diagnostics import SILError
from sil.ir import LegacyDifferentiableAttr
from sil.passes import PassManager, registered_passes
from silopt.driver import main
from silopt.run import lower_derivatives

MIGRATION = [
    "reverse-adjoint-params",
    "synthesize-vjp",
    "checkpoint-active-applies",
    "move-originals-into-checkpoints",
    "remove-primal-adjoint",
    "lower-gradient",
]
MODULES = sorted((GOLDEN / "legacy").rglob("*.sil"))
POINTS = [0.3, 0.7, 1.9]


def flat(values: object) -> list[float]:
    """The numbers of nested tuples in order, for ``pytest.approx``, which compares flat sequences
    only (pytest 9 rejects nested ones; pytest 8 compared them exactly, ignoring ``rel``)."""
    if isinstance(values, (tuple, list)):
        return [x for v in values for x in flat(v)]
    assert isinstance(values, (int, float)), values
    return [float(values)]


def gradients(text: str) -> list[object]:
    module = parse(text, "legacy.sil")
    assert verify_module(module) == []
    lower_derivatives(module)
    program = Program(module, NumpyBackend())
    arity = len(module.functions["main"].type.params)
    return [program.run("@main", *([x] * arity)) for x in POINTS]


@pytest.mark.parametrize("case", MODULES, ids=[m.relative_to(GOLDEN / "legacy").as_posix() for m in MODULES])
def test_each_pass_keeps_the_gradients(case: Path) -> None:
    """The pipeline in order, the module checked after every pass."""
    text = case.read_text(encoding="utf-8")
    expected = gradients(text)
    module = parse(text, case.name)
    for name in MIGRATION:
        PassManager([registered_passes()[name]()], verify_each=True).run(module)
        assert flat(gradients(print_module(module))) == pytest.approx(flat(expected), rel=1e-12), (
            f"after -{name}"
        )
    assert not any(
        isinstance(a, LegacyDifferentiableAttr) for f in module.functions.values() for a in f.attributes
    )


def test_reversing_twice_changes_nothing() -> None:
    """The attribute says the adjoint takes the seed first, so a second run does not reverse it again,
    even where the type reads the same in both orders."""
    for case in MODULES:
        module = parse(case.read_text(encoding="utf-8"), case.name)
        reverse = registered_passes()["reverse-adjoint-params"]
        PassManager([reverse()], verify_each=True).run(module)
        once = print_module(module)
        PassManager([reverse()], verify_each=True).run(module)
        assert print_module(module) == once, case


ONE_PARAMETER = GOLDEN / "legacy" / "one_parameter" / "reverse_adjoint_params.sil"


def after_each_pass(text: str) -> list[tuple[str, Program]]:
    """The module as given and after each migration pass in turn (verified after each), lowered
    and ready to run."""
    module = parse(text, ONE_PARAMETER.name)
    steps = [("(none)", text)]
    for name in MIGRATION:
        PassManager([registered_passes()[name]()], verify_each=True).run(module)
        steps.append((name, print_module(module)))
    programs = []
    for name, printed in steps:
        lowered = parse(printed, f"after-{name}.sil")
        lower_derivatives(lowered)
        programs.append((name, Program(lowered, NumpyBackend())))
    return programs


def test_the_cube_has_its_gradient_after_every_pass() -> None:
    """f(x) = x * x * x in Float, whose adjoint (Float, C, Float, Float) reads the same in both
    orders: f'(2) = 12 and f'(3) = 27 exactly, before and after every pass (81 at 3 is the seed
    and x swapped)."""
    for name, program in after_each_pass(ONE_PARAMETER.read_text(encoding="utf-8")):
        assert [program.run("@df", x) for x in (2.0, 3.0)] == [12.0, 27.0], f"after -{name}"


def test_the_one_parameter_chain_matches_finite_differences_after_every_pass() -> None:
    """In Double, the gradients of f(x) = x^3 and of g(x) = f(sin x) (@df, @main) against central
    differences of @f and @g, before and after every pass."""
    text = ONE_PARAMETER.read_text(encoding="utf-8").replace("Float", "Double")
    h = 1e-5
    for name, program in after_each_pass(text):
        for gradient, original in (("@df", "@f"), ("@main", "@g")):
            for x in [*POINTS, 2.0, 3.0]:
                numeric = (program.run(original, x + h) - program.run(original, x - h)) / (2 * h)
                value = program.run(gradient, x)
                assert math.isclose(value, numeric, rel_tol=1e-7, abs_tol=1e-9), (name, gradient, x)


@pytest.mark.parametrize(("x", "printed"), [("2.0", "12.0\n"), ("3.0", "27.0\n")])
def test_the_whole_migration_in_one_command_keeps_the_cube_gradient(x: str, printed: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = [str(ONE_PARAMETER), *(f"-{name}" for name in MIGRATION), "--verify-each", "--run", "@df"]
    assert main([*argv, "--args", x], io.StringIO(""), out, err) == 0, err.getvalue()
    assert out.getvalue() == printed


def test_moving_the_originals_before_checkpointing_the_calls_works_too() -> None:
    """Any order after the prerequisites: here -move-originals-into-checkpoints before
    -checkpoint-active-applies, which then rewrites calls of moved (seed, checkpoints) adjoints."""
    text = (GOLDEN / "legacy" / "reverse_adjoint_params.sil").read_text(encoding="utf-8")
    expected = gradients(text)
    module = parse(text, "nested.sil")
    order = [
        "reverse-adjoint-params",
        "synthesize-vjp",
        "move-originals-into-checkpoints",
        "checkpoint-active-applies",
    ]
    for name in order:
        PassManager([registered_passes()[name]()], verify_each=True).run(module)
        assert flat(gradients(print_module(module))) == pytest.approx(flat(expected), rel=1e-12), (
            f"after -{name}"
        )
    g_adjoint = module.functions["g_adjoint"]
    assert not any(
        getattr(inst, "function_name", None) == "f_adjoint" for inst in g_adjoint.instructions()
    ), "the nested adjoint call was not replaced by a pullback call"


def test_synthesizing_a_vjp_needs_the_seed_first() -> None:
    text = (GOLDEN / "legacy" / "runs_as_it_is.sil").read_text(encoding="utf-8")
    module = parse(text, "runs_as_it_is.sil")
    with pytest.raises(SILError, match="its seed is not its first parameter"):
        PassManager([registered_passes()["synthesize-vjp"]()]).run(module)


def test_removing_the_legacy_form_needs_a_vjp() -> None:
    module = parse((GOLDEN / "legacy" / "runs_as_it_is.sil").read_text(encoding="utf-8"), "m.sil")
    with pytest.raises(SILError, match="no VJP answers source 0 wrt 0, 1"):
        PassManager([registered_passes()["remove-primal-adjoint"]()]).run(module)


def test_reversing_an_adjoint_used_as_a_value_is_refused() -> None:
    text = (GOLDEN / "legacy" / "runs_as_it_is.sil").read_text(encoding="utf-8")
    text += """
sil @leaks : $@convention(thin) (Double, Double, f_Checkpoints, Double) -> LEAKED {
bb0(%x : $Double, %y : $Double, %cp : $f_Checkpoints, %r : $Double):
  %a = function_ref @f_adjoint : $ADJOINT
  %p = partial_apply [callee_guaranteed] %a(%r) : $ADJOINT
  return %p : $LEAKED
}
"""
    adjoint = "@convention(thin) (Double, Double, f_Checkpoints, Double, Double) -> (Double, Double)"
    closure = "@callee_guaranteed (Double, Double, f_Checkpoints, Double) -> (Double, Double)"
    module = parse(text.replace("ADJOINT", adjoint).replace("LEAKED", closure), "leaks.sil")
    assert verify_module(module) == []
    before = print_module(module)
    with pytest.raises(SILError) as e:
        PassManager([registered_passes()["reverse-adjoint-params"]()]).run(module)
    (d,) = e.value.diagnostics
    assert "cannot reverse the parameters of '@f_adjoint'" in d.message and d.span is not None
    assert print_module(module) == before


def test_the_passes_are_listed() -> None:
    out = io.StringIO()
    assert main(["--list-passes"], io.StringIO(""), out, io.StringIO()) == 0
    for name in MIGRATION:
        assert name in out.getvalue()


def test_checkpointing_a_call_needs_the_callees_vjp() -> None:
    module = parse(
        (GOLDEN / "legacy" / "reverse_adjoint_params.expected").read_text(encoding="utf-8"), "m.sil"
    )
    with pytest.raises(SILError, match="has no VJP \\(run -synthesize-vjp first\\)"):
        PassManager([registered_passes()["checkpoint-active-applies"]()]).run(module)
