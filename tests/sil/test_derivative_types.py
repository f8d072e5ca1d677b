"""The types SIL-SPEC §6 derives from an original's type: JVP, VJP,
``gradient`` (with ``[seedable]`` and ``[preserving_result]``), and ``@differentiable`` bundles."""

from __future__ import annotations

import pytest

from sil import derivative_types as dt
from sil import parse, print_module, verify_module
from sil.diagnostics import SILError
from sil.instructions import GradientInst, extractee_type
from sil.ir import Module
from sil.types import FunctionType, NominalType

DECLS = """\
struct Point : Differentiable {
  var x: Float
  var y: Float
  @noDerivative var tag: Int
}
struct f_Checkpoints {
  var v: Float
}
"""


def module() -> Module:
    return parse(DECLS)


def fn(text: str) -> FunctionType:
    return parse(f"{DECLS}sil @f : ${text}\n").functions["f"].type


BINARY = "@convention(thin) (Float, Float) -> Float"
UNARY = "@convention(thin) (Float) -> Float"


# --- JVP and VJP ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "wrt", "jvp"),
    [
        (
            BINARY,
            (0, 1),
            "@convention(thin) (Float, Float) -> (Float, @callee_guaranteed (Float, Float) -> Float)",
        ),
        (UNARY, (0,), "@convention(thin) (Float) -> (Float, @callee_guaranteed (Float) -> Float)"),
        (BINARY, (1,), "@convention(thin) (Float, Float) -> (Float, @callee_guaranteed (Float) -> Float)"),
        (
            "@convention(thin) (Double, Int, Tensor<Float>) -> Tensor<Float>",
            (0, 2),
            "@convention(thin) (Double, Int, Tensor<Float>) -> "
            "(Tensor<Float>, @callee_guaranteed (Double, Tensor<Float>) -> Tensor<Float>)",
        ),
        (
            "@convention(thin) (Point) -> Float",
            (0,),
            "@convention(thin) (Point) -> (Float, @callee_guaranteed (Point.TangentVector) -> Float)",
        ),
    ],
)
def test_jvp_type(original: str, wrt: tuple[int, ...], jvp: str) -> None:
    assert str(dt.jvp_type(module(), fn(original), (0,), wrt)) == jvp


@pytest.mark.parametrize(
    ("original", "wrt", "vjp"),
    [
        (
            BINARY,
            (0, 1),
            "@convention(thin) (Float, Float) -> (Float, @callee_guaranteed (Float) -> (Float, Float))",
        ),
        # A single-parameter pullback returns the bare tangent, not a one-element tuple.
        (UNARY, (0,), "@convention(thin) (Float) -> (Float, @callee_guaranteed (Float) -> Float)"),
        (BINARY, (1,), "@convention(thin) (Float, Float) -> (Float, @callee_guaranteed (Float) -> Float)"),
        (
            "@convention(thin) (Double, Int, Tensor<Float>) -> Tensor<Float>",
            (0, 2),
            "@convention(thin) (Double, Int, Tensor<Float>) -> "
            "(Tensor<Float>, @callee_guaranteed (Tensor<Float>) -> (Double, Tensor<Float>))",
        ),
        (
            "@convention(thin) (Point, Float) -> Point",
            (0, 1),
            "@convention(thin) (Point, Float) -> "
            "(Point, @callee_guaranteed (Point.TangentVector) -> (Point.TangentVector, Float))",
        ),
        (
            "@convention(thin) (Point) -> Float",
            (0,),
            "@convention(thin) (Point) -> (Float, @callee_guaranteed (Float) -> Point.TangentVector)",
        ),
    ],
)
def test_vjp_type(original: str, wrt: tuple[int, ...], vjp: str) -> None:
    assert str(dt.vjp_type(module(), fn(original), (0,), wrt)) == vjp


def test_single_parameter_pullback_returns_bare_tangent() -> None:
    vjp = dt.vjp_type(module(), fn(UNARY), (0,), (0,))
    pullback = vjp.results[1]
    assert isinstance(pullback, FunctionType)
    assert pullback.convention == "callee_guaranteed"
    assert str(pullback.result) == "Float"
    struct_vjp = dt.vjp_type(module(), fn("@convention(thin) (Point) -> Float"), (0,), (0,))
    assert struct_vjp.results[1].result == NominalType("Point.TangentVector")  # type: ignore[attr-defined]


