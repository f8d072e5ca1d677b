"""Pictures of a module in Graphviz DOT: control-flow graphs (plain, or coloured by activity) and
the call graph.

Each picture is one ``digraph`` (so that ``dot -Tsvg`` renders it whole), each function (or, for
activity, each function and configuration) a ``subgraph cluster_N``. Node ids are made from
positions (``f0b2``: function 0, block 2), blocks and functions come in module order and edges in
the order the IR lists them, so the same module always gives the same text. Block contents are
HTML-like labels: every line as ``silopt`` prints it, escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from analysis.activity import Activity, ActivityInfo
from analysis.call_graph import CallGraph
from analysis.explain import instruction_text
from sil.instructions import ApplyInst, CondBranchInst, FunctionRefInst, SwitchEnumInst
from sil.ir import Block, DifferentiableAttr, Function, Instruction, LegacyDifferentiableAttr, Module, Value
from sil.printer import Printer, format_global

COLORS = {
    Activity.ACTIVE: "#d62728",
    Activity.VARIED: "#1f77b4",
    Activity.USEFUL: "#2ca02c",
    Activity.NONE: "#7f7f7f",
}
"""The colour of each activity label (and a legend says which is which)."""

_HEADER = ['  node [shape=plaintext, fontname="monospace"];', '  edge [fontname="monospace"];']


def html(text: str) -> str:
    """``text`` escaped for an HTML-like DOT label."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def quoted(text: str) -> str:
    """``text`` as a DOT quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def cfg_dot(functions: Sequence[Function]) -> str:
    """The control-flow graphs of ``functions`` (each with a body), one cluster each."""
    lines = ["digraph cfg {", *_HEADER]
    for index, fn in enumerate(functions):
        lines += _cluster(index, fn, None)
    lines.append("}")
    return "\n".join(lines) + "\n"


def activity_dot(infos: Sequence[ActivityInfo]) -> str:
    """The control-flow graph of each function and configuration, each value coloured by its
    activity (as ``-print-activity`` labels it), with a legend."""
    lines = ["digraph activity {", *_HEADER]
    for index, info in enumerate(infos):
        lines += _cluster(index, info.function, info)
    lines += _legend()
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cluster(index: int, fn: Function, info: ActivityInfo | None) -> list[str]:
    printer = Printer()
    printer.print_function(fn)  # names the values and blocks as the printed module does
    title = f"{format_global(fn.name)} : ${fn.type.text}"
    if info is not None:
        title += f"  (activity for {info.config.describe()})"
    lines = [f"  subgraph cluster_{index} {{", f"    label={quoted(title)};"]
    ids = {block: f"f{index}b{i}" for i, block in enumerate(fn.blocks)}
    for block in fn.blocks:
        rows = [_block_header(printer, block.args, printer.block(block), info)]
        rows += [_instruction_row(printer, inst, info) for inst in block.instructions]
        table = "".join(f'<tr><td align="left">{row}</td></tr>' for row in rows)
        lines.append(
            f'    {ids[block]} [label=<<table border="1" cellborder="0" cellspacing="0">{table}</table>>];'
        )
    for block in fn.blocks:
        term = block.terminator
        if term is None:
            continue
        for dest, label in _edges(printer, term):
            lines.append(f"    {ids[block]} -> {ids[dest]} [label={quoted(label)}];")
    lines.append("  }")
    return lines


def _painted(text: str, value: Value, info: ActivityInfo | None) -> str:
    if info is None:
        return html(text)
    activity = info.activity(value)
    return f'<font color="{COLORS[activity]}">{html(text)} [{activity.value}]</font>'


def _block_header(printer: Printer, args: Iterable[Value], label: str, info: ActivityInfo | None) -> str:
    parts = [_painted(f"{printer.value(a)} : ${a.type.text}", a, info) for a in args]
    return f"<b>{html(label)}</b>" + (f"({', '.join(parts)})" if parts else "") + ":"


def _instruction_row(printer: Printer, inst: Instruction, info: ActivityInfo | None) -> str:
    text = instruction_text(printer, inst)
    results = inst.results
    if info is None or not results:
        return html(text)
    if len(results) == 1:
        return _painted(text, results[0], info)
    labels = ", ".join(f"{printer.value(r)} {info.activity(r).value}" for r in results)
    strongest = min((info.activity(r) for r in results), key=list(COLORS).index)
    return f'<font color="{COLORS[strongest]}">{html(text)} [{html(labels)}]</font>'


def _edges(printer: Printer, term: Instruction) -> list[tuple[Block, str]]:
    """Each successor of a terminator with its edge's label: the arguments passed, after the case
    (``true``/``false`` of ``cond_br``, the case of ``switch_enum``)."""
    if isinstance(term, SwitchEnumInst):
        found = [(dest, f"case {case}{' (payload)' if dest.args else ''}") for case, dest in term.cases]
        if term.default is not None:
            found.append((term.default, "default"))
        return found
    cases = ("true", "false") if isinstance(term, CondBranchInst) else ("",)
    edges: list[tuple[Block, str]] = []
    for case, (dest, args) in zip(cases, term.successor_args()):
        passed = f"({printer.value_list(args)})" if args else ""
        edges.append((dest, f"{case}{' ' if case and passed else ''}{passed}"))
    return edges


def _legend() -> list[str]:
    rows = "".join(
        f'<tr><td align="left"><font color="{color}">{activity.value}</font></td></tr>'
        for activity, color in COLORS.items()
    )
    return [
        "  subgraph cluster_legend {",
        '    label="activity";',
        f'    legend [label=<<table border="0" cellspacing="0">{rows}</table>>];',
        "  }",
    ]


def callgraph_dot(module: Module, roots: Sequence[str] | None = None) -> str:
    """The call graph: a node per function (dashed: a declaration), an edge per reference (solid:
    called by ``apply``; dashed: referred to otherwise, as by ``partial_apply``; labelled: a
    derivative an attribute registers). With ``roots``, only what they can reach."""
    graph = CallGraph(module)
    names = list(module.functions)
    if roots is not None:
        reached = {n for root in roots for n in graph.reachable_from(root)}
        names = [n for n in names if n in reached]
    ids = {name: f"n{i}" for i, name in enumerate(names)}
    lines = [
        "digraph callgraph {",
        '  node [shape=box, fontname="monospace"];',
        '  edge [fontname="monospace"];',
    ]
    for name in names:
        fn = module.functions[name]
        style = ", style=dashed" if fn.is_declaration else ""
        lines.append(f"  {ids[name]} [label={quoted(format_global(name))}{style}];")
    for name in names:
        fn = module.functions[name]
        for callee in graph.callees(name):
            if callee in ids:
                lines.append(f"  {ids[name]} -> {ids[callee]}{_reference_style(fn, callee)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _reference_style(fn: Function, callee: str) -> str:
    """How ``fn`` refers to ``callee``: the attribute keys naming it, else called or referred to."""
    keys = []
    for attr in fn.attributes:
        if isinstance(attr, DifferentiableAttr):
            keys += [k for k, n in (("jvp", attr.jvp), ("vjp", attr.vjp)) if n == callee]
        elif isinstance(attr, LegacyDifferentiableAttr):
            keys += [k for k, n in (("primal", attr.primal), ("adjoint", attr.adjoint)) if n == callee]
    refs = [i for i in fn.instructions() if isinstance(i, FunctionRefInst) and i.function_name == callee]
    called = any(isinstance(u, ApplyInst) and u.callee is r.result for r in refs for u in r.result.uses)
    if keys:
        return f" [label={quoted(' '.join(keys))}, style=dotted]"
    return "" if called else " [style=dashed]"
