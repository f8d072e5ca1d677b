"""Step metering (``interp/metering.py``): counted runs against the trace of every instruction a
run executes, and the charging statements the layer writes into a function's statement tree."""

from __future__ import annotations

import itertools
import operator
import random
from collections.abc import Callable
from typing import Any

import pytest

from accel.numpy_backend import NumpyBackend
from interp import Program, RunError
from interp.metering import STEP_WINDOW, Metering, StepBudget, StepsExceeded
from interp.statements import Branches, Call, Fallible, Goto, Loop, Nest, Node, Return, Step, Trap, render
from sil import parse, verify_module
from sil.instructions import (
    ApplyInst,
    BranchInst,
    BuiltinInst,
    CondBranchInst,
    EnumInst,
    FunctionRefInst,
    IntegerLiteralInst,
    ReturnInst,
    SwitchEnumInst,
    UnreachableInst,
)
from sil.ir import Instruction, Module, Value
from tests.interp.test_program import SOURCE as API_SOURCE


def summing_loop(name: str, *term: str) -> str:
    """``@name(n)``: the sum over ``i`` in ``0..<n`` of the term that the lines ``term`` compute
    into ``%t`` from ``%i``."""
    body = "".join(f"  {line}\n" for line in term)
    return f"""\
sil @{name} : $@convention(thin) (Int) -> Int {{
bb0(%n : $Int):
  %zero = integer_literal $Int, 0
  br bb1(%zero : $Int, %zero : $Int)

bb1(%i : $Int, %acc : $Int):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3

bb2:
{body}  %acc2 = builtin "add"(%acc : $Int, %t : $Int) : $Int
  %one = integer_literal $Int, 1
  %i2 = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%i2 : $Int, %acc2 : $Int)

bb3:
  return %acc : $Int
}}
"""


def calling(callee: str) -> tuple[str, str]:
    """The lines of a term ``@callee(%i)``."""
    fn_type = "$@convention(thin) (Int) -> Int"
    return f"%f = function_ref @{callee} : {fn_type}", f"%t = apply %f(%i) : {fn_type}"


SOURCE = (
    """\
enum Next {
  case stop
  case go(Int)
}

sil @square : $@convention(thin) (Int) -> Int {
bb0(%x : $Int):
  %y = builtin "mul"(%x : $Int, %x : $Int) : $Int
  return %y : $Int
}

sil @spin_to : $@convention(thin) (Int) -> Int {
bb0(%n : $Int):
  %zero = integer_literal $Int, 0
  br bb1(%zero : $Int)

bb1(%i : $Int):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3

bb2:
  %one = integer_literal $Int, 1
  %i2 = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%i2 : $Int)

bb3:
  return %i : $Int
}

"""
    + summing_loop("sum_of_squares", *calling("square"))
    + summing_loop("triangle", *calling("spin_to"))
    + summing_loop(
        "halves", "%two = integer_literal $Int, 2", '%t = builtin "sdiv"(%i : $Int, %two : $Int) : $Int'
    )
    + """
sil @divide_down : $@convention(thin) (Int) -> Int {
bb0(%n : $Int):
  %zero = integer_literal $Int, 0
  br bb1(%n : $Int, %zero : $Int)

bb1(%k : $Int, %acc : $Int):
  %hundred = integer_literal $Int, 100
  %q = builtin "sdiv"(%hundred : $Int, %k : $Int) : $Int
  %acc2 = builtin "add"(%acc : $Int, %q : $Int) : $Int
  %one = integer_literal $Int, 1
  %k2 = builtin "sub"(%k : $Int, %one : $Int) : $Int
  br bb1(%k2 : $Int, %acc2 : $Int)
}

sil @walk : $@convention(thin) (Int) -> Int {
bb0(%n : $Int):
  %zero = integer_literal $Int, 0
  br bb1(%zero : $Int)

bb1(%i : $Int):
  %one = integer_literal $Int, 1
  %next = builtin "add"(%i : $Int, %one : $Int) : $Int
  %more = builtin "cmp_slt"(%next : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3

bb2:
  %bit = builtin "and"(%next : $Int, %one : $Int) : $Int
  %odd = builtin "cmp_eq"(%bit : $Int, %one : $Int) : $Bool
  cond_br %odd, bb4, bb5

bb4:
  %two = integer_literal $Int, 2
  %m = builtin "and"(%next : $Int, %two : $Int) : $Int
  %high = builtin "cmp_eq"(%m : $Int, %two : $Int) : $Bool
  cond_br %high, bb6, bb1(%next : $Int)

bb6:
  %go = enum $Next, #Next.go!enumelt, %next : $Int
  switch_enum %go : $Next, case #Next.go!enumelt: bb7, case #Next.stop!enumelt: bb8

bb7(%v : $Int):
  br bb1(%v : $Int)

bb8:
  unreachable

bb5:
  %two5 = integer_literal $Int, 2
  %twice = builtin "mul"(%next : $Int, %two5 : $Int) : $Int
  %small = builtin "cmp_slt"(%twice : $Int, %n : $Int) : $Bool
  cond_br %small, bb1(%twice : $Int), bb1(%next : $Int)

bb3:
  %nbit = builtin "and"(%n : $Int, %one : $Int) : $Int
  %oddn = builtin "cmp_eq"(%nbit : $Int, %one : $Int) : $Bool
  cond_br %oddn, bb9, bb10

bb9:
  return %next : $Int

bb10:
  unreachable
}
"""
)