def test_source_selects_an_element_of_a_tuple_result() -> None:
    original = fn("@convention(thin) (Float) -> (Float, Double)")
    assert (
        str(dt.vjp_type(module(), original, (1,), (0,)))
        == "@convention(thin) (Float) -> ((Float, Double), @callee_guaranteed (Double) -> Float)"
    )
    assert (
        str(dt.jvp_type(module(), original, (0,), (0,)))
        == "@convention(thin) (Float) -> ((Float, Double), @callee_guaranteed (Float) -> Float)"
    )


def test_several_sources_have_a_tuple_tangent() -> None:
    """SIL-SPEC §3: every result of differentiable type is the result's own tangent (labels
    included); a subset is the tuple of its elements' tangents."""
    original = fn("@convention(thin) (Float) -> (a: Float, n: Int, b: Double, c: Float)")
    m = module()
    assert dt.results_tangent(m, original, (0, 2, 3)) == m.tangent_type(original.result)
    assert str(dt.results_tangent(m, original, (0, 3))) == "(a: Float, c: Float)"
    assert (
        str(dt.vjp_type(m, original, (2, 3), (0,)))
        == "@convention(thin) (Float) -> ((a: Float, n: Int, b: Double, c: Float), "
        "@callee_guaranteed ((b: Double, c: Float)) -> Float)"
    )
    with pytest.raises(dt.DerivativeTypeError, match="result 1 of type Int is not differentiable"):
        dt.results_tangent(m, original, (0, 1))


# --- gradient ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrt", "seedable", "preserving", "gradient"),
    [
        ((0, 1), False, False, "@convention(thin) (Float, Float) -> (Float, Float)"),
        ((0,), False, False, "@convention(thin) (Float, Float) -> Float"),
        ((1,), False, False, "@convention(thin) (Float, Float) -> Float"),
        ((0, 1), True, False, "@convention(thin) (Float, Float, Float) -> (Float, Float)"),
        ((0, 1), False, True, "@convention(thin) (Float, Float) -> (Float, Float, Float)"),
        ((0, 1), True, True, "@convention(thin) (Float, Float, Float) -> (Float, Float, Float)"),
        ((1,), False, True, "@convention(thin) (Float, Float) -> (Float, Float)"),
        ((0,), True, False, "@convention(thin) (Float, Float, Float) -> Float"),
    ],
)
def test_gradient_type(wrt: tuple[int, ...], seedable: bool, preserving: bool, gradient: str) -> None:
    assert str(dt.gradient_type(module(), fn(BINARY), 0, wrt, seedable, preserving)) == gradient


def test_gradient_seed_is_the_source_tangent() -> None:
    original = fn("@convention(thin) (Float) -> (Float, Double)")
    assert (
        str(dt.gradient_type(module(), original, 1, (0,), True, False))
        == "@convention(thin) (Float, Double) -> Float"
    )
    assert (
        str(dt.gradient_type(module(), original, 1, (0,), False, True))
        == "@convention(thin) (Float) -> ((Float, Double), Float)"
    )


def _gradient_result(options: str, original: str = BINARY) -> str:
    m = parse(
        f"sil @f : ${original}\n"
        "sil @g : $@convention(thin) () -> () {\n"
        "bb0:\n"
        f"  %0 = function_ref @f : ${original}\n"
        f"  %1 = gradient {options} %0 : ${original}\n"
        "  %2 = tuple ()\n"
        "  return %2 : $()\n"
        "}\n"
    )
    assert verify_module(m) == []
    return str(m.functions["g"].entry.instructions[1].result.type)


