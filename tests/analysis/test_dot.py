"""DOT pictures: escaped labels, stable text, and the graph they draw."""

from __future__ import annotations

import re

from analysis.activity import Config, analyze_activity
from analysis.dot import activity_dot, callgraph_dot, cfg_dot, html, quoted
from sil import parse, print_module, verify_module
from sil.ir import Module

TEXT = """\
sil @"odd<name>\\"" : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %c = builtin "fcmp_olt"(%x : $Float, %x : $Float) : $Bool
  cond_br %c, bb1(%x : $Float), bb2
bb1(%a : $Float):
  br bb2
bb2:
  return %x : $Float
}

sil [differentiable source 0 wrt 0] @user : $@convention(thin) (Float) -> Float {
bb0(%x : $Float):
  %f = function_ref @"odd<name>\\"" : $@convention(thin) (Float) -> Float
  %y = apply %f(%x) : $@convention(thin) (Float) -> Float
  return %y : $Float
}
"""


def module() -> Module:
    m = parse(TEXT, "t.sil")
    assert verify_module(m) == []
    return m


def test_labels_are_escaped() -> None:
    assert html('a<b> & "c"') == "a&lt;b&gt; &amp; &quot;c&quot;"
    assert quoted('say "hi" \\ now') == '"say \\"hi\\" \\\\ now"'
    dot = cfg_dot([f for f in module().functions.values()])
    assert 'label="@\\"odd<name>\\\\\\"\\" : $@convention(thin) (Float) -> Float";' in dot
    assert "-&gt; Float" in dot and "&quot;fcmp_olt&quot;" in dot
    label_free = re.sub(r"<<.*?>>", "", dot)
    assert "<" not in re.sub(r'"(?:[^"\\]|\\.)*"', "", label_free)  # no raw HTML outside labels


def test_edges_follow_the_terminators() -> None:
    dot = cfg_dot([module().functions['odd<name>"']])
    edges = re.findall(r"(f0b\d) -> (f0b\d) \[label=\"([^\"]*)\"\]", dot)
    assert edges == [("f0b0", "f0b1", "true (%x)"), ("f0b0", "f0b2", "false"), ("f0b1", "f0b2", "")]


def test_the_text_is_the_same_for_a_reparsed_module() -> None:
    m = module()
    again = parse(print_module(m), "again.sil")
    assert cfg_dot(list(m.functions.values())) == cfg_dot(list(again.functions.values()))
    assert callgraph_dot(m) == callgraph_dot(again)


def test_activity_labels_every_value_with_the_analysis_answer() -> None:
    m = module()
    info = analyze_activity(m, m.functions["user"], Config(0, (0,)))
    dot = activity_dot([info])
    assert dot.count("[ACTIVE]") == 2  # %x and %y
    assert "%f = function_ref" in dot and "[NONE]" in dot
    assert "cluster_legend" in dot


def test_the_call_graph_has_a_node_per_function_and_an_edge_per_call() -> None:
    dot = callgraph_dot(module())
    assert 'n0 [label="@\\"odd<name>\\\\\\"\\""];' in dot
    assert "n1 -> n0;" in dot
    assert callgraph_dot(module(), ['odd<name>"']).count(" -> ") == 0
