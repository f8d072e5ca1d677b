"""A campaign's tasks (``silopt.campaign``): a function of a ``Task`` alone, so that any worker (a
process of a local pool, a Dask worker) runs it and returns the same ``Outcome`` for the same task.

A "generate" task is a hypothesis search over ``silopt.generate.programs()`` seeded from the
campaign's seed and the task; a failing program comes back shrunk, with the commands that show it.
A "fuzz" task mutates corpus inputs, each with its own ``random.Random`` (seed and input index),
runs silopt on them in-process with a flag set, and minimizes each violation of the contract.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import random
import re
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from silopt.fuzz import FLAG_SETS, contract_violation, corpus, mutate, run_silopt, tokenize

if TYPE_CHECKING:
    from collections.abc import Callable

    from silopt.generate import Failure, GeneratedProgram

FILE = "\0FILE\0"  # where a saved failure's header names its own path
MINIMIZE_RUNS = 300
# Shrinking a generated program checks it again and again: past this, the smallest found is kept
# (``--shrink-seconds``).
SHRINK_SECONDS = 15.0
_BLURRED = [
    (re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`"), "'…'"),
    (re.compile(r"[%@#$][\w$.]+"), "%x"),
    (re.compile(r"\d+"), "N"),
]


@attrs.frozen
class Task:
    kind: str  # "generate" or "fuzz"
    seed: int
    start: int
    count: int
    shrink_seconds: float = SHRINK_SECONDS  # how long a failing generated program is shrunk


@attrs.frozen
class Found:
    """A failure: its kind, message, the (minimized) text that shows it and the header to save it
    under, with ``FILE`` where the saved file's path goes."""

    kind: str
    message: str
    text: str
    header: str


@attrs.frozen
class Outcome:
    task: Task
    tried: int
    found: tuple[Found, ...]


def failure_key(kind: str, message: str) -> str:
    """What makes two failures the same: the kind and the message's first line, blurred."""
    first = message.strip().split("\n", 1)[0]
    for pattern, blur in _BLURRED:
        first = pattern.sub(blur, first)
    return f"{kind}: {first}"


def derived_seed(seed: int, kind: str, index: int) -> int:
    """A task's own seed, from the campaign's."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{kind}:{index}".encode()).digest()[:8], "big")


def run_task(task: Task) -> Outcome:
    """Run ``task`` where it is called, then collect its cyclic garbage.

    A task leaves some hundred thousand objects in cycles (modules whose blocks and
    instructions point back at their owners). Before ``sil.collection`` had a rule of its own for
    them, a worker kept growing until the kernel killed it (12 GB after ~700 tasks); that rule
    lets up to half a million objects wait, and collected after each task, a worker stays near
    120 MB."""
    try:
        return _generate(task) if task.kind == "generate" else _fuzz(task)
    finally:
        gc.collect()


# --- generated programs --------------------------------------------------------------------------------
def _generate(task: Task) -> Outcome:
    from hypothesis import HealthCheck, Verbosity, given, seed, settings

    from accel.numpy_backend import NumpyBackend
    from silopt.generate import check_program, programs

    backend = NumpyBackend()
    tried = [0]
    failing: list[tuple[GeneratedProgram, list[Failure]]] = []
    known: dict[str, list[Failure]] = {}
    shrunk_by = [0.0]

    @seed(derived_seed(task.seed, task.kind, task.start))
    @settings(
        database=None,
        derandomize=False,
        max_examples=task.count,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
    )
    @given(programs())
    def has_every_property(program: GeneratedProgram) -> None:
        tried[0] += 0 if failing else 1
        if failing and time.monotonic() > shrunk_by[0] and program.text not in known:
            return  # past the time to shrink: only the programs known to fail still fail
        failures = known.get(program.text) or check_program(program, backend)
        known[program.text] = failures
        if failures and not failing:
            shrunk_by[0] = time.monotonic() + task.shrink_seconds
        if failures:
            failing.append((program, failures))  # the last one is the shrunk one, replayed at the end
            raise AssertionError(failures[0].kind)

    try:
        has_every_property()
    except Exception as e:
        if not failing:  # hypothesis itself gave up: a failure of the generator
            return Outcome(task, tried[0], (Found("generator", _exception_message(e), "", ""),))
    found: tuple[Found, ...] = ()
    if failing:
        program, failures = failing[-1]
        found = (Found(failures[0].kind, failures[0].message, program.text, _program_header(task, program)),)
    return Outcome(task, tried[0], found)


def _program_header(task: Task, program: GeneratedProgram) -> str:
    lines = [f"// RUN: python -m silopt.campaign --recheck {FILE}"]
    gradient = program.ast.gradient is not None
    lines.append(f"// RUN: silopt {FILE} --check-derivatives")
    placement = "-O" if gradient else "-O -differentiation -lower-gradient -O"
    lines.append(f"// RUN: silopt {FILE} {placement} --check-derivatives")
    lines.append(f"// generated: seed {task.seed}, programs {task.start}-{task.start + task.count - 1}")
    lines.append(f"// AST: {program.ast!r}")
    return "\n".join(lines) + "\n"


def recheck_text(text: str) -> list[Failure]:
    """``check_program`` again on the program a saved failure's ``// AST:`` line holds."""
    from accel.numpy_backend import NumpyBackend
    from silopt.generate import ast, check_program, generated

    line = next(line for line in text.split("\n") if line.startswith("// AST: "))
    names = {k: v for k, v in vars(ast).items() if isinstance(v, type)}
    program = eval(line.removeprefix("// AST: "), {"__builtins__": {}}, names)  # the file's own AST
    return list(check_program(generated(program), NumpyBackend()))