@pytest.mark.parametrize(
    ("options", "gradient"),
    [
        ("[wrt 0, 1]", "@convention(thin) (Float, Float) -> (Float, Float)"),
        ("[source 0] [wrt 0, 1]", "@convention(thin) (Float, Float) -> (Float, Float)"),
        ("", "@convention(thin) (Float, Float) -> (Float, Float)"),
        ("[wrt 1]", "@convention(thin) (Float, Float) -> Float"),
        ("[wrt 0, 1] [seedable]", "@convention(thin) (Float, Float, Float) -> (Float, Float)"),
        ("[wrt 0, 1] [preserving_result]", "@convention(thin) (Float, Float) -> (Float, Float, Float)"),
        (
            "[wrt 0, 1] [seedable] [preserving_result]",
            "@convention(thin) (Float, Float, Float) -> (Float, Float, Float)",
        ),
    ],
)
def test_gradient_instruction_type(options: str, gradient: str) -> None:
    assert _gradient_result(options) == gradient


def test_gradient_without_wrt_skips_non_differentiable_parameters() -> None:
    assert _gradient_result("", "@convention(thin) (Float, Int) -> Float") == (
        "@convention(thin) (Float, Int) -> Float"
    )


@pytest.mark.parametrize(
    ("original", "seeded", "printed"),
    [
        ("@convention(thin) (Float) -> Float", 0, ""),
        ("@convention(thin) (Float) -> (Int, Double)", 1, "[source 1] "),
        ("@convention(thin) (Float) -> (Float, Int)", 0, "[source 0] "),
    ],
)
def test_gradient_without_source_seeds_the_one_differentiable_result(
    original: str, seeded: int, printed: str
) -> None:
    """SIL-SPEC §3: ``source`` omitted means every result of differentiable type, and ``gradient``
    seeds one; the printer names it for a function with several results."""
    m = parse(
        f"sil @f : ${original}\nsil @g : $@convention(thin) () -> () {{\nbb0:\n"
        f"  %0 = function_ref @f : ${original}\n  %1 = gradient [wrt 0] %0 : ${original}\n"
        "  %2 = tuple ()\n  return %2 : $()\n}\n"
    )
    assert verify_module(m) == []
    gradient = m.functions["g"].entry.instructions[1]
    assert isinstance(gradient, GradientInst) and gradient.source == seeded
    assert f"gradient {printed}[wrt 0] %0" in print_module(m)
    assert print_module(parse(print_module(m))) == print_module(m)


# --- wrt and source resolution ---------------------------------------------------------------


def test_resolve_wrt_defaults_to_differentiable_parameters() -> None:
    m = module()
    t = fn("@convention(thin) (Float, Int, Point, Bool, Tensor<Double>) -> Float")
    assert dt.resolve_wrt(m, t, None) == (0, 2, 4)
    bundle = fn("@differentiable(reverse) @convention(thin) (Float, @noDerivative Float) -> Float")
    assert dt.differentiable_params(m, bundle) == (0,)


@pytest.mark.parametrize(
    ("original", "wrt", "message"),
    [
        (BINARY, (2,), "out of range"),
        (BINARY, (1, 0), "increasing"),
        (BINARY, (0, 0), "increasing"),
        (BINARY, (), "lists no parameter"),
        ("@convention(thin) (Float, Int) -> Float", (1,), "not differentiable"),
        ("@convention(thin) (Int) -> Float", None, "no parameter of differentiable type"),
        (
            "@differentiable(reverse) @convention(thin) (Float, @noDerivative Float) -> Float",
            (1,),
            "@noDerivative",
        ),
    ],
)
def test_resolve_wrt_errors(original: str, wrt: tuple[int, ...] | None, message: str) -> None:
    with pytest.raises(dt.DerivativeTypeError, match=message):
        dt.resolve_wrt(module(), fn(original), wrt)


@pytest.mark.parametrize(
    ("original", "source", "message"),
    [
        (BINARY, 1, "out of range"),
        ("@convention(thin) (Float) -> (Float, Double)", 2, "out of range"),
        ("@convention(thin) (Float) -> Int", 0, "not differentiable"),
        ("@convention(thin) (Float) -> (Float, Int)", 1, "not differentiable"),
    ],
)
def test_source_errors(original: str, source: int, message: str) -> None:
    with pytest.raises(dt.DerivativeTypeError, match=message):
        dt.source_tangent(module(), fn(original), source)


