"""The differentiation context (Swift's ``ADContext``): it owns the derivative requests of a pass,
the worklist of derivatives declared but not yet emitted, and the activity of each function and
configuration, computed once for the checks and the emitters alike; and it can take back
everything it added (a pass that fails leaves the module as it was).

Requests come two ways. A pass asks through ``jvp_for``, ``vjp_for`` or ``derivative_for``: the
derivative is declared, and the bodies of everything pending are emitted before the answer
returns. An emitter asks through ``jvp_for_call`` or ``vjp_for_call`` while it emits a body: the
callee's derivative is only declared (its name and type are all a call needs) and queued; the
loop of ``emit_pending`` emits it after, callees before callers (the strongly connected
components of the call graph, bottom-up; a component's mutually recursive functions in the order
they were declared). The emitters never call back into emission, so a chain
of calls, however long, is not a chain of Python frames, and a recursive function's derivative
calls the one being emitted.
"""

from __future__ import annotations

import heapq
import itertools

from analysis.activity import ActivityCache, ActivityInfo, Config
from analysis.call_graph import CallGraph
from differentiation.forward import ForwardEmitter
from differentiation.naming import jvp_name, vjp_name
from differentiation.primal import DerivativeEmitter
from differentiation.requests import registered_derivative
from differentiation.reverse import ReverseEmitter
from differentiation.statistics import ADStatistics
from differentiation.thunks import subset_parameters_thunk
from sil import derivative_types as dt
from sil.diagnostics import SILError, Span
from sil.ir import Function, Module, TypeDecl

EMITTERS: dict[str, type[DerivativeEmitter]] = {"jvp": ForwardEmitter, "vjp": ReverseEmitter}
DERIVATIVE_TYPES = {"jvp": dt.jvp_type, "vjp": dt.vjp_type}
DERIVATIVE_NAMES = {"jvp": jvp_name, "vjp": vjp_name}


