"""Generated code as a small tree of statements, rendered to Python source once.

Code generation (``interp/compiler.py``) writes a SIL function as a list of nodes: lines of Python,
compound statements with their bodies, and, as data, the points where a counted run charges
steps: ``Step`` (an instruction runs here), ``Fallible`` (code that may fault), ``Call``,
``Return``, ``Trap`` and ``Goto`` (where a path leaves straight-line code), ``Branches`` (paths
that part) and ``Loop`` (the dispatch loop over the blocks not written in place). Rendered as it
is, the tree is the uncounted function: a charge point is its plain statement, or nothing.
``interp/metering.py`` rewrites the charge points of a counted function into the statements that
charge them, and that tree is rendered the same way; no text is edited after it is rendered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import attrs

from sil.ir import Instruction

Node: TypeAlias = "str | Nest | Branches | Step | Fallible | Call | Return | Trap | Goto | Loop | Dispatch"
"""A statement: a ``str`` is one line of Python, indented relative to its place (a template's
lines carry their own relative indentation)."""

Arm: TypeAlias = "tuple[int, list[Node]]"
"""A dispatched block: its block number and its statements."""


@attrs.frozen(eq=False)
class Nest:
    """A compound statement: its header line (``try:``, ``if x:``) and its indented body."""

    head: str
    body: list[Node]

    def render(self, indent: str, jump: str, out: list[str]) -> None:
        out.append(indent + self.head)
        _render(self.body, indent + "    ", jump, out)


@attrs.frozen(eq=False)
class Branches:
    """Paths that part: the ``if``/``elif``/``else`` clauses of one test, each a path that ends
    in a jump, a return or a trap. Each path carries on from the instructions before the test."""

    arms: list[Nest]

    def render(self, indent: str, jump: str, out: list[str]) -> None:
        _render(self.arms, indent, jump, out)


@attrs.frozen(eq=False)
class Step:
    """The instruction ``inst`` runs here (its statements follow): one step of a counted run."""

    inst: Instruction

    def render(self, indent: str, jump: str, out: list[str]) -> None:
        """Nothing: a step is data for metering."""


@attrs.frozen(eq=False)
class Fallible:
    """Statements that may fault: the steps run so far on the path are charged before them."""

    body: list[Node]

    def render(self, indent: str, jump: str, out: list[str]) -> None:
        _render(self.body, indent, jump, out)


@attrs.frozen(eq=False)
class Call:
    """Statements that call a compiled function, which counts its own steps."""

    body: list[Node]

    def render(self, indent: str, jump: str, out: list[str]) -> None:
        _render(self.body, indent, jump, out)


@attrs.frozen(eq=False)
class Return:
    """``return value``: the path ends."""

    value: str

    def render(self, indent: str, jump: str, out: list[str]) -> None:
        out.append(f"{indent}return {self.value}")


@attrs.frozen(eq=False)
class Trap:
    """A statement that always faults (``unreachable``): the path ends."""

    statement: str

    def render(self, indent: str, jump: str, out: list[str]) -> None:
        out.append(indent + self.statement)


@attrs.frozen(eq=False)
class Goto:
    """A jump to the dispatched block numbered ``block``: the path ends, and the dispatch loop
    takes another trip."""

    block: int

    def render(self, indent: str, jump: str, out: list[str]) -> None:
        out.append(indent + jump.format(self.block))


@attrs.frozen(eq=False)
class Dispatch:
    """The arm of the block whose number is in ``_b``."""

    arms: list[Arm]

    def render(self, indent: str, jump: str, out: list[str]) -> None:
        _render(self.arms[0][1] if len(self.arms) == 1 else _dispatch_tree(self.arms), indent, jump, out)


@attrs.frozen(eq=False)
class Loop:
    """The dispatch loop: ``head`` (a ``while`` header), then the arm of the block numbered ``_b``."""

    arms: list[Arm]
    head: str = "while True:"

    def render(self, indent: str, jump: str, out: list[str]) -> None:
        out.append(indent + self.head)
        Dispatch(self.arms).render(indent + "    ", jump, out)


def render(nodes: list[Node], numbered: bool, indent: str = "") -> list[str]:
    """The source lines of ``nodes``, each prefixed with ``indent``.

    ``numbered``: whether a jump sets the block number; with one dispatched block, every jump
    goes to it and needs none (a jump is then ``pass``).
    """
    out: list[str] = []
    _render(nodes, indent, "_b = {}" if numbered else "pass", out)
    return out


def _render(nodes: Sequence[Node], indent: str, jump: str, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(indent + node)
        else:
            node.render(indent, jump, out)


# Arms tested one after another, in the order they were found (a loop's body first); more are
# first split in halves by block number, so that finding an arm costs a few tests, and the
# generated code never nests an ``elif`` chain so long that compiling it overflows the stack.
_DISPATCH_CHAIN = 16


def _dispatch_tree(arms: list[Arm]) -> list[Node]:
    """Dispatch on ``_b`` to the arms."""
    if len(arms) <= _DISPATCH_CHAIN:
        return [
            Nest(f"{'if' if i == 0 else 'elif'} _b == {number}:", arm) for i, (number, arm) in enumerate(arms)
        ]
    middle = sorted(number for number, _ in arms)[len(arms) // 2]
    low = _dispatch_tree([a for a in arms if a[0] < middle])
    high = _dispatch_tree([a for a in arms if a[0] >= middle])
    return [Nest(f"if _b < {middle}:", low), Nest("else:", high)]
