"""The properties every generated program must have, each reported as a ``Failure``, never raised.

- "parse", "verify": the text parses and verifies;
- "print": the printed module parses back and prints the same;
- "optimize": ``@f`` gives the same values (NaN equal to NaN, faults by their message) before and
  after ``-O``, at points drawn as ``--check-derivatives`` draws them;
- "derivatives": ``silopt.check_derivatives`` passes every request (the ``[differentiable]``
  attribute: JVP against finite differences, JVP against VJP by the dot-product identity);
- "derivatives after -O": the same with ``-O`` before differentiation and after it
  (``-O -differentiation -lower-gradient -O``), a placement of ``test_semantics_through_O.py``,
  with every derivative a pass of it emits verified after that pass (``--verify-derivatives``);
  for a ``gradient``, ``-O`` before the check, which differentiates and lowers;
- "second order": the JVP of the gradient of ``@f`` (a Hessian-vector product, without -O in
  between), every derivative the second ``-differentiation`` emits verified after it
  (``--verify-derivatives``: finite differences, the dot-product identity, the Hessian's
  symmetry); what the first ``-differentiation`` emits is what "derivatives" verifies, and the
  plain gradient @hvp asks for is checked through the Hessian's symmetry only.
A transform that raises anything but a ``SILError`` is a "crash" of the stage it was in.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from accel import Backend
from interp import Program
from interp.faults import RunError
from sil import SILError, parse, print_module, verify_module
from sil.builder import Builder
from sil.derivative_types import gradient_type
from sil.ir import Function, Module
from sil.passes import PassManager, registered_passes
from silopt.check_derivatives import check_module
from silopt.finite_differences import Draw
from silopt.generate.program import GeneratedProgram
from silopt.verify_derivatives import DerivativeVerification

POINTS = 3
MAX_STEPS = 200_000  # far above any generated program's runs: a loop that ran away is a failure
OPTIMIZED_DIFFERENTIATION = ("O", "differentiation", "lower-gradient", "O")


@attrs.frozen
class Failure:
    kind: str
    message: str


def check_program(program: GeneratedProgram, backend: Backend, seed: int = 0) -> list[Failure]:
    """What ``program`` fails of the properties the module docstring lists (empty: none)."""
    found = _stage("parse", lambda: _parsed(program.text))
    if isinstance(found, Failure):
        return [found]
    module = found
    problems = verify_module(module)
    if problems:
        return [Failure("verify", str(SILError(problems)))]
    failures = []
    for kind, check in (
        ("print", lambda: _round_trip(module)),
        ("optimize", lambda: _same_after_O(program, backend, seed)),
        ("derivatives", lambda: _derivatives(program.text, (), backend, seed)),
        (
            "derivatives after -O",
            lambda: _derivatives(program.text, _placement(program), backend, seed),
        ),
        ("second order", lambda: _second_order(program, backend, seed)),
    ):
        outcome = _stage(kind, check)
        if isinstance(outcome, Failure):
            failures.append(outcome)
        elif outcome:
            failures.append(Failure(kind, outcome))
    return failures


TWICE = ("differentiation", "lower-gradient", "differentiation", "lower-gradient")


def _second_order(program: GeneratedProgram, backend: Backend, seed: int) -> str:
    """The derivatives of ``@hvp``, the JVP of ``@f``'s gradient, verified as they are made."""
    module = _parsed(program.text)
    f = module.functions[program.function]
    hvp_type = gradient_type(module, f.type, 0, program.wrt, seedable=False, preserving_result=False)
    hvp = module.add_function(Function("hvp", hvp_type))
    block = hvp.add_block("bb0")
    args = [block.add_argument(t) for t in f.type.params]
    b = Builder.at_end(block, module)
    gradient = b.gradient(b.function_ref(f), program.wrt)
    jvp = b.differentiable_function_extract("jvp", b.differentiable_function(gradient, program.wrt))
    b.return_(b.tuple_extract(b.apply(jvp, *args), 0))  # the gradient; its JVP is what is checked
    # The first differentiation's derivatives are those the stage "derivatives" verifies.
    first, second = TWICE[:2], TWICE[2:]
    return _derivatives(print_module(module), second, backend, seed, then_check=False, before=first)


def _placement(program: GeneratedProgram) -> tuple[str, ...]:
    """The passes before the check of "derivatives after -O": a ``gradient`` is lowered by the
    check itself, since the -O after lowering inlines the lowered gradient and leaves nothing that
    names the request; an attribute keeps naming its JVP and VJP through it."""
    return ("O",) if program.ast.gradient is not None else OPTIMIZED_DIFFERENTIATION


def _stage(kind: str, run: Callable[[], Any]) -> Any:
    """``run()``, or the Failure of ``kind`` that its SILError is, or a crash."""
    try:
        return run()
    except SILError as e:
        return Failure(kind, str(e))
    except Exception:  # a bug of a transform or the interpreter: reported, not raised
        return Failure("crash", f"in {kind}: {traceback.format_exc()}")


def _parsed(text: str) -> Module:
    return parse(text, "generated.sil")


def _round_trip(module: Module) -> str:
    printed = print_module(module)
    again = print_module(parse(printed, "printed.sil"))
    return "" if again == printed else f"printed:\n{printed}\nprinted again:\n{again}"


def _run(program: Program, name: str, args: list[Any]) -> Any:
    try:
        return program.run(name, *args)
    except RunError as e:
        return RunError.__name__ + ": " + str(e).split("\n", 1)[0].split(": error: ", 1)[-1]


def same_value(a: Any, b: Any) -> bool:
    """Equal values, NaN equal to NaN (tuples and structs element by element)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def _same_after_O(program: GeneratedProgram, backend: Backend, seed: int) -> str:
    module, optimized = _parsed(program.text), _parsed(program.text)
    PassManager([registered_passes()["O"]()], verify_each=True).run(optimized)
    before = Program(module, backend, max_steps=MAX_STEPS)
    after = Program(optimized, backend, max_steps=MAX_STEPS)
    f = module.functions[program.function]
    draw = Draw(module, f"{seed}:optimize")
    for _ in range(POINTS):
        x = [draw.point(t) for t in f.type.params]
        want = _run(before, program.function, x)
        got = _run(after, program.function, x)
        if not same_value(want, got):
            return f"@{program.function}{tuple(x)} is {want!r}, and after -O {got!r}"
    return ""


def _derivatives(
    text: str,
    passes: Sequence[str],
    backend: Backend,
    seed: int,
    then_check: bool = True,
    before: Sequence[str] = (),
) -> str:
    """What is wrong with the derivatives ``passes`` emit, each verified after the pass that
    emitted it, and (``then_check``) with those the module then asks for, checked; the passes
    ``before`` run first, unverified."""
    module = _parsed(text)
    registry = registered_passes()
    verification = DerivativeVerification(backend, seed=seed, max_steps=MAX_STEPS)
    verification.see_gradients(module)
    PassManager([registry[p]() for p in before], True).run(module)
    PassManager([registry[p]() for p in passes], True, [verification]).run(module)
    if not then_check:
        return ""
    outcomes, errors = check_module(module, backend, seed=seed, max_steps=MAX_STEPS)
    wrong = [o.diagnostic() for o in outcomes if not o.passed]
    return str(SILError(wrong + errors)) if wrong or errors else ""
