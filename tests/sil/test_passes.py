"""The pass registry and the pass manager."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sil import parse, print_module
from sil import passes as registry
from sil.diagnostics import SILError
from sil.ir import Module
from sil.passes import (
    Pass,
    PassContext,
    PassInstrumentation,
    PassManager,
    get_pass,
    register_pass,
    registered_passes,
)
from tests.scratch_passes import BreakModule

pytestmark = pytest.mark.usefixtures("scratch_registry")

TEXT = """\
sil @f : $@convention(thin) (Float) -> Float {
bb0(%0 : $Float):
  %1 = builtin "fmul"(%0 : $Float, %0 : $Float) : $Float
  %2 = builtin "fneg"(%0 : $Float) : $Float
  return %1 : $Float
}
"""


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


ROOT = Path(__file__).resolve().parent.parent.parent
# Passes of the packages above sil, which sil cannot import by name.
PASSES_ABOVE_SIL = [
    "print-activity",
    "differentiation-diagnostics",
    "differentiation",
    "lower-gradient",
    "reverse-adjoint-params",
    "synthesize-vjp",
    "checkpoint-active-applies",
    "move-originals-into-checkpoints",
    "remove-primal-adjoint",
]


def _fresh_python(code: str) -> str:
    """The standard output of ``code`` in a new interpreter, run from the repository root."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


def test_importing_sil_passes_alone_makes_every_pass_available() -> None:
    code = (
        "import json, sys\n"
        "from sil.passes import get_pass, registered_passes\n"
        "found = {n: c.description for n, c in registered_passes().items()}\n"
        "looked_up = {n: get_pass(n) is not None for n in found}\n"
        "print(json.dumps([found, looked_up, 'silopt' in sys.modules]))\n"
    )
    found, looked_up, imported_silopt = json.loads(_fresh_python(code))
    assert not imported_silopt
    assert set(PASSES_ABOVE_SIL) | {"dce"} <= set(found)
    assert all(looked_up.values())
    listing = subprocess.run(
        [sys.executable, "-m", "silopt", "--list-passes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    width = max(map(len, found))
    assert listing == "".join(f"{name:<{width}}  {description}\n" for name, description in found.items())


@pytest.mark.parametrize("name", ["dce", "print-activity", "synthesize-vjp"])
def test_looking_up_one_pass_loads_every_provider(name: str) -> None:
    """Importing a provider may register more than its passes (checks with the verifier): they must
    be in place whichever pass runs first."""
    code = (
        "import json, sys\n"
        "from sil.passes import get_pass, pass_providers\n"
        f"assert get_pass({name!r}) is not None\n"
        "print(json.dumps([p for p in pass_providers() if p not in sys.modules]))\n"
    )
    assert json.loads(_fresh_python(code)) == []


def _write_distribution(site: Path, entry_points: dict[str, str]) -> None:
    """A distribution's metadata as an installer writes it, with these pass providers."""
    info = site / "sil_workbench-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sil-workbench\nVersion: 0.1.0\n")
    lines = "".join(f"{name} = {module}\n" for name, module in sorted(entry_points.items()))
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{lines}")


@pytest.fixture
def providers_afresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``pass_providers`` read again, as if ``sil`` were imported from an installed distribution
    and not from this source tree; as it was after the test."""
    monkeypatch.setattr(registry, "_source_tree_entry_points", lambda: None)
    registry.pass_providers.cache_clear()
    yield
    registry.pass_providers.cache_clear()


def test_the_source_tree_declares_the_providers_of_every_pass_above_sil() -> None:
    providers = registry.pass_providers()
    assert providers[0] == "sil.transforms"
    owners = {cls.__module__ for name, cls in registered_passes().items() if name in PASSES_ABOVE_SIL}
    assert owners <= set(providers)


def test_an_installed_distribution_declares_the_same_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tomllib

    from_source_tree = registry.pass_providers()
    with open(ROOT / "pyproject.toml", "rb") as f:
        declared = tomllib.load(f)["project"]["entry-points"][registry.ENTRY_POINT_GROUP]
    _write_distribution(tmp_path, declared)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_source_tree_entry_points", lambda: None)
    registry.pass_providers.cache_clear()
    try:
        assert registry.pass_providers() == from_source_tree
    finally:
        registry.pass_providers.cache_clear()


@pytest.mark.usefixtures("providers_afresh")
def test_without_a_source_tree_or_a_distribution_only_sils_passes_are_declared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.metadata

    def not_installed(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    # The scratch registry's fixture may have read the providers already, with the distribution
    # still installed (as it is in CI's editable install): read them again without it.
    registry.pass_providers.cache_clear()
    assert registry.pass_providers() == ("sil.transforms",)


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


class Watch(PassInstrumentation):
    """Logs, beside the passes' own log, when it is called and what the pass log held then."""

    def __init__(self, log: list[str], name: str) -> None:
        self.log = log
        self.name = name

    def before_pass(self, p: Pass, module: Module, ctx: PassContext) -> None:
        self.log.append(f"{self.name} before {p.name}")

    def after_pass(self, p: Pass, module: Module, ctx: PassContext) -> None:
        self.log.append(f"{self.name} after {p.name}")


def test_instrumentations_surround_each_pass_the_last_innermost() -> None:
    module = parse(TEXT)
    log: list[str] = []
    passes: list[Pass] = [Record(log, "a"), Record(log, "b")]
    PassManager(passes, instrumentations=[Watch(log, "outer"), Watch(log, "inner")]).run(module)
    assert log == [
        "outer before record",
        "inner before record",
        "a",
        "inner after record",
        "outer after record",
        "outer before record",
        "inner before record",
        "b",
        "inner after record",
        "outer after record",
    ]


def test_no_after_pass_for_a_pass_that_breaks_the_module_under_verify_each() -> None:
    module = parse(TEXT)
    log: list[str] = []
    manager = PassManager([BreakModule()], verify_each=True, instrumentations=[Watch(log, "w")])
    with pytest.raises(SILError):
        manager.run(module)
    assert log == ["w before break-module"]


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
