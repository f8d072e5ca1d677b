"""The call graph: which functions a function refers to (``function_ref``, and the derivatives its
attributes name), and the order to process functions so that callees come before callers."""

from __future__ import annotations

import networkx as nx

from sil.ir import Module
from sil.references import bottom_up, reference_graph


class CallGraph:
    """Functions as nodes (by name, in module order), an edge from each function to each it refers to."""

    def __init__(self, module: Module) -> None:
        self.graph = reference_graph(module)
        self._order = {name: i for i, name in enumerate(module.functions)}

    def callees(self, name: str) -> list[str]:
        """The functions ``name`` refers to, in module order."""
        return sorted(self.graph.successors(name), key=self._order.__getitem__)

    def callers(self, name: str) -> list[str]:
        """The functions that refer to ``name``, in module order."""
        return sorted(self.graph.predecessors(name), key=self._order.__getitem__)

    def reachable_from(self, name: str) -> list[str]:
        """``name`` and every function it can reach through references, in module order: what a
        run of ``name`` may call (networkx walks the graph with a worklist, not recursion)."""
        reached = nx.descendants(self.graph, name) | {name}
        return sorted(reached, key=self._order.__getitem__)

    def is_recursive(self, name: str) -> bool:
        """Whether ``name`` can reach itself (directly or through others)."""
        return self.graph.has_edge(name, name) or any(
            name in component and len(component) > 1
            for component in nx.strongly_connected_components(self.graph)
        )

    def bottom_up(self) -> list[list[str]]:
        """Groups of mutually recursive functions, callees' groups before their callers', each group
        and ties in module order (``sil.references.bottom_up``)."""
        return bottom_up(self.graph, self._order)
