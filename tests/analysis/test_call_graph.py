"""The call graph: edges for function_ref and for derivatives named by attributes; bottom-up order."""

from __future__ import annotations

from analysis.call_graph import CallGraph
from sil import parse

FN = "$@convention(thin) (Float) -> Float"


def function(name: str, calls: list[str], attrs: str = "") -> str:
    body = ["bb0(%x : $Float):"]
    value = "%x"
    for i, callee in enumerate(calls):
        body.append(f"  %f{i} = function_ref @{callee} : {FN}")
        body.append(f"  %r{i} = apply %f{i}({value}) : {FN}")
        value = f"%r{i}"
    body.append(f"  return {value} : $Float")
    return f"sil {attrs}@{name} : {FN} {{\n" + "\n".join(body) + "\n}\n"


MODULE = "\n".join(
    [
        function("main", ["a", "b"]),
        function("a", ["c"]),
        function("b", ["c", "b"]),
        function("c", []),
        function("even", ["odd"]),
        function("odd", ["even"]),
        function("d", [], "[differentiable source 0 wrt 0 vjp @c] "),
    ]
)


def test_edges_come_from_function_refs_and_derivative_attributes() -> None:
    graph = CallGraph(parse(MODULE, "m.sil"))
    assert graph.callees("main") == ["a", "b"]
    assert graph.callers("c") == ["a", "b", "d"]
    assert graph.callees("c") == []


def test_recursion_direct_and_mutual() -> None:
    graph = CallGraph(parse(MODULE, "m.sil"))
    assert graph.is_recursive("b")
    assert graph.is_recursive("even") and graph.is_recursive("odd")
    assert not graph.is_recursive("main") and not graph.is_recursive("c")


def test_bottom_up_puts_callees_first_and_groups_recursion() -> None:
    order = CallGraph(parse(MODULE, "m.sil")).bottom_up()
    position = {name: i for i, group in enumerate(order) for name in group}
    assert ["even", "odd"] in order
    for caller, callee in [("main", "a"), ("main", "b"), ("a", "c"), ("b", "c"), ("d", "c")]:
        assert position[callee] < position[caller]
    assert order == CallGraph(parse(MODULE, "m.sil")).bottom_up()  # deterministic


def test_reachable_from_follows_references_and_attributes_in_module_order() -> None:
    graph = CallGraph(parse(MODULE, "m.sil"))
    assert graph.reachable_from("main") == ["main", "a", "b", "c"]
    assert graph.reachable_from("d") == ["c", "d"]
    assert graph.reachable_from("odd") == ["even", "odd"]


def test_reachable_from_a_chain_of_ten_thousand_functions() -> None:
    names = [f"f{i}" for i in range(10_000)]
    text = "".join(function(n, [names[i + 1]] if i + 1 < len(names) else []) for i, n in enumerate(names))
    assert CallGraph(parse(text, "chain.sil")).reachable_from("f0") == names
