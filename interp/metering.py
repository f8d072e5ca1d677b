"""Step metering: where and how a counted run charges the instructions it executes.

Code generation writes a function as statements (``interp/statements.py``) whose charge points
are data: each instruction's ``Step``, and the places where a path leaves straight-line code or
may fault. For a run that counts steps (``--max-steps``, ``Program(count_steps=True)``),
``Metering`` rewrites those points into statements that charge them, before the source is
rendered; an uncounted run renders the same tree with no trace of counting.

A path is charged where it leaves straight-line code (a call, a return, a jump to a dispatched
block) or reaches code that can fault, all its steps at once: their number is subtracted from a
window of steps held in a local variable (``_left``), and only when the window goes below zero
does the frame turn to the shared budget (``StepBudget.refill``), which grants a new window or
faults at the first instruction past the budget. So a loop trip pays once, with one subtraction
and one test, and the instructions run past the budget before the test are pure, so
unobservable. A frame gives its window back to the budget before a call (the callee draws its
own) and at its return.

A dispatch loop whose trips neither call nor can fault is also written in a prepaid copy: each
trip takes a ticket (``for _ in _ticks``) paid for with the steps of the commonest path back
into the loop, and a path of another length adds or refunds the difference at its end. A tight
loop then pays for counting with one iteration of a C iterator. A trip longer than the price
draws the rest from the window, and before that faults the frame's unused tickets go back to the
budget. When the budget cannot pay for a whole trip, the loop goes on in the copy whose paths are
charged exactly, so a --max-steps fault stays at its exact instruction.
"""

from __future__ import annotations

import abc
import collections
import itertools
import operator
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from interp.faults import Fault
from interp.statements import (
    Arm,
    Branches,
    Call,
    Dispatch,
    Fallible,
    Goto,
    Loop,
    Nest,
    Node,
    Return,
    Step,
    Trap,
)
from sil.ir import Instruction


class StepsExceeded(Fault):
    """The --max-steps fault: every step of the budget was taken."""


# Each frame draws steps from the shared budget in windows this small, so that its local count
# stays among the integers CPython preallocates (-5 to 256) and counting a loop trip allocates
# nothing: one subtraction and one test.
STEP_WINDOW = 240
TICKETS = 4096  # loop trips a frame pays for at a time


@attrs.define(slots=True)
class StepBudget:
    """The steps a run may still take beyond the windows its frames hold."""

    left: int
    limit: int | None  # the --max-steps of the run; None when only counting

    def refill(
        self, window: int, run: tuple[int, ...], tickets: Iterator[None] | None = None, price: int = 0
    ) -> int:
        """A frame's window went below zero over the path ``run`` (site indices): charge what it
        owes and grant a new window, or fault at the first instruction past the budget.

        A frame in a prepaid loop passes its ``tickets`` (of ``price`` steps each): the budget
        they hold is the frame's too, so before a fault they are taken back, unused, and the
        loop's trip ends its run of tickets."""
        owed = -window
        if owed > self.left and tickets is not None:
            self.left += price * operator.length_hint(tickets)
            collections.deque(tickets, maxlen=0)
        if owed > self.left:
            fitted = window + len(run) + self.left  # the path's instructions the budget still covered
            self.left = 0
            raise StepsExceeded(run[fitted], f"the run exceeded --max-steps {self.limit}")
        self.left -= owed
        grant = min(STEP_WINDOW, self.left)
        self.left -= grant
        return grant

    def prepay(self, window: int, trip_cost: int) -> tuple[int, Iterator[None] | None]:
        """Take back a frame's window and sell it tickets for loop trips of ``trip_cost`` steps
        each; no tickets (None) when the budget cannot pay for a whole trip."""
        self.left += window
        tickets = min(TICKETS, self.left // trip_cost)
        if tickets == 0:
            return 0, None
        self.left -= tickets * trip_cost
        return 0, itertools.repeat(None, tickets)


Sites = Callable[[Instruction], int]
"""Registers an instruction in the program's site table and gives its index."""
Constants = Callable[[Any, str], str]
"""Gives the name of a closure cell holding a value (the value, a hint for the name)."""


class Metering:
    """Charges the steps of a counted run's functions to ``budget``."""

    def __init__(self, budget: StepBudget, site: Sites) -> None:
        self.site = site
        self.names: dict[str, Any] = {"_st": budget, "_tickets_left": operator.length_hint}
        """The constants metered code reads, by name."""

    def function(self, body: list[Node], const: Constants) -> list[Node]:
        """A function's body with its steps charged. The frame starts with an empty window: its
        first charge draws one."""
        return ["_left = 0", *_Exact(self.site, const).path(body, [])]


class _Paths(abc.ABC):
    """Rewrites statements along the paths through them, keeping the instructions run since the
    last charge on the path (``run``); a subclass says what each charge point becomes."""

    def path(self, nodes: list[Node], run: list[Instruction]) -> list[Node]:
        out: list[Node] = []
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, Step):
                run.append(node.inst)
            elif isinstance(node, Nest):
                out.append(Nest(node.head, self.path(node.body, run)))
            elif isinstance(node, Branches):
                out.append(Branches([Nest(arm.head, self.path(arm.body, list(run))) for arm in node.arms]))
            elif isinstance(node, Loop):
                out += self.loop(node)
            else:
                out += self.settle(node, run)
                run.clear()
        return out

    @abc.abstractmethod
    def settle(self, node: Node, run: list[Instruction]) -> list[Node]:
        """A charge point (``Fallible``, ``Call``, ``Return``, ``Trap``, ``Goto``), reached with
        the steps of ``run`` not charged yet."""

    def loop(self, node: Loop) -> list[Node]:
        raise AssertionError("a dispatch loop inside a dispatch loop")


