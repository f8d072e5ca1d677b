"""The pass base class, the registry of every pass, and the pass manager.

Passes add themselves to the registry with ``@register_pass`` when their module is imported. The
registry imports those modules itself, on the first lookup, so that importing ``sil.passes`` is
enough to list and run every pass of the library. ``sil`` imports nothing of ours, so it cannot name
the modules of ``analysis`` and ``differentiation``: they are declared where the distribution is,
as the entry points of the group ``sil_workbench.passes`` in ``pyproject.toml`` (one a module).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, TypeVar

import attrs

from sil.collection import building
from sil.diagnostics import Diagnostic, SILError
from sil.ir import Function, Module, Value


@attrs.define
class PassContext:
    """What a pass may use besides the module: cached analyses and a place for warnings."""

    analyses: dict[object, object] = attrs.field(factory=dict)
    diagnostics: list[Diagnostic] = attrs.field(factory=list)
    # What the last pass has to say about values and functions (``-print-activity``): printed as
    # comments with the module. Each pass starts with none.
    annotations: dict[Value | Function, str] = attrs.field(factory=dict)

    def analysis(self, key: object, compute: Callable[[], object]) -> object:
        """A cached analysis result, computed on first request; dropped after each pass."""
        if key not in self.analyses:
            self.analyses[key] = compute()
        return self.analyses[key]


class Pass:
    """A module transformation. Subclasses set ``name`` (kebab-case) and ``description``.

    Contract: ``run`` either succeeds and leaves a module that verifies, or raises ``SILError``
    before changing anything.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def run(self, module: Module, ctx: PassContext) -> None:
        raise NotImplementedError


P = TypeVar("P", bound=type[Pass])

_REGISTRY: dict[str, type[Pass]] = {}
DISTRIBUTION = "sil-workbench"
ENTRY_POINT_GROUP = "sil_workbench.passes"
# sil's own passes; those of the packages above it are the entry points of ENTRY_POINT_GROUP.
_OWN_PROVIDERS = ("sil.transforms",)
_loaded: set[str] = set()


def register_pass(cls: P) -> P:
    """Class decorator: make a pass available by its name (to Python code and to silopt)."""
    if not cls.name:
        raise ValueError(f"pass {cls.__name__} has no name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"two passes are named '{cls.name}'")
    _REGISTRY[cls.name] = cls
    return cls


@functools.cache
def pass_providers() -> tuple[str, ...]:
    """The modules whose import registers the library's passes: sil's own, then the entry points
    of ``sil_workbench.passes``, read from the ``pyproject.toml`` of the source tree ``sil`` was
    imported from, else from the installed distribution's metadata. The source tree comes first:
    it is what runs, and an editable install's metadata is only as new as its last ``pip install``."""
    declared = _source_tree_entry_points()
    if declared is None:
        declared = _installed_entry_points()
    # In the modules' order, whichever way they were read (setuptools writes entries by name).
    return _OWN_PROVIDERS + tuple(sorted(value.partition(":")[0].strip() for value in declared))


def _source_tree_entry_points() -> list[str] | None:
    """The group's entry points in the ``pyproject.toml`` beside the ``sil`` package, when that
    file declares this distribution (None: ``sil`` is not imported from a source tree of it)."""
    import tomllib

    try:
        with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as f:
            project = tomllib.load(f).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    if project.get("name") != DISTRIBUTION:
        return None
    return list(project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {}).values())


def _installed_entry_points() -> list[str]:
    """The group's entry points in the installed distribution's metadata (none when it is not
    installed: then only sil's own passes exist)."""
    import importlib.metadata  # costs tens of milliseconds: only where there is no source tree

    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return []
    return [ep.value for ep in distribution.entry_points.select(group=ENTRY_POINT_GROUP)]


def registered_passes() -> dict[str, type[Pass]]:
    """Every pass of the library (and any registered since), by name, sorted by name.

    The first call imports every provider, not only the one a caller wants: importing a pass
    module may register more than passes (the legacy forms' checks with the verifier, say), and a
    pass must find them in place whichever pass is looked up first."""
    for provider in pass_providers():
        if provider not in _loaded:
            importlib.import_module(provider)
            _loaded.add(provider)
    return dict(sorted(_REGISTRY.items()))


def get_pass(name: str) -> type[Pass] | None:
    """The pass called ``name`` (None: no such pass), with every provider loaded."""
    return registered_passes().get(name)


class PassInstrumentation:
    """What watches a pipeline run (MLIR's ``PassInstrumentation``): printing the IR, timing the
    passes. The pass manager calls every instrumentation's ``before_pass`` in order, then runs the
    pass (and ``--verify-each``'s verifier), then every ``after_pass`` in reverse order, so that the
    last instrumentation given sees the pass alone. ``after_pass`` is not called for a pass that
    fails."""

    def before_pass(self, p: Pass, module: Module, ctx: PassContext) -> None:
        """Called before ``p`` runs on ``module``."""

    def after_pass(self, p: Pass, module: Module, ctx: PassContext) -> None:
        """Called after ``p`` ran on ``module`` (and the module verified, with ``verify_each``)."""


class PassManager:
    """Runs passes in order, optionally verifying after each, with instrumentations around each."""

    def __init__(
        self,
        passes: list[Pass],
        verify_each: bool = False,
        instrumentations: Sequence[PassInstrumentation] = (),
    ) -> None:
        self.passes = passes
        self.verify_each = verify_each
        self.instrumentations = tuple(instrumentations)
        self.context = PassContext()

    def run(self, module: Module) -> None:
        from sil.verifier import verify_module

        ctx = self.context
        for p in self.passes:
            ctx.annotations.clear()
            for instrumentation in self.instrumentations:
                instrumentation.before_pass(p, module, ctx)
            with building():  # a pass allocates IR that stays alive
                p.run(module, ctx)
            ctx.analyses.clear()
            if self.verify_each:
                problems = verify_module(module)
                if problems:
                    raise SILError(
                        [Diagnostic("error", f"module does not verify after pass '{p.name}'"), *problems]
                    )
            for instrumentation in reversed(self.instrumentations):
                instrumentation.after_pass(p, module, ctx)
