"""The differentiator: answers derivative requests, synthesizing each derivative once, and can
take back everything it added (a pass that fails leaves the module as it was)."""

from __future__ import annotations

from analysis.activity import Config
from differentiation.naming import jvp_name, vjp_name
from differentiation.requests import registered_derivative
from differentiation.thunks import subset_parameters_thunk
from sil import derivative_types as dt
from sil.diagnostics import SILError
from sil.ir import Function, Module, TypeDecl


class Differentiator:
    """Synthesizes VJPs on demand, each function and configuration once."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.vjps: dict[tuple[str, Config], Function] = {}
        self.jvps: dict[tuple[str, Config], Function] = {}
        self.added_functions: list[str] = []
        self.added_types: list[str] = []

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

            emitter = ReverseEmitter(self, fn, config)
            self.vjps[key] = found = emitter.declare()
            emitter.emit_bodies()
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

            emitter = ForwardEmitter(self, fn, config)
            self.jvps[key] = found = emitter.declare()
            emitter.emit_bodies()
        return found

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
        self.added_types.append(decl.name)

    def remove_type(self, decl: TypeDecl) -> None:
        """Take back a type this differentiator added."""
        del self.module.types[decl.name]
        self.added_types.remove(decl.name)

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