def test_resolve_sources_defaults_to_differentiable_results() -> None:
    """SIL-SPEC §3: ``source`` left out is every result of differentiable type; of a function
    with one result, that result (so that one without a tangent is named in the error)."""
    m = module()
    assert dt.resolve_sources(m, fn("@convention(thin) (Float) -> (Float, Int, Point)"), None) == (0, 2)
    assert dt.resolve_sources(m, fn("@convention(thin) (Float) -> (Double, Tensor<Float>)"), None) == (0, 1)
    assert dt.resolve_sources(m, fn(UNARY), None) == (0,)
    assert dt.resolve_sources(m, fn("@convention(thin) (Float) -> (Float, Float)"), (1,)) == (1,)


@pytest.mark.parametrize(
    ("original", "sources", "message"),
    [
        ("@convention(thin) (Float) -> (Int, Bool)", None, "no result of differentiable type"),
        ("@convention(thin) (Float) -> Int", None, "result 0 of type Int is not differentiable"),
        ("@convention(thin) (Float) -> (Float, Float)", (1, 0), "increasing"),
        ("@convention(thin) (Float) -> (Float, Float)", (0, 0), "increasing"),
        ("@convention(thin) (Float) -> (Float, Float)", (), "lists no result"),
        ("@convention(thin) (Float) -> (Float, Float)", (0, 2), "out of range"),
        ("@convention(thin) (Float) -> (Float, Int)", (0, 1), "not differentiable"),
    ],
)
def test_resolve_sources_errors(original: str, sources: tuple[int, ...] | None, message: str) -> None:
    with pytest.raises(dt.DerivativeTypeError, match=message):
        dt.resolve_sources(module(), fn(original), sources)


# --- @differentiable bundles ------------------------------------------------------------------


def test_differentiable_bundle_type() -> None:
    original = fn("@convention(thin) (Float, Int, Float) -> Float")
    bundle = dt.differentiable_bundle_type(original, (0, 2))
    assert str(bundle) == (
        "@differentiable(reverse) @convention(thin) (Float, @noDerivative Int, Float) -> Float"
    )
    assert bundle.plain() == original


def test_extractee_types() -> None:
    m = module()
    bundle = fn("@differentiable(reverse) @convention(thin) (Float, @noDerivative Int) -> Float")
    assert str(extractee_type(m, bundle, "original")) == "@convention(thin) (Float, Int) -> Float"
    assert str(extractee_type(m, bundle, "vjp")) == (
        "@convention(thin) (Float, Int) -> (Float, @callee_guaranteed (Float) -> Float)"
    )
    assert str(extractee_type(m, bundle, "jvp")) == (
        "@convention(thin) (Float, Int) -> (Float, @callee_guaranteed (Float) -> Float)"
    )


def test_extractee_types_of_several_results_are_of_every_differentiable_result() -> None:
    m = module()
    bundle = fn("@differentiable(reverse) @convention(thin) (Float) -> (Float, Int, Double)")
    assert str(extractee_type(m, bundle, "vjp")) == (
        "@convention(thin) (Float) -> ((Float, Int, Double), @callee_guaranteed ((Float, Double)) -> Float)"
    )
    assert str(extractee_type(m, bundle, "jvp")) == (
        "@convention(thin) (Float) -> ((Float, Int, Double), @callee_guaranteed (Float) -> (Float, Double))"
    )


# --- the verifier checks attributes against these types ----------------------------------------

MODERN = """\
sil [differentiable source 0 wrt 0, 1 jvp @f_jvp vjp @f_vjp] @f : $@convention(thin) (Float, Float) -> Float
sil @f_jvp : $@convention(thin) (Float, Float) -> (Float, @callee_guaranteed (Float, Float) -> Float)
sil @f_vjp : $@convention(thin) (Float, Float) -> (Float, @callee_guaranteed (Float) -> (Float, Float))
"""

LEGACY = (
    DECLS
    + "sil [reverse_differentiable source 0 wrt 0, 1 primal @f_primal adjoint @f_adjoint]"
    + " @f : $@convention(thin) (Float, Float) -> Float\n"
    + "sil @f_primal : $@convention(thin) (Float, Float) -> (f_Checkpoints, Float)\n"
    + "sil @f_adjoint : $@convention(thin) (Float, Float, f_Checkpoints, Float, Float) -> (Float, Float)\n"
)


