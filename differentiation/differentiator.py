"""The differentiator: answers derivative requests, synthesizing each derivative once, and can
take back everything it added (a pass that fails leaves the module as it was)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from analysis.activity import Config
from differentiation.naming import jvp_name, vjp_name
from differentiation.requests import registered_derivative
from differentiation.thunks import subset_parameters_thunk
from sil import derivative_types as dt
from sil.diagnostics import SILError
from sil.ir import Function, Module, TypeDecl

if TYPE_CHECKING:
    from differentiation.primal import DerivativeEmitter


class Differentiator:
    """Synthesizes VJPs on demand, each function and configuration once.

    A derivative is declared when it is requested and its body emitted from a worklist (as
    Swift's ``ADContext`` does): a callee's derivative requested while a caller's body is emitted
    is declared at once, so the caller can call it, and emitted after the caller. So a chain of
    calls, however long, is not a chain of Python frames.
    """

    def __init__(self, module: Module) -> None:
        self.module = module
        self.vjps: dict[tuple[str, Config], Function] = {}
        self.jvps: dict[tuple[str, Config], Function] = {}
        self.added_functions: list[str] = []
        self.added_types: dict[str, None] = {}  # in order; records taken back leave one by one
        self._worklist: deque[DerivativeEmitter] = deque()
        self._emitting = False

    def vjp(self, fn: Function, config: Config) -> Function:
        """The synthesized VJP of ``fn`` for ``config`` (emitted now if it is not yet)."""
        key = (fn.name, config)
        found = self.vjps.get(key)
        if found is None:  # synthesized by an earlier pass?
            earlier = self.module.functions.get(vjp_name(fn.name, config))
            if earlier is not None and earlier.type == dt.vjp_type(
                self.module, fn.type, config.sources, config.wrt
            ):
                self.vjps[key] = found = earlier
        if found is None:
            from differentiation.reverse import ReverseEmitter

            self.vjps[key] = found = self._synthesize(ReverseEmitter(self, fn, config))
        return found

    def jvp(self, fn: Function, config: Config) -> Function:
        """The synthesized JVP of ``fn`` for ``config`` (emitted now if it is not yet)."""
        key = (fn.name, config)
        found = self.jvps.get(key)
        if found is None:
            earlier = self.module.functions.get(jvp_name(fn.name, config))
            if earlier is not None and earlier.type == dt.jvp_type(
                self.module, fn.type, config.sources, config.wrt
            ):
                self.jvps[key] = found = earlier
        if found is None:
            from differentiation.forward import ForwardEmitter

            self.jvps[key] = found = self._synthesize(ForwardEmitter(self, fn, config))
        return found

    def _synthesize(self, emitter: DerivativeEmitter) -> Function:
        """Declare ``emitter``'s derivative; emit its body, and those it requests, unless a body
        is being emitted already (then the loop emitting it will)."""
        derivative = emitter.declare()
        self._worklist.append(emitter)
        if not self._emitting:
            self._emitting = True
            try:
                while self._worklist:
                    self._worklist.popleft().emit_bodies()
            finally:
                self._emitting = False
                self._worklist.clear()
        return derivative

    def derivative_for(
        self, fn: Function, config: Config, kind: str, exact: bool = True
    ) -> tuple[Function, tuple[int, ...]]:
        """The derivative of ``kind`` ("jvp" or "vjp") a request for ``config`` uses, and the
        parameters its linear map covers: a registered one, also one for a superset of
        ``config.wrt`` (see ``registered_derivative``), which a request that needs exactly
        ``config``'s type (``exact``) gets through a subset-parameters thunk; else one synthesized
        from the body."""
        found = registered_derivative(self.module, fn, config, kind)
        if found is not None:
            registered, covered = found
            if exact and covered != config.wrt:  # adapted to exactly config's type
                return subset_parameters_thunk(self, fn, config, registered, covered, kind), config.wrt
            return found
        if fn.is_declaration:
            raise SILError.at(fn.span, f"'@{fn.name}' has no body and no registered {kind.upper()}")
        return (self.jvp if kind == "jvp" else self.vjp)(fn, config), config.wrt

    def jvp_for(self, fn: Function, config: Config) -> Function:
        """The JVP of ``fn`` for exactly ``config``: registered, else synthesized."""
        return self.derivative_for(fn, config, "jvp")[0]

    def vjp_for(self, fn: Function, config: Config) -> Function:
        """The VJP of ``fn`` for exactly ``config``: registered, else synthesized."""
        return self.derivative_for(fn, config, "vjp")[0]

    def jvp_for_call(
        self, callee: Function, wrt: tuple[int, ...], *, sources: tuple[int, ...]
    ) -> tuple[Function, tuple[int, ...]]:
        """The JVP a call of ``callee`` uses (see ``vjp_for_call``)."""
        return self.derivative_for(callee, Config(sources, wrt), "jvp", exact=False)

    def vjp_for_call(
        self, callee: Function, wrt: tuple[int, ...], *, sources: tuple[int, ...]
    ) -> tuple[Function, tuple[int, ...]]:
        """The VJP a call of ``callee`` uses for the arguments ``wrt`` and the results ``sources``: a
        registered one (for those or more arguments), else a synthesized one; and the arguments
        its pullback returns tangents for."""
        return self.derivative_for(callee, Config(sources, wrt), "vjp", exact=False)

    def add_function(self, fn: Function) -> None:
        if fn.name in self.module.functions:
            raise ValueError(f"'@{fn.name}' is already defined")
        self.module.add_function(fn)
        self.added_functions.append(fn.name)

    def add_type(self, decl: TypeDecl) -> None:
        if decl.name in self.module.types:
            raise ValueError(f"type '{decl.name}' is already declared")
        self.module.add_type(decl)
        self.added_types[decl.name] = None

    def remove_type(self, decl: TypeDecl) -> None:
        """Take back a type this differentiator added."""
        del self.module.types[decl.name]
        del self.added_types[decl.name]

    def roll_back(self) -> None:
        """Remove every function and type this differentiator added."""
        for name in self.added_functions:
            del self.module.functions[name]
        for name in self.added_types:
            del self.module.types[name]
        self.added_functions.clear()
        self.added_types.clear()
        self.vjps.clear()
        self.jvps.clear()
