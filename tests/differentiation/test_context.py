"""The differentiation context (``differentiator.py``, Swift's ``ADContext``): a derivative an
emitter asks for is declared at once and emitted by the context's loop, never from inside the
emitter; the activity of each request is computed once, for the checks and the emitters alike;
and no module of the core hides an import cycle in a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import analysis.activity
from analysis.activity import ActivityInfo, Config
from differentiation.differentiator import Differentiator
from differentiation.passes import Differentiation
from differentiation.reverse import ReverseEmitter
from golden.harness import GOLDEN, ROOT
from sil import parse, verify_module
from sil.ir import Function, Module
from sil.passes import PassContext

CHAIN = """\
sil @f : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %g = function_ref @g : $@convention(thin) (Double) -> Double
  %y = apply %g(%x) : $@convention(thin) (Double) -> Double
  %z = builtin "fmul"(%y : $Double, %x : $Double) : $Double
  return %z : $Double
}

sil @g : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %s = builtin "sin"(%x : $Double) : $Double
  return %s : $Double
}
"""


def test_an_emitter_request_is_declared_and_emitted_by_the_loop() -> None:
    module = parse(CHAIN)
    d = Differentiator(module)
    vjp, covered = d.vjp_for_call(module.functions["g"], (0,), sources=(0,))
    assert covered == (0,) and vjp.name == "AD__g__vjp_src_0_wrt_0"
    assert vjp.is_declaration  # declared: a call of it can be emitted already
    d.emit_pending()
    assert not vjp.is_declaration
    assert verify_module(module) == []


def test_a_pass_request_emits_the_callees_it_declares() -> None:
    module = parse(CHAIN)
    d = Differentiator(module)
    vjp = d.vjp_for(module.functions["f"], Config((0,), (0,)))
    callee = module.functions["AD__g__vjp_src_0_wrt_0"]
    assert not vjp.is_declaration and not callee.is_declaration
    assert d.added_functions.index(vjp.name) < d.added_functions.index(callee.name)
    assert verify_module(module) == []


DIAMOND = """\
sil @f : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %g = function_ref @g : $@convention(thin) (Double) -> Double
  %h = function_ref @h : $@convention(thin) (Double) -> Double
  %a = apply %g(%x) : $@convention(thin) (Double) -> Double
  %b = apply %h(%x) : $@convention(thin) (Double) -> Double
  %c = builtin "fmul"(%a : $Double, %b : $Double) : $Double
  return %c : $Double
}

sil @g : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %h = function_ref @h : $@convention(thin) (Double) -> Double
  %y = apply %h(%x) : $@convention(thin) (Double) -> Double
  %s = builtin "sin"(%y : $Double) : $Double
  return %s : $Double
}

sil @h : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %e = builtin "exp"(%x : $Double) : $Double
  %r = function_ref @r : $@convention(thin) (Double) -> Double
  %y = apply %r(%e) : $@convention(thin) (Double) -> Double
  return %y : $Double
}

sil @r : $@convention(thin) (Double) -> Double {
bb0(%x : $Double):
  %m = builtin "fmul"(%x : $Double, %x : $Double) : $Double
  return %m : $Double
}
"""


def test_callees_are_emitted_before_their_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worklist follows the call graph bottom-up: with @g and @h both pending after @f, @h (a
    callee of @g) is emitted first, and @r (declared by @h) before @g."""
    module = parse(DIAMOND)
    emitted: list[str] = []
    original = ReverseEmitter.emit_bodies

    def recording(self: ReverseEmitter) -> None:
        emitted.append(self.fn.name)
        original(self)

    monkeypatch.setattr(ReverseEmitter, "emit_bodies", recording)
    d = Differentiator(module)
    d.vjp_for(module.functions["f"], Config((0,), (0,)))
    assert emitted == ["f", "h", "r", "g"]
    assert verify_module(module) == []


def _count_activity(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Config]]:
    computed: list[tuple[str, Config]] = []
    analyze = analysis.activity.analyze_activity

    def counting(module: Module, fn: Function, config: Config) -> ActivityInfo:
        computed.append((fn.name, config))
        return analyze(module, fn, config)

    monkeypatch.setattr(analysis.activity, "analyze_activity", counting)
    return computed


@pytest.mark.parametrize("name", ["vjp_calls", "tuple_calls", "structs"])
def test_activity_is_computed_once_per_request(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """-differentiation checks, then emits: both read the activity of each function and
    configuration from the context, which computes it once."""
    module = parse((GOLDEN / "differentiation" / f"{name}.sil").read_text(encoding="utf-8"))
    computed = _count_activity(monkeypatch)
    Differentiation().run(module, PassContext())
    assert computed and len(computed) == len(set(computed))


def _function_local_imports(path: Path) -> list[int]:
    """Lines of the imports of ``path`` that are not at its top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        and id(node) not in top
        and _not_type_only(tree, node)
    ]


def _not_type_only(tree: ast.Module, node: ast.stmt) -> bool:
    """Whether ``node`` is outside every ``if TYPE_CHECKING:`` block at the top level."""
    for block in tree.body:
        type_only = (
            isinstance(block, ast.If)
            and isinstance(block.test, ast.Name)
            and block.test.id == "TYPE_CHECKING"
        )
        if type_only and any(node is inner for inner in ast.walk(block)):
            return False
    return True


CORE = sorted([*(ROOT / "differentiation").glob("*.py"), *(ROOT / "differentiation" / "legacy").glob("*.py")])


@pytest.mark.parametrize("path", CORE, ids=[p.relative_to(ROOT).as_posix() for p in CORE])
def test_no_import_inside_a_function(path: Path) -> None:
    assert _function_local_imports(path) == []
