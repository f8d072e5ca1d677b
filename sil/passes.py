"""The pass base class, the registry passes add themselves to, and the pass manager."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable
from typing import ClassVar, TypeVar

import attrs

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
# Modules whose import registers passes; imported on the first registry lookup.
_PROVIDERS: list[str] = ["sil.transforms"]
_loaded: set[str] = set()


def register_pass(cls: P) -> P:
    """Class decorator: make a pass available to silopt by its name."""
    if not cls.name:
        raise ValueError(f"pass {cls.__name__} has no name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"two passes are named '{cls.name}'")
    _REGISTRY[cls.name] = cls
    return cls


def add_pass_provider(module_name: str) -> None:
    """Name a module that registers passes when imported (imported lazily)."""
    if module_name not in _PROVIDERS:
        _PROVIDERS.append(module_name)


def registered_passes() -> dict[str, type[Pass]]:
    """Every registered pass by name, sorted by name."""
    for provider in _PROVIDERS:
        if provider not in _loaded:
            importlib.import_module(provider)
            _loaded.add(provider)
    return dict(sorted(_REGISTRY.items()))


def get_pass(name: str) -> type[Pass] | None:
    return registered_passes().get(name)


class PassManager:
    """Runs passes in order, optionally verifying or reporting after each."""

    def __init__(
        self,
        passes: list[Pass],
        verify_each: bool = False,
        after_pass: Callable[[Pass, Module, PassContext], None] | None = None,
    ) -> None:
        self.passes = passes
        self.verify_each = verify_each
        self.after_pass = after_pass
        self.context = PassContext()

    def run(self, module: Module) -> None:
        from sil.verifier import verify_module

        ctx = self.context
        for p in self.passes:
            ctx.annotations.clear()
            # A pass allocates IR that stays alive: cyclic-GC passes over the growing module find
            # nothing to free, and made -differentiation superlinear (as they did the parser).
            was_enabled = gc.isenabled()
            gc.disable()
            try:
                p.run(module, ctx)
            finally:
                if was_enabled:
                    gc.enable()
            if was_enabled and gc.get_freeze_count() == 0:
                # As after parsing (sil/parser.py): what the pass made is the module now, and the
                # first collections would traverse it all to free nothing (a third of the time
                # of verifying and printing what -differentiation made of a long function).
                gc.freeze()
                gc.unfreeze()
            ctx.analyses.clear()
            if self.verify_each:
                problems = verify_module(module)
                if problems:
                    raise SILError(
                        [Diagnostic("error", f"module does not verify after pass '{p.name}'"), *problems]
                    )
            if self.after_pass is not None:
                self.after_pass(p, module, ctx)