# With the programs of the API tests, for their recursive @count_down.
MODULE = parse(SOURCE + API_SOURCE, "metering.sil")
assert not verify_module(MODULE)


class _Faulted(Exception):
    pass


def _sdiv(a: int, b: int) -> int:
    if b == 0:
        raise _Faulted
    return a // b  # on the non-negative operands of these programs


_INT_BUILTINS: dict[str, Callable[[int, int], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "sdiv": _sdiv,
    "and": operator.and_,
    "cmp_slt": operator.lt,
    "cmp_sle": operator.le,
    "cmp_eq": operator.eq,
}

Trace = list[tuple[Instruction, tuple[ApplyInst, ...]]]


def trace(module: Module, name: str, *args: int) -> tuple[Trace, Any]:
    """Every instruction a call of ``@name`` executes, in order, with the ``apply``s it runs under
    (outermost first); and its result (None when it faults: ``unreachable``, division by zero)."""
    executed: Trace = []
    try:
        return executed, _call(module, name, list(args), (), executed)
    except _Faulted:
        return executed, None


def _call(module: Module, name: str, args: list[Any], under: tuple[ApplyInst, ...], executed: Trace) -> Any:
    block = module.functions[name].blocks[0]
    env: dict[Value, Any] = dict(zip(block.args, args))
    while True:
        for inst in block.instructions:
            executed.append((inst, under))
            if isinstance(inst, ReturnInst):
                return env[inst.operands[0]]
            if isinstance(inst, UnreachableInst):
                raise _Faulted
            if isinstance(inst, ApplyInst):
                env[inst.result] = _call(
                    module, env[inst.callee], [env[a] for a in inst.args], (*under, inst), executed
                )
            elif not isinstance(inst, (BranchInst, CondBranchInst, SwitchEnumInst)):
                env[inst.result] = _value(inst, env)
        block, values = _successor(block.instructions[-1], env)
        env.update(zip(block.args, values))


def _value(inst: Instruction, env: dict[Value, Any]) -> Any:
    if isinstance(inst, IntegerLiteralInst):
        return inst.value
    if isinstance(inst, BuiltinInst):
        return _INT_BUILTINS[inst.name](*(env[o] for o in inst.operands))
    if isinstance(inst, FunctionRefInst):
        return inst.function_name
    assert isinstance(inst, EnumInst)
    return inst.case, env[inst.operands[0]] if inst.operands else None


def _successor(term: Instruction, env: dict[Value, Any]) -> tuple[Any, list[Any]]:
    if isinstance(term, BranchInst):
        return term.dest, [env[v] for v in term.operands]
    if isinstance(term, CondBranchInst):
        if env[term.operands[0]]:
            return term.true_dest, [env[v] for v in term.true_args]
        return term.false_dest, [env[v] for v in term.false_args]
    assert isinstance(term, SwitchEnumInst)
    case, payload = env[term.operands[0]]
    dest = next(d for c, d in term.cases if c == case)
    return dest, [payload] if dest.args else []


def expected_notes(under: tuple[ApplyInst, ...]) -> list[tuple[Any, str]]:
    """The ``called from`` notes of a fault under these calls: innermost first, a run of calls
    from one place (recursion) as one note."""
    notes: list[tuple[Any, str]] = []
    calls = list(reversed(under))
    while calls:
        call = calls.pop(0)
        nested = 1
        while calls and calls[0] is call:
            calls.pop(0)
            nested += 1
        assert call.block is not None
        message = f"called from @{call.block.function.name}"
        notes.append(
            (call.span, message + (f" ({nested} nested calls from this place)" if nested > 1 else ""))
        )
    return notes


CASES = [
    ("@sum_of_squares", 25),  # a loop whose trips call: charged path by path, windows across calls
    ("@count_down", 12),  # recursion: branches, and a ``called from`` note of nested calls
    ("@triangle", 12),  # a loop that calls a loop paid in advance: tickets given back at each return
    ("@halves", 40),  # a loop whose trips can fault: charged path by path
    ("@divide_down", 30),  # a fault (division by zero) past the budget is no fault at all
    # Paid in advance: trips through a switch longer than the price, shorter ones, and the
    # return (odd n) or the trap (even n) after the loop.
    ("@walk", 121),
    ("@walk", 60),
]


def budgets(steps: int) -> list[int]:
    """The budgets to try on a run of ``steps``: the first 40, those around the end of the first
    window a frame draws, a sample of the others, and the whole run."""
    dense = {*range(1, 41), *range(STEP_WINDOW - 8, STEP_WINDOW + 9)}
    others = sorted(set(range(1, steps)) - dense)
    sample = random.Random(steps).sample(others, min(50, len(others)))
    return sorted({*(b for b in dense if b < steps), *sample, steps})


@pytest.mark.parametrize(("fn", "n"), CASES)
def test_counting_counts_every_instruction_executed(fn: str, n: int) -> None:
    executed, result = trace(MODULE, fn.removeprefix("@"), n)
    program = Program(MODULE, NumpyBackend(), count_steps=True)
    if result is None:  # the fault is at the last instruction executed
        with pytest.raises(RunError) as e:
            program.run(fn, n)
        assert e.value.diagnostics[0].span == executed[-1][0].span
        assert "--max-steps" not in e.value.diagnostics[0].message
    else:
        assert program.run(fn, n) == result
        assert program.steps == len(executed)


@pytest.mark.parametrize(("fn", "n"), CASES)
def test_max_steps_faults_at_the_instruction_past_the_budget(fn: str, n: int) -> None:
    """Whatever the budget, the fault is at the instruction executed just past it, under the
    calls it runs under, and the run took exactly the budget; a budget of the whole run is enough."""
    executed, result = trace(MODULE, fn.removeprefix("@"), n)
    for budget in budgets(len(executed)):
        program = Program(MODULE, NumpyBackend(), max_steps=budget)
        if budget == len(executed):  # enough: the run returns, or faults as it would without a limit
            if result is not None:
                assert program.run(fn, n) == result
                assert program.steps == budget
            else:
                with pytest.raises(RunError) as e:
                    program.run(fn, n)
                assert e.value.diagnostics[0].span == executed[-1][0].span
                assert "--max-steps" not in e.value.diagnostics[0].message
            continue
        with pytest.raises(RunError) as e:
            program.run(fn, n)
        (d,) = e.value.diagnostics
        inst, under = executed[budget]
        assert (d.message, d.span) == (f"the run exceeded --max-steps {budget}", inst.span), budget
        assert [(note.span, note.message) for note in d.notes] == expected_notes(under), budget
        assert program.steps == budget


@pytest.mark.parametrize(
    ("fn", "n"), [("@walk", 20_001), ("@walk", 5_000), ("@triangle", 120), ("@sum_of_squares", 3_000)]
)
def test_long_runs_are_counted_exactly_past_many_windows_and_tickets(fn: str, n: int) -> None:
    """Runs long enough to buy tickets again and again, and to draw many windows, are counted
    exactly, and fault exactly at budgets around the end of a batch of tickets."""
    executed, result = trace(MODULE, fn.removeprefix("@"), n)
    counted = Program(MODULE, NumpyBackend(), count_steps=True)
    if result is not None:
        assert counted.run(fn, n) == result
        assert counted.steps == len(executed)
    for budget in random.Random(n).sample(range(len(executed) // 2, len(executed)), 12):
        program = Program(MODULE, NumpyBackend(), max_steps=budget)
        with pytest.raises(RunError) as e:
            program.run(fn, n)
        assert e.value.diagnostics[0].span == executed[budget][0].span
        assert program.steps == budget


def test_a_prepaid_frame_spends_its_unused_tickets_before_it_faults() -> None:
    """A trip longer than the price charges the rest from the window; when the budget outside
    is spent, the frame's unused tickets still hold steps of the budget (before, a run faulted
    early there, at an instruction it had not reached)."""
    budget = StepBudget(0, 100)
    tickets = itertools.repeat(None, 5)  # 5 trips of 4 steps paid for
    assert budget.refill(-3, (7, 8, 9), tickets, 4) == 17  # owes 3 of the 20: the rest is a window
    assert budget.left == 0 and list(tickets) == []
    budget = StepBudget(0, 100)
    with pytest.raises(StepsExceeded) as e:
        budget.refill(-3, (7, 8, 9), itertools.repeat(None, 1), 2)
    assert e.value.site == 9  # two of the three steps were still paid for


# --- the statements the layer writes ----------------------------------------------------------

INSTS = list(MODULE.functions["walk"].instructions())


def metered(body: list[Node]) -> tuple[list[str], list[Instruction], dict[str, Any]]:
    """``body`` metered and rendered; the instructions given sites, in order; the constants named."""
    sites: list[Instruction] = []
    constants: dict[str, Any] = {}

    def site(inst: Instruction) -> int:
        sites.append(inst)
        return len(sites) - 1

    def const(value: Any, hint: str) -> str:
        name = f"_{hint}{len(constants)}"
        constants[name] = value
        return name

    metering = Metering(StepBudget(100, 100), site)
    return render(metering.function(body, const), True), sites, constants


def test_a_path_is_charged_before_a_call_and_a_return_and_gives_its_window_back() -> None:
    a, b, c = INSTS[:3]
    body: list[Node] = [Step(a), "v0 = 1", Step(b), Call(["v1 = g(_d + 1, v0)"]), Step(c), Return("v1")]
    assert render(body, True) == ["v0 = 1", "v1 = g(_d + 1, v0)", "return v1"]  # uncounted
    lines, sites, constants = metered(body)
    assert lines == [
        "_left = 0",
        "v0 = 1",
        "_left -= 2",
        "if _left < 0:",
        "    _left = _st.refill(_left, _run0)",
        "_st.left += _left",
        "v1 = g(_d + 1, v0)",
        "_left = 0",
        "_left -= 1",
        "if _left < 0:",
        "    _left = _st.refill(_left, _run1)",
        "_st.left += _left",
        "return v1",
    ]
    assert sites == [a, b, c] and constants == {"_run0": (0, 1), "_run1": (2,)}


def test_each_branch_charges_the_steps_before_it_and_code_that_can_fault_is_charged_first() -> None:
    a, b, c, d = INSTS[:4]
    body: list[Node] = [
        Step(a),
        Branches(
            [
                Nest("if x:", [Step(b), Goto(1)]),
                Nest(
                    "else:",
                    [Step(c), Fallible(["y = _sdiv(x, 0, 9)"]), Step(d), Trap("raise _Fault(7, 'u')")],
                ),
            ]
        ),
    ]
    lines, sites, constants = metered(body)
    assert lines == [
        "_left = 0",
        "if x:",
        "    _left -= 2",
        "    if _left < 0:",
        "        _left = _st.refill(_left, _run0)",
        "    _b = 1",
        "else:",
        "    _left -= 2",
        "    if _left < 0:",
        "        _left = _st.refill(_left, _run1)",
        "    y = _sdiv(x, 0, 9)",
        "    _left -= 1",
        "    if _left < 0:",
        "        _left = _st.refill(_left, _run2)",
        "    raise _Fault(7, 'u')",
    ]
    assert sites == [a, b, a, c, d]
    assert constants == {"_run0": (0, 1), "_run1": (2, 3), "_run2": (4,)}


def test_a_loop_whose_trips_call_is_charged_path_by_path() -> None:
    a, b = INSTS[:2]
    body: list[Node] = [Loop([(1, [Step(a), Call(["v = g(_d + 1)"]), Step(b), Goto(1)])])]
    lines, _, _ = metered(body)
    assert lines == [
        "_left = 0",
        "while True:",
        "    _left -= 1",
        "    if _left < 0:",
        "        _left = _st.refill(_left, _run0)",
        "    _st.left += _left",
        "    v = g(_d + 1)",
        "    _left = 0",
        "    _left -= 1",
        "    if _left < 0:",
        "        _left = _st.refill(_left, _run1)",
        "    _b = 1",
    ]


def test_a_loop_that_neither_calls_nor_faults_is_paid_in_advance_at_the_commonest_trip() -> None:
    """Trips back into the loop of 2, 4, 1 and 2 steps are sold at 2: the trip of 4 charges its
    last two, the trip of 1 is refunded one, the return of 3 steps charges its last one and gives
    back the tickets not used. The copy charged exactly runs when the budget cannot pay a trip."""
    a, b, c, d, e, f, g = INSTS[:7]
    arms: list[tuple[int, list[Node]]] = [
        (
            1,
            [
                Step(a),
                Step(b),
                Branches([Nest("if x:", [Goto(1)]), Nest("else:", [Step(c), Step(d), Goto(2)])]),
            ],
        ),
        (
            2,
            [
                Step(e),
                Branches(
                    [
                        Nest("if y:", [Goto(1)]),
                        Nest("elif w:", [Step(f), Goto(2)]),
                        Nest("else:", [Step(f), Step(g), Return("z")]),
                    ]
                ),
            ],
        ),
    ]
    lines, sites, constants = metered([Loop(arms)])
    assert lines == [
        "_left = 0",
        "_left, _ticks = _st.prepay(_left, 2)",
        "while _ticks is not None:",
        "    for _ in _ticks:",
        "        if _b == 1:",
        "            if x:",
        "                _b = 1",
        "            else:",
        "                _left -= 2",
        "                if _left < 0:",
        "                    _left = _st.refill(_left, _run5, _ticks, 2)",
        "                _b = 2",
        "        elif _b == 2:",
        "            if y:",
        "                _left += 1",
        "                _b = 1",
        "            elif w:",
        "                _b = 2",
        "            else:",
        "                _left -= 1",
        "                if _left < 0:",
        "                    _left = _st.refill(_left, _run6, _ticks, 2)",
        "                _st.left += _left + 2 * _tickets_left(_ticks)",
        "                return z",
        "    _left, _ticks = _st.prepay(_left, 2)",
        "while True:  # the budget is nearly spent: charge each path exactly",
        "    if _b == 1:",
        "        if x:",
        "            _left -= 2",
        "            if _left < 0:",
        "                _left = _st.refill(_left, _run0)",
        "            _b = 1",
        "        else:",
        "            _left -= 4",
        "            if _left < 0:",
        "                _left = _st.refill(_left, _run1)",
        "            _b = 2",
        "    elif _b == 2:",
        "        if y:",
        "            _left -= 1",
        "            if _left < 0:",
        "                _left = _st.refill(_left, _run2)",
        "            _b = 1",
        "        elif w:",
        "            _left -= 2",
        "            if _left < 0:",
        "                _left = _st.refill(_left, _run3)",
        "            _b = 2",
        "        else:",
        "            _left -= 3",
        "            if _left < 0:",
        "                _left = _st.refill(_left, _run4)",
        "            _st.left += _left",
        "            return z",
    ]
    runs = {name: [sites[i] for i in run] for name, run in constants.items()}
    assert runs == {
        "_run0": [a, b],
        "_run1": [a, b, c, d],
        "_run2": [e],
        "_run3": [e, f],
        "_run4": [e, f, g],
        "_run5": [c, d],
        "_run6": [g],
    }
