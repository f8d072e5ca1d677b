"""Which functions a function refers to: the edges of the call graph (``analysis.call_graph``),
what keeps a function alive (``-dead-function-elim``), and the bottom-up order over the graph's
strongly connected components (the differentiator's and ``-inline``'s)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import networkx as nx

from sil.instructions import FunctionRefInst
from sil.ir import DifferentiableAttr, Function, LegacyDifferentiableAttr, Module


def referenced_functions(fn: Function, module: Module, derivatives: bool = True) -> Iterator[str]:
    """The functions of ``module`` that ``fn`` names: by ``function_ref``, and (with
    ``derivatives``) as the derivatives its attributes register (repeats included)."""
    for inst in fn.instructions():
        if isinstance(inst, FunctionRefInst) and inst.function_name in module.functions:
            yield inst.function_name
    if not derivatives:
        return
    for attr in fn.attributes:
        if isinstance(attr, DifferentiableAttr):
            named: tuple[str | None, ...] = (attr.jvp, attr.vjp)
        elif isinstance(attr, LegacyDifferentiableAttr):
            named = (attr.primal, attr.adjoint)
        else:
            continue
        yield from (name for name in named if name is not None and name in module.functions)


def reference_graph(module: Module, derivatives: bool = True) -> nx.DiGraph[str]:
    """The call graph: each function (by name, in module order) a node, an edge from each
    function to each it refers to (``referenced_functions``; without ``derivatives``, by
    ``function_ref`` only: what a run may call, where a registered VJP calling its original is
    no recursion)."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(module.functions)
    for fn in module.functions.values():
        graph.add_edges_from((fn.name, callee) for callee in referenced_functions(fn, module, derivatives))
    return graph


def bottom_up(graph: nx.DiGraph[str], order: Mapping[str, int]) -> list[list[str]]:
    """The strongly connected components of ``graph`` (groups of mutually recursive functions),
    callees' groups before their callers', each group and ties in ``order`` (deterministic, for
    passes whose output depends on the order: the differentiator, -inline)."""
    condensed = nx.condensation(graph)
    members = condensed.graph["mapping"]
    groups: dict[int, list[str]] = {}
    for name, group in members.items():
        groups.setdefault(group, []).append(name)
    for names in groups.values():
        names.sort(key=order.__getitem__)
    first = {group: order[names[0]] for group, names in groups.items()}
    ordered = nx.lexicographical_topological_sort(condensed.reverse(), key=first.__getitem__)
    return [groups[g] for g in ordered]
