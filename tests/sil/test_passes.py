"""The pass registry and the pass manager."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sil import parse, print_module
from sil import passes as registry
from sil.diagnostics import SILError
from sil.ir import Module
from sil.passes import Pass, PassContext, PassManager, get_pass, register_pass, registered_passes

TEXT = """\
sil @f : $@convention(thin) (Float) -> Float {
bb0(%0 : $Float):
  %1 = builtin "fmul"(%0 : $Float, %0 : $Float) : $Float
  %2 = builtin "fneg"(%0 : $Float) : $Float
  return %1 : $Float
}
"""


@pytest.fixture(autouse=True)
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Passes registered by a test disappear after it."""
    registered_passes()  # load the providers into the real registry first
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    yield


class BreakModule(Pass):
    """Erases every terminator: the module no longer verifies."""

    name = "break-module"
    description = "Erase every terminator"

    def run(self, module: Module, ctx: PassContext) -> None:
        for fn in module.functions.values():
            for block in fn.blocks:
                term = block.terminator
                if term is not None:
                    term.erase()


class Record(Pass):
    name = "record"
    description = "Remember that it ran"

    def __init__(self, log: list[str], tag: str) -> None:
        self.log = log
        self.tag = tag

    def run(self, module: Module, ctx: PassContext) -> None:
        self.log.append(self.tag)


def test_registered_passes_include_dce() -> None:
    found = registered_passes()
    assert "dce" in found
    assert list(found) == sorted(found)
    assert get_pass("dce") is found["dce"]
    assert get_pass("no-such-pass") is None


def test_register_pass_makes_it_available() -> None:
    register_pass(BreakModule)
    assert get_pass("break-module") is BreakModule


def test_registering_a_pass_twice_is_harmless() -> None:
    assert register_pass(BreakModule) is BreakModule
    assert register_pass(BreakModule) is BreakModule


def test_duplicate_pass_name_fails() -> None:
    register_pass(BreakModule)

    class Impostor(Pass):
        name = "break-module"
        description = "Another pass with the same name"

        def run(self, module: Module, ctx: PassContext) -> None:
            pass

    with pytest.raises(ValueError, match="break-module"):
        register_pass(Impostor)
    assert get_pass("break-module") is BreakModule


def test_duplicate_of_a_builtin_pass_name_fails() -> None:
    class OtherDce(Pass):
        name = "dce"
        description = "Not the real one"

    with pytest.raises(ValueError, match="dce"):
        register_pass(OtherDce)
    assert get_pass("dce") is not OtherDce


def test_pass_without_name_fails() -> None:
    class Nameless(Pass):
        description = "No name"

    with pytest.raises(ValueError, match="no name"):
        register_pass(Nameless)


def test_verify_each_reports_the_pass_that_breaks_the_module() -> None:
    module = parse(TEXT, "in.sil")
    log: list[str] = []
    manager = PassManager([Record(log, "first"), BreakModule(), Record(log, "after")], verify_each=True)
    with pytest.raises(SILError) as info:
        manager.run(module)
    first, *problems = info.value.diagnostics
    assert first.severity == "error"
    assert "break-module" in first.message
    assert "does not verify" in first.message
    assert problems, "the verifier's own diagnostics should follow"
    assert any("terminator" in d.message for d in problems)
    assert log == ["first"], "no pass runs after the one that broke the module"


def test_without_verify_each_a_broken_module_passes_through() -> None:
    module = parse(TEXT)
    PassManager([BreakModule()]).run(module)
    assert module.functions["f"].entry.terminator is None


def test_verify_each_accepts_passes_that_keep_the_module_valid() -> None:
    module = parse(TEXT)
    dce = get_pass("dce")
    assert dce is not None
    PassManager([dce()], verify_each=True).run(module)
    assert "fneg" not in print_module(module)


def test_passes_run_in_order_with_a_callback_after_each() -> None:
    module = parse(TEXT)
    log: list[str] = []
    seen: list[str] = []
    passes: list[Pass] = [Record(log, "a"), Record(log, "b"), Record(log, "c")]
    PassManager(passes, after_pass=lambda p, m, ctx: seen.append(log[-1])).run(module)
    assert log == ["a", "b", "c"]
    assert seen == ["a", "b", "c"]


def test_analyses_are_dropped_after_each_pass() -> None:
    computed: list[int] = []

    class UsesAnalysis(Pass):
        name = "uses-analysis"
        description = "Asks for one analysis twice"

        def run(self, module: Module, ctx: PassContext) -> None:
            first = ctx.analysis("count", compute)
            second = ctx.analysis("count", compute)
            assert first == second

    def compute() -> int:
        computed.append(1)
        return len(computed)

    PassManager([UsesAnalysis(), UsesAnalysis()]).run(parse(TEXT))
    assert len(computed) == 2
