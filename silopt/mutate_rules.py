"""``python -m silopt.mutate_rules``: mutation testing of the derivative rules (issue 17, item 5).

For every rule of ``differentiation.rules.RULES``, mutants of the mistakes a rule's author makes:
a cotangent or a tangent with its sign flipped, multiplied by 2, dropped (zero), two operands'
cotangents or tangents swapped, and a wrong value saved for the linear maps (another operand or
the result, of the same type, in place of the first slot that has one). A mutant wraps the rule's
``save``, ``pullback`` or ``differential``, so it reaches every linear map built from the rule:
the rules' own tests and every derivative the transforms emit.

Each mutant runs the chosen tests (``--tests``, default ``DEFAULT_TESTS``: the rules checked
against finite differences and the dot-product identity) in a subprocess of its own, with this
module loaded as a pytest plugin that installs the mutant named by ``SILOPT_RULE_MUTANT``; the
first failing test kills it: by an assertion, a check of values (``killed``), or by another
exception (``crashed``: a shape or type error, the suite fails but no test compared a value).
A mutant that survives is a missing test, and so is one no test
reached (``unreached``: nothing the tests ran built that linear map). A mutant whose wrapper ran
but changed nothing (a wrong saved value where the rule saves none with a stand-in of its type)
is not applicable (``n/a``); one that computes the same derivatives as the rule (``EQUIVALENT``,
with the reason) is not run.

The table goes to standard output, rule by mutant: killed (and by which test), survived, or not
applicable. The exit status is 1 when a mutant survived or went unreached, or a run failed
otherwise, else 0.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from differentiation.rules import RULES, Cotangents, Kept, Rule, Saved, element_type
from differentiation.tangents import AddedAt, Negated
from sil.builder import Builder
from sil.builtins import BUILTINS
from sil.ir import Value

ENV = "SILOPT_RULE_MUTANT"
PLUGIN = "silopt.mutate_rules"  # this module, as pytest loads it (not __main__)
APPLIED = "rule mutant applied"
DEFAULT_TESTS = ("tests/differentiation/test_rules.py", "tests/differentiation/test_tensor_rules_numeric.py")
# The operands a rule differentiates, where they are not all the operands of an elementwise
# builtin or the first one alone.
_DIFFERENTIATED = {"matmul": (0, 1), "with_element": (0, 1), "select": (1, 2)}


def differentiated_operands(name: str) -> tuple[int, ...]:
    """The operands whose derivatives ``name``'s rule computes."""
    arity = BUILTINS[name].elementwise
    return tuple(range(arity)) if arity else _DIFFERENTIATED.get(name, (0,))


@attrs.frozen
class Mutant:
    """One mistake in one rule: ``kind`` (``pullback-negated``, ``pullback-doubled``,
    ``pullback-dropped``, ``pullback-swapped``, the same four of ``differential``, where a
    negated or doubled tangent is the result's, and ``saved-wrong``), at ``operands``."""

    rule: str
    kind: str
    operands: tuple[int, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.kind}:{','.join(map(str, self.operands))}"

    @classmethod
    def parse(cls, key: str) -> Mutant:
        rule, kind, operands = key.split(":")
        return cls(rule, kind, tuple(int(i) for i in operands.split(",") if i))

    def describe(self) -> str:
        at = f" of operand{'s' if len(self.operands) > 1 else ''} {', '.join(map(str, self.operands))}"
        return f"{self.kind}{at if self.operands else ''}"


# Per linear map, the mistakes in its whole result (a differential has one), and in each operand's
# derivative: a cotangent of the pullback's, a tangent the differential is given.
_KINDS = {
    "pullback": ((), ("negated", "doubled", "dropped")),
    "differential": (("negated", "doubled"), ("dropped",)),
}


def mutants(names: Sequence[str] | None = None) -> list[Mutant]:
    """Every mutant of the rules ``names`` (default: all), rule by rule in table order."""
    found: list[Mutant] = []
    for name in names if names is not None else list(RULES):
        operands = differentiated_operands(name)
        for mode, (whole, each) in _KINDS.items():
            found += [Mutant(name, f"{mode}-{kind}") for kind in whole]
            found += [Mutant(name, f"{mode}-{kind}", (i,)) for i in operands for kind in each]
            found += [Mutant(name, f"{mode}-swapped", (i, j)) for i in operands for j in operands if i < j]
        found.append(Mutant(name, "saved-wrong"))
    return found


# --- the mutated rule ------------------------------------------------------------------------------
class Applied:
    """How many times the mutated part of the rule was called (``reached``), and how many times
    the mutant changed what it built (``count``)."""

    reached = 0
    count = 0


