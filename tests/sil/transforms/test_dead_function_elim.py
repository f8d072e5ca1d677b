"""-dead-function-elim: user-written functions are roots; synthesized ones go once no root reaches them."""

from __future__ import annotations

from analysis.activity import Config
from differentiation import naming
from sil import parse, print_module, verify_module
from sil.transforms.dead_function_elim import erase_dead_functions, erase_dead_types, is_root

LEAF = """
sil @{name} : $@convention(thin) (Float) -> Float {{
bb0(%0 : $Float):
  return %0 : $Float
}}
"""

CALLER = """
sil @{name} : $@convention(thin) (Float) -> Float {{
bb0(%0 : $Float):
  %1 = function_ref @{callee} : $@convention(thin) (Float) -> Float
  %2 = apply %1(%0) : $@convention(thin) (Float) -> Float
  return %2 : $Float
}}
"""


def test_every_synthesized_name_is_not_a_root() -> None:
    """The pass's notion of synthesized is naming's: every name the differentiation passes make."""
    config = Config(sources=(0,), wrt=(0, 1))
    made = [
        naming.vjp_name("f", config),
        naming.pullback_name("f", config),
        naming.jvp_name("f", config),
        naming.differential_name("f", config),
        naming.gradient_name("f", config, seedable=True, preserving_result=True),
    ]
    assert not any(is_root(name) for name in made)
    assert is_root("f") and is_root("AD_f") and is_root("_AD__f")


def test_a_chain_from_a_root_stays_and_the_rest_goes() -> None:
    text = (
        CALLER.format(name="main", callee="AD__a")
        + CALLER.format(name="AD__a", callee="AD__b")
        + LEAF.format(name="AD__b")
        + CALLER.format(name="AD__orphan", callee="AD__b")
        + CALLER.format(name="AD__x", callee="AD__y")
        + CALLER.format(name="AD__y", callee="AD__x")
        + LEAF.format(name="lonely")
    )
    module = parse(text)
    assert erase_dead_functions(module) == ["AD__orphan", "AD__x", "AD__y"]
    assert list(module.functions) == ["main", "AD__a", "AD__b", "lonely"]
    assert verify_module(module) == []
    assert erase_dead_functions(module) == []  # a fixed point at once


def test_a_long_chain_is_walked_without_recursion() -> None:
    n = 3000
    text = CALLER.format(name="main", callee="AD__0")
    text += "".join(CALLER.format(name=f"AD__{i}", callee=f"AD__{i + 1}") for i in range(n))
    text += LEAF.format(name=f"AD__{n}") + LEAF.format(name="AD__gone")
    module = parse(text)
    assert erase_dead_functions(module) == ["AD__gone"]
    assert len(module.functions) == n + 2
    assert "AD__gone" not in print_module(module)


def test_erase_dead_types_keeps_what_remaining_code_mentions() -> None:
    """A synthesized type stays while a function, or a declaration that stays, mentions it."""
    text = """
struct _AD__kept_field {
  var x: Float
}

struct _AD__kept {
  var f: _AD__kept_field
}

struct _AD__gone {
  var x: Float
}

struct _AD__base : Differentiable {
  var x: Float
}

sil @f : $@convention(thin) (Float, _AD__base.TangentVector) -> Float {
bb0(%x : $Float, %t : $_AD__base.TangentVector):
  %k = struct $_AD__kept_field (%x : $Float)
  %r = struct $_AD__kept (%k : $_AD__kept_field)
  return %x : $Float
}
"""
    module = parse(text)
    assert erase_dead_types(module) == ["_AD__gone"]  # a tangent struct keeps its base (_AD__base)
    assert list(module.types) == ["_AD__kept_field", "_AD__kept", "_AD__base"]
    assert verify_module(module) == []
    assert erase_dead_types(module) == []
