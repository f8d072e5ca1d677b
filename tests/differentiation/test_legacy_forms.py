"""The legacy form as ``differentiation/legacy`` describes it to the core: the types of its primal
and adjoint, the verifier's check of its attributes (registered by the package, never skipped), and
the ``gradient`` of a function still in the form."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import cast

import attrs

from differentiation.legacy.forms import legacy_adjoint_forms, legacy_primal_type, stated_adjoint_forms
from golden.harness import ROOT
from sil import parse, verify_module
from sil.ir import FunctionAttr, Module
from sil.types import FunctionType, NominalType

DECLS = """\
struct f_Checkpoints {
  var v: Float
}
"""
BINARY = "@convention(thin) (Float, Float) -> Float"


def module() -> Module:
    return parse(DECLS)


def fn(text: str) -> FunctionType:
    return parse(f"{DECLS}sil @f : ${text}\n").functions["f"].type


def test_legacy_primal_type() -> None:
    cp = NominalType("f_Checkpoints")
    assert (
        str(legacy_primal_type(fn(BINARY), cp))
        == "@convention(thin) (Float, Float) -> (f_Checkpoints, Float)"
    )


def test_legacy_adjoint_forms() -> None:
    cp = NominalType("f_Checkpoints")
    forms = {k: str(t) for k, t in legacy_adjoint_forms(module(), fn(BINARY), 0, (0, 1), cp).items()}
    assert forms == {
        "original": "@convention(thin) (Float, Float, f_Checkpoints, Float, Float) -> (Float, Float)",
        "reversed": "@convention(thin) (Float, f_Checkpoints, Float, Float, Float) -> (Float, Float)",
        "moved": "@convention(thin) (Float, f_Checkpoints) -> (Float, Float)",
    }


def test_legacy_adjoint_with_one_parameter_returns_bare_tangent() -> None:
    cp = NominalType("f_Checkpoints")
    original = legacy_adjoint_forms(module(), fn(BINARY), 0, (1,), cp)["original"]
    assert str(original) == "@convention(thin) (Float, Float, f_Checkpoints, Float, Float) -> Float"


def test_the_stated_order_picks_the_forms() -> None:
    cp = NominalType("f_Checkpoints")
    assert list(stated_adjoint_forms(module(), fn(BINARY), 0, (0,), cp, False)) == ["original"]
    assert list(stated_adjoint_forms(module(), fn(BINARY), 0, (0,), cp, True)) == ["reversed", "moved"]


UNDEFINED_ADJOINT = """\
sil [reverse_differentiable source 0 wrt 0 adjoint @nowhere] @f : $@convention(thin) (Float) -> Float {
bb0(%0 : $Float):
  return %0 : $Float
}
"""


def test_the_verifier_checks_legacy_attributes() -> None:
    [d] = verify_module(parse(UNDEFINED_ADJOINT, "f.sil"))
    assert d.message == "adjoint '@nowhere' is not defined"


@attrs.frozen
class _Unknown:
    """An attribute class no checker is registered for."""

    span: None = None


def test_an_attribute_without_a_checker_is_reported_not_skipped() -> None:
    m = parse("sil @f : $@convention(thin) (Float) -> Float\n")
    m.functions["f"].attributes.append(cast(FunctionAttr, _Unknown()))
    [d] = verify_module(m)
    assert d.message == "no check is registered for _Unknown attributes"


def test_a_fresh_interpreter_never_passes_a_legacy_attribute_unchecked() -> None:
    """Verifying through ``sil`` alone, nothing of differentiation imported first: the verifier
    looks passes up for a checker, and the library's registry loads differentiation/legacy, whose
    check then reports the error."""
    script = textwrap.dedent(
        f"""
        import sys
        from sil import parse, verify_module
        assert "differentiation.legacy" not in sys.modules
        print("\\n".join(d.message for d in verify_module(parse({UNDEFINED_ADJOINT!r}))))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "adjoint '@nowhere' is not defined"


def test_pass_lookup_makes_the_legacy_checks_active() -> None:
    """A lookup of passes (what silopt does before it verifies anything) registers them."""
    script = textwrap.dedent(
        f"""
        from sil.passes import registered_passes
        from sil import parse, verify_module
        registered_passes()
        print("\\n".join(d.message for d in verify_module(parse({UNDEFINED_ADJOINT!r}))))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "adjoint '@nowhere' is not defined"