def _negate(b: Builder, c: Any) -> Any:
    if isinstance(c, Negated):
        return c.value
    if isinstance(c, AddedAt):
        return attrs.evolve(c, value=b.builtin("fneg", c.value))
    return Negated(c)


def _double(b: Builder, c: Any) -> Any:
    if isinstance(c, Negated | AddedAt):
        return attrs.evolve(c, value=_double(b, c.value))
    assert isinstance(c, Value)
    return b.builtin("fmul", c, b.float_literal(element_type(c.type), 2.0))


def _changed(before: Sequence[Any], after: Sequence[Any]) -> bool:
    return any(x is not y for x, y in zip(before, after, strict=True))


def _swappable(a: Any, b: Any) -> bool:
    """Whether two operands' derivatives can trade places and still type-check: both present,
    of one type (a swap that cannot type-check is a mistake no rule could ship)."""
    if a is None or b is None or isinstance(a, AddedAt) or isinstance(b, AddedAt):
        return False
    plain_a = a.value if isinstance(a, Negated) else a
    plain_b = b.value if isinstance(b, Negated) else b
    return bool(plain_a.type == plain_b.type)


def _mutate_cotangents(m: Mutant, b: Builder, cotangents: Cotangents) -> Cotangents:
    Applied.reached += 1
    out = list(cotangents)
    if m.kind == "pullback-swapped":
        i, j = m.operands
        if _swappable(out[i], out[j]):
            out[i], out[j] = out[j], out[i]
    else:
        (i,) = m.operands
        if out[i] is not None:
            edit = {"pullback-negated": _negate, "pullback-doubled": _double}.get(m.kind)
            out[i] = edit(b, out[i]) if edit is not None else None
    if _changed(cotangents, out):
        Applied.count += 1
    return out


def _mutate_tangents(m: Mutant, tangents: Sequence[Value | None]) -> list[Value | None]:
    Applied.reached += 1
    out = list(tangents)
    if m.kind == "differential-swapped":
        i, j = m.operands
        if _swappable(out[i], out[j]):
            out[i], out[j] = out[j], out[i]
    elif m.kind == "differential-dropped":
        out[m.operands[0]] = None
    if _changed(tangents, out):
        Applied.count += 1
    return out


def _wrong_saved(
    saved: list[Value | None], keeps: Sequence[Kept], ops: Sequence[Value], r: Value
) -> list[Value | None]:
    """The first partial the rule computes with a stand-in of its type (the result, then the
    operands) replaced by the stand-in. A slot that keeps an operand or the result as it is
    (``Kept.source``) is left alone: the emitter saves exactly the value declared there."""
    Applied.reached += 1
    for k, (value, kept) in enumerate(zip(saved, keeps, strict=True)):
        if value is None or kept.source is not None:
            continue
        stand_in = next((c for c in (r, *ops) if c is not value and c.type == value.type), None)
        if stand_in is not None:
            Applied.count += 1
            return [*saved[:k], stand_in, *saved[k + 1 :]]
    return saved


def mutated(rule: Rule, m: Mutant) -> Rule:
    """``rule`` with the mistake ``m`` in it."""
    if m.kind.startswith("pullback-"):
        pullback = rule.pullback

        def mutated_pullback(b: Builder, seed: Value, saved: Saved, wanted: Sequence[bool]) -> Cotangents:
            return _mutate_cotangents(m, b, pullback(b, seed, saved, wanted))

        return attrs.evolve(rule, pullback=mutated_pullback)
    if m.kind.startswith("differential-"):
        return attrs.evolve(rule, differential=_mutated_differential(rule.differential, m))
    assert m.kind == "saved-wrong", m.kind
    save = rule.save

    def mutated_save(
        b: Builder, ops: Sequence[Value], r: Value, needed: Sequence[bool]
    ) -> list[Value | None]:
        return _wrong_saved(save(b, ops, r, needed), rule.keeps([op.type for op in ops]), ops, r)

    return attrs.evolve(rule, save=mutated_save)


def _mutated_differential(
    differential: Callable[[Builder, Sequence[Value | None], Saved], Value | None], m: Mutant
) -> Callable[[Builder, Sequence[Value | None], Saved], Value | None]:
    def mutated_differential(b: Builder, tangents: Sequence[Value | None], saved: Saved) -> Value | None:
        if m.kind in ("differential-negated", "differential-doubled"):
            Applied.reached += 1
            tangent = differential(b, tangents, saved)
            if tangent is None:
                return None
            Applied.count += 1
            return b.builtin("fneg", tangent) if m.kind == "differential-negated" else _double(b, tangent)
        return differential(b, _mutate_tangents(m, tangents), saved)

    return mutated_differential