class _Charging(_Paths):
    def __init__(self, site: Sites, const: Constants) -> None:
        self.site = site
        self.const = const

    def charge(self, run: list[Instruction], tickets: str = "") -> list[Node]:
        """Charge the steps of ``run`` to the window, and past the budget fault at the first of
        them it did not cover (``tickets``: the arguments that pass a prepaid loop's tickets)."""
        if not run:
            return []
        sites = self.const(tuple(self.site(inst) for inst in run), "run")
        return [
            f"_left -= {len(run)}",
            Nest("if _left < 0:", [f"_left = _st.refill(_left, {sites}{tickets})"]),
        ]


class _Exact(_Charging):
    """Each path charges its steps as it goes."""

    def settle(self, node: Node, run: list[Instruction]) -> list[Node]:
        charge = self.charge(run)
        if isinstance(node, Call):  # the callee draws its own window: give this one back, draw anew after
            return [*charge, "_st.left += _left", *node.body, "_left = 0"]
        if isinstance(node, Fallible):
            return [*charge, *node.body]
        if isinstance(node, Return):
            return [*charge, "_st.left += _left", node]
        return [*charge, node]

    def loop(self, node: Loop) -> list[Node]:
        exact = [(number, self.path(arm, [])) for number, arm in node.arms]
        price = _trip_price(node.arms)
        if price is None:
            return [Loop(exact)]
        prepaid = _Prepaid(self.site, self.const, price)
        arms = [(number, prepaid.path(arm, [])) for number, arm in node.arms]
        prepay = f"_left, _ticks = _st.prepay(_left, {price})"
        return [
            prepay,
            Nest("while _ticks is not None:", [Nest("for _ in _ticks:", [Dispatch(arms)]), prepay]),
            Loop(exact, "while True:  # the budget is nearly spent: charge each path exactly"),
        ]


class _Prepaid(_Charging):
    """Each trip of the dispatch loop was paid ``price`` steps in advance: a path settles the
    difference at its end."""

    def __init__(self, site: Sites, const: Constants, price: int) -> None:
        super().__init__(site, const)
        self.price = price

    def settle(self, node: Node, run: list[Instruction]) -> list[Node]:
        assert isinstance(node, (Return, Trap, Goto)), "a prepaid trip neither calls nor can fault"
        short = self.price - len(run)
        out = (
            [f"_left += {short}"] if short > 0 else self.charge(run[self.price :], f", _ticks, {self.price}")
        )
        if isinstance(node, Return):  # give back the window and the tickets not used
            out.append(f"_st.left += _left + {self.price} * _tickets_left(_ticks)")
        return [*out, node]


class _Trips(_Paths):
    """Measures the paths back into the dispatch loop, and whether any calls or can fault."""

    def __init__(self) -> None:
        self.lengths: list[int] = []
        self.payable = True

    def settle(self, node: Node, run: list[Instruction]) -> list[Node]:
        if isinstance(node, Goto):
            self.lengths.append(len(run))
        elif isinstance(node, (Fallible, Call)):
            self.payable = False
        return []


def _trip_price(arms: list[Arm]) -> int | None:
    """The steps of the commonest path back into the dispatch loop (the longer of equally common
    ones); None when a trip can call or fault, or no path goes back."""
    trips = _Trips()
    for _, arm in arms:
        trips.path(arm, [])
    lengths = trips.lengths
    if not trips.payable or not lengths:
        return None
    return max(set(lengths), key=lambda n: (lengths.count(n), n))