def test_verifier_accepts_correct_derivative_types() -> None:
    assert verify_module(parse(MODERN)) == []
    assert verify_module(parse(LEGACY)) == []


def test_verifier_rejects_a_vjp_of_the_wrong_type() -> None:
    bad = MODERN.replace("-> (Float, @callee_guaranteed (Float) -> (Float, Float))", "-> (Float, Float)")
    problems = verify_module(parse(bad))
    assert len(problems) == 1
    assert "vjp '@f_vjp' has type" in problems[0].message
    assert "@callee_guaranteed (Float) -> (Float, Float)" in problems[0].message


def test_verifier_accepts_the_forms_the_attribute_states_and_no_other() -> None:
    """Without ``seed_first`` only the 2018 order; with it, the seed-first order before and after
    -move-originals-into-checkpoints."""
    forms = {
        "(Float, Float, f_Checkpoints, Float, Float) -> (Float, Float)": False,  # 2018 order
        "(Float, f_Checkpoints, Float, Float, Float) -> (Float, Float)": True,  # reversed
        "(Float, f_Checkpoints) -> (Float, Float)": True,  # originals moved into the checkpoints
        "(f_Checkpoints, Float, Float, Float, Float) -> (Float, Float)": None,  # neither
    }
    original = "(Float, Float, f_Checkpoints, Float, Float) -> (Float, Float)"
    for spelling, stated in forms.items():
        for seed_first in (False, True):
            text = LEGACY.replace(original, spelling)
            if seed_first:
                text = text.replace("adjoint @f_adjoint]", "adjoint @f_adjoint seed_first]")
            problems = [d.message for d in verify_module(parse(text))]
            assert (problems == []) == (stated == seed_first), (spelling, seed_first, problems)


def test_attributes_print_back() -> None:
    assert print_module(parse(MODERN)) == MODERN.replace("\n", "\n\n", 2)


# --- differentiable_function's index lists -------------------------------------------------------

TERNARY = "@convention(thin) (Float, Float, Float) -> Float"


def _bundle(indices: str) -> str:
    return f"""\
sil @f : ${TERNARY}
sil @g : $@convention(thin) () -> () {{
bb0:
  %f = function_ref @f : ${TERNARY}
  %d = differentiable_function {indices} %f : ${TERNARY}
  %u = tuple ()
  return %u : $()
}}
"""


@pytest.mark.parametrize(
    ("written", "printed"),
    [
        ("[parameters 0 2]", "[parameters 0 2]"),
        ("[parameters 0 1 2]", "[parameters 0 1 2]"),
        ("[parameters 0, 2]", "[parameters 0 2]"),  # the comma-separated form of earlier files
        ("[parameters 1] [results 0]", "[parameters 1] [results 0]"),
        ("[results 0]", "[parameters 0 1 2] [results 0]"),
    ],
)
def test_bundle_index_lists_are_space_separated(written: str, printed: str) -> None:
    """SIL-SPEC §4: Swift's SIL writes the parameter indices as a list, ``[results …]`` after."""
    module = parse(_bundle(written))
    assert verify_module(module) == []
    text = print_module(module)
    assert f"differentiable_function {printed} %f" in text
    assert print_module(parse(text)) == text


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("[parameters 0 x]", "expected an integer, found 'x'"),
        ("[parameters]", "expected an integer, found ']'"),
        ("[results 0] [parameters 0]", "expected 'parameters' or 'results' in differentiable_function"),
        ("[parameters 0] [parameters 1]", "expected 'parameters' or 'results' in differentiable_function"),
        ("[wrt 0]", "expected 'parameters' or 'results' in differentiable_function, found 'wrt'"),
    ],
)
def test_bundle_index_list_errors(written: str, message: str) -> None:
    with pytest.raises(SILError) as info:
        parse(_bundle(written), "bundle.sil")
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.message.startswith(message), diagnostic.message
    assert diagnostic.span is not None