class Differentiator:
    """The context of one pass's differentiation: synthesizes JVPs and VJPs on demand, each
    function, configuration and kind once, bodies from a worklist."""

    def __init__(self, module: Module, statistics: ADStatistics | None = None) -> None:
        self.module = module
        self.statistics = statistics  # what the emitters did, for --ad-stats (None: not counted)
        if statistics is not None:
            statistics.module = module
        self.synthesized: dict[tuple[str, Config, str], Function] = {}
        self.added_functions: list[str] = []
        self.added_types: dict[str, None] = {}  # in the order they were added
        # Pending emitters by (bottom-up rank of their function's call-graph component, arrival).
        self._worklist: list[tuple[int, int, DerivativeEmitter]] = []
        self._arrivals = itertools.count()
        self._ranks: dict[str, int] | None = None
        self._activities = ActivityCache(module)

    def activity(self, fn: Function, config: Config) -> ActivityInfo:
        """The activity of ``fn``'s values for ``config``, computed once per request."""
        return self._activities(fn, config)

    # --- requests from a pass: answered with every pending body emitted ------------------------
    def vjp(self, fn: Function, config: Config) -> Function:
        """The VJP of ``fn`` for ``config`` synthesized from its body, emitted."""
        return self._emitted(self._synthesized(fn, config, "vjp"))

    def jvp(self, fn: Function, config: Config) -> Function:
        """The JVP of ``fn`` for ``config`` synthesized from its body, emitted."""
        return self._emitted(self._synthesized(fn, config, "jvp"))

    def jvp_for(self, fn: Function, config: Config) -> Function:
        """The JVP of ``fn`` for exactly ``config``: registered, else synthesized."""
        return self.derivative_for(fn, config, "jvp")[0]

    def vjp_for(self, fn: Function, config: Config) -> Function:
        """The VJP of ``fn`` for exactly ``config``: registered, else synthesized."""
        return self.derivative_for(fn, config, "vjp")[0]

    def derivative_for(
        self, fn: Function, config: Config, kind: str, exact: bool = True
    ) -> tuple[Function, tuple[int, ...]]:
        """``lookup``'s answer, with the bodies of everything synthesized for it emitted."""
        found = self.lookup(fn, config, kind, exact)
        self.emit_pending()
        if self.statistics is not None:
            self.statistics.answered(kind, found[0].name)
        return found

    def request(self, form: str, fn: Function, config: Config, span: Span | None, *key: object) -> None:
        """What is made from now on answers this request (``ADStatistics.request``; nothing
        when no statistics are kept)."""
        if self.statistics is not None:
            self.statistics.request(form, fn, config, span, *key)

    def emit_pending(self) -> None:
        """Emit every declared derivative's body, callees' before callers': by the rank of the
        function's strongly connected component in the call graph, bottom-up (the members of one
        component, mutually recursive functions, in the order they were declared). Each may
        declare more (the derivatives of what it calls), which are emitted in turn."""
        while self._worklist:
            heapq.heappop(self._worklist)[2].emit_bodies()

    def _rank(self, fn: Function) -> int:
        """The position of ``fn``'s component in the call graph's bottom-up order (of the module
        as the context found it: what it adds calls only what is there already)."""
        if self._ranks is None:
            groups = CallGraph(self.module).bottom_up()
            self._ranks = {name: rank for rank, group in enumerate(groups) for name in group}
        return self._ranks.get(fn.name, len(self._ranks))

    def _emitted(self, fn: Function) -> Function:
        self.emit_pending()
        return fn

    # --- requests from an emitter: declared now, emitted by the loop ---------------------------
    def jvp_for_call(
        self, callee: Function, wrt: tuple[int, ...], *, sources: tuple[int, ...]
    ) -> tuple[Function, tuple[int, ...]]:
        """The JVP a call of ``callee`` uses (see ``vjp_for_call``)."""
        return self.lookup(callee, Config(sources, wrt), "jvp", exact=False)

    def vjp_for_call(
        self, callee: Function, wrt: tuple[int, ...], *, sources: tuple[int, ...]
    ) -> tuple[Function, tuple[int, ...]]:
        """The VJP a call of ``callee`` uses for the arguments ``wrt`` and the results ``sources``: a
        registered one (for those or more arguments), else a synthesized one; and the arguments
        its pullback returns tangents for. A synthesized one is declared; its body comes later."""
        return self.lookup(callee, Config(sources, wrt), "vjp", exact=False)

    def lookup(
        self, fn: Function, config: Config, kind: str, exact: bool
    ) -> tuple[Function, tuple[int, ...]]:
        """The derivative of ``kind`` ("jvp" or "vjp") a request for ``config`` uses, and the
        parameters its linear map covers: a registered one, also one for a superset of
        ``config.wrt`` (see ``registered_derivative``), which a request that needs exactly
        ``config``'s type (``exact``) gets through a subset-parameters thunk; else one synthesized
        from the body (declared, its body pending)."""
        found = registered_derivative(self.module, fn, config, kind)
        if found is not None:
            registered, covered = found
            if exact and covered != config.wrt:  # adapted to exactly config's type
                return subset_parameters_thunk(self, fn, config, registered, covered, kind), config.wrt
            return found
        if fn.is_declaration:
            raise SILError.at(fn.span, f"'@{fn.name}' has no body and no registered {kind.upper()}")
        return self._synthesized(fn, config, kind), config.wrt

    def _synthesized(self, fn: Function, config: Config, kind: str) -> Function:
        """The derivative of ``kind`` of ``fn`` for ``config`` synthesized from its body: one an
        earlier pass made, or one declared now and queued for emission."""
        key = (fn.name, config, kind)
        found = self.synthesized.get(key)
        if found is None:
            earlier = self.module.functions.get(DERIVATIVE_NAMES[kind](fn.name, config))
            if earlier is not None and earlier.type == DERIVATIVE_TYPES[kind](
                self.module, fn.type, config.sources, config.wrt
            ):
                found = earlier
            else:
                emitter = EMITTERS[kind](self, fn, config)
                found = emitter.declare()
                heapq.heappush(self._worklist, (self._rank(fn), next(self._arrivals), emitter))
            self.synthesized[key] = found
        return found

    # --- what the emitters add ------------------------------------------------------------------
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

    def roll_back(self) -> None:
        """Remove every function and type this context added, and forget what is pending."""
        for name in self.added_functions:
            del self.module.functions[name]
        for name in self.added_types:
            del self.module.types[name]
        self.added_functions.clear()
        self.added_types.clear()
        self.synthesized.clear()
        self._worklist.clear()
        self._ranks = None