def install(key: str) -> Mutant:
    """Put the mutant ``key`` in the rule table, for this process."""
    m = Mutant.parse(key)
    if m.rule not in RULES:
        raise SystemExit(f"error: no rule '{m.rule}' to mutate")
    RULES[m.rule] = mutated(RULES[m.rule], m)
    return m


# --- the pytest plugin (``-p silopt.mutate_rules``) -------------------------------------------------
def pytest_configure(config: Any) -> None:
    key = os.environ.get(ENV)
    if key:  # empty: the baseline run, with no mutant
        install(key)


def pytest_unconfigure(config: Any) -> None:
    if ENV in os.environ:
        print(f"\n{APPLIED}: {Applied.count} of {Applied.reached}", flush=True)


# --- running the mutants -----------------------------------------------------------------------------
BASELINE = Mutant("(none)", "baseline")
VERDICTS = ("killed", "crashed", "survived", "unreached", "n/a", "equivalent", "error")
# Mutants that compute the same derivatives as the rule, so no test can kill them: not run.
EQUIVALENT = {"fadd:differential-swapped:0,1": "dx + dy is dy + dx, also broadcast"}


@attrs.frozen
class Outcome:
    mutant: Mutant
    verdict: str  # one of VERDICTS
    by: str = ""


_RAISED = re.compile(r"^E +([A-Za-z_][\w.]*):", re.MULTILINE)  # --tb=line's exception
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def run_mutant(m: Mutant | None, tests: Sequence[str], root: str) -> Outcome:
    """The mutant's verdict: the tests run in a subprocess with it installed (None: with no
    mutant, whose run must pass, reported as ``survived``)."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-rfE",
        "--tb=line",
        "-p",
        "no:cacheprovider",
        "-p",
        PLUGIN,
        *tests,
    ]
    env = {
        **os.environ,
        ENV: m.key if m is not None else "",
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    applied = re.search(rf"{APPLIED}: (\d+) of (\d+)", done.stdout)
    if m is None:
        return Outcome(BASELINE, "survived" if done.returncode == 0 else "error", _first_failure(done))
    if done.returncode == 1:
        raised = _RAISED.search(done.stdout)
        if raised is not None and raised.group(1) != "AssertionError":  # not a check of values
            return Outcome(m, "crashed", f"{_first_failure(done)} ({raised.group(1)})")
        return Outcome(m, "killed", _first_failure(done))
    if done.returncode == 0:
        if applied is None or not int(applied.group(2)):
            return Outcome(m, "unreached")
        return Outcome(m, "survived" if int(applied.group(1)) else "n/a")
    return Outcome(m, "error", _first_failure(done))


def _first_failure(done: subprocess.CompletedProcess[str]) -> str:
    """The first failed test of a pytest run, or how it ended."""
    failed = _FAILED.search(done.stdout)
    if failed:
        return failed.group(1)
    if done.returncode == 0:
        return ""
    tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
    return f"pytest exited {done.returncode}: {tail[0]}"


def table(outcomes: Sequence[Outcome]) -> Iterator[str]:
    yield "| rule | mutant | verdict | killed by, or why |"
    yield "|---|---|---|---|"
    for o in outcomes:
        yield f"| {o.mutant.rule} | {o.mutant.describe()} | {o.verdict} | {o.by} |"
    counts = {v: sum(1 for o in outcomes if o.verdict == v) for v in VERDICTS}
    yield ""
    yield (
        f"{len(outcomes)} mutants of {len({o.mutant.rule for o in outcomes})} rules: "
        + ", ".join(f"{n} {v}" for v, n in counts.items())
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m silopt.mutate_rules", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rules", help="comma-separated rules to mutate (default: every rule)")
    parser.add_argument(
        "--tests",
        nargs="+",
        default=list(DEFAULT_TESTS),
        help="the tests that must kill each mutant (from the checkout's root)",
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants run at once")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    names = args.rules.split(",") if args.rules else None
    unknown = [n for n in names or [] if n not in RULES]
    if unknown:
        parser.error(f"no rule {', '.join(repr(n) for n in unknown)} (rules: {', '.join(RULES)})")
    chosen = mutants(names)
    if args.list:
        print("\n".join(m.key for m in chosen))
        return 0
    root = str(Path(__file__).resolve().parents[1])  # the checkout the tests are in
    baseline = run_mutant(None, args.tests, root)
    if baseline.verdict != "survived":
        print(
            f"error: the tests fail without a mutant, so they can kill none: {baseline.by}", file=sys.stderr
        )
        return 1

    def verdict(m: Mutant) -> Outcome:
        reason = EQUIVALENT.get(m.key)
        return Outcome(m, "equivalent", reason) if reason else run_mutant(m, args.tests, root)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(verdict, chosen))
    for line in table(outcomes):
        print(line)
    return 1 if any(o.verdict in ("survived", "unreached", "error") for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