# --- mutated inputs -------------------------------------------------------------------------------------
@functools.cache
def _corpus() -> tuple[tuple[str, tuple[str, ...]], ...]:
    root = Path(__file__).resolve().parent.parent
    return tuple(
        (p.relative_to(root).as_posix(), tuple(tokenize(p.read_text("utf-8")))) for p in corpus(root)
    )


def fuzz_failure(text: str, flags: list[str]) -> tuple[str, str] | None:
    """How silopt fails on ``text`` with ``flags`` (kind, message), or None."""
    try:
        status, out, err = run_silopt(["-", *flags], stdin=text)
    except TimeoutError as e:
        return "hang", str(e)
    except Exception as e:  # what the contract forbids: a traceback
        return "traceback", _exception_message(e)
    violation = contract_violation("<stdin>", text, status, out, err)
    return None if violation is None else ("contract", violation)


def _exception_message(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)
    where = f" (in {Path(frames[-1].filename).name}, {frames[-1].name})" if frames else ""
    return f"{type(e).__name__}: {str(e).split(chr(10))[0]}{where}\n" + "".join(traceback.format_exception(e))


def _fuzz(task: Task) -> Outcome:
    inputs = _corpus()
    found: list[Found] = []
    if not inputs:
        return Outcome(task, 0, (Found("corpus", "no golden/ or examples/ inputs to mutate", "", ""),))
    for index in range(task.start, task.start + task.count):
        r = random.Random(f"{task.seed}:{index}")
        name, tokens = r.choice(inputs)
        text = mutate(list(tokens), r)
        flags = r.choice(FLAG_SETS)
        header = (
            f"// RUN: {' '.join(['silopt', FILE, *flags])}\n"
            f"// mutated: seed {task.seed}, input {index}, from {name}\n"
        )
        failure = fuzz_failure(header + text, flags)
        if failure is not None:
            kind, message = failure
            key = failure_key(kind, message)
            if kind != "hang":
                text = minimize(text, functools.partial(_fails_alike, header, flags, key))
            found.append(Found(kind, message, text, header))
    return Outcome(task, task.count, tuple(found))


def _fails_alike(header: str, flags: list[str], key: str, text: str) -> bool:
    failure = fuzz_failure(header + text, flags)
    return failure is not None and failure_key(*failure) == key


def minimize(text: str, fails: Callable[[str], bool], runs: int = MINIMIZE_RUNS) -> str:
    """``text`` with lines, then tokens, removed while it still ``fails``, within ``runs`` runs."""
    budget = [runs]

    def shrink(parts: list[str]) -> list[str]:
        i = len(parts) - 1
        while i >= 0 and budget[0] > 0:
            candidate = parts[:i] + parts[i + 1 :]
            budget[0] -= 1
            if fails("".join(candidate)):
                parts = candidate
            i -= 1
        return parts

    text = "".join(shrink(text.splitlines(keepends=True)))
    return "".join(shrink(tokenize(text)))
