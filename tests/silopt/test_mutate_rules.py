"""``python -m silopt.mutate_rules``: its mutants change what a rule builds as they say, and a run
tells a mutant the tests kill from one they do not."""

from __future__ import annotations

import math

import pytest

from accel.numpy_backend import NumpyBackend
from differentiation.rules import RULES, Saved
from differentiation.tangents import Negated
from interp import Program
from sil.builder import Builder
from sil.ir import Function, Module
from sil.types import DOUBLE, FunctionType, TupleType
from silopt import mutate_rules
from silopt.mutate_rules import Mutant, mutants, mutated, run_mutant


def fmul_linear_maps(rule_name: str, key: str | None) -> tuple[tuple[float, float], float]:
    """The pullback of ``x * y`` (or another binary rule's) at (3, 5) for the seed 2, and its
    differential for the tangents (1, 10), built from the rule as it is or with the mutant
    ``key``."""
    rule = RULES[rule_name] if key is None else mutated(RULES[rule_name], Mutant.parse(key))
    module = Module()
    reverse = module.add_function(
        Function("pb", FunctionType((DOUBLE, DOUBLE, DOUBLE), TupleType((DOUBLE, DOUBLE))))
    )
    forward = module.add_function(Function("df", FunctionType((DOUBLE, DOUBLE, DOUBLE, DOUBLE), DOUBLE)))
    for fn, mode in ((reverse, "pullback"), (forward, "differential")):
        block = fn.add_block("bb0")
        args = [block.add_argument(t) for t in fn.type.params]
        b = Builder.at_end(block, module)
        r = b.builtin(rule_name, args[0], args[1])
        saved = Saved(rule.save(b, args[:2], r, [True, True]), rule.keeps([DOUBLE, DOUBLE]))
        if mode == "pullback":
            cotangents = rule.pullback(b, args[2], saved, [True, True])
            zero = b.float_literal(DOUBLE, 0.0)
            values = [b.builtin("fneg", c.value) if isinstance(c, Negated) else c or zero for c in cotangents]
            b.return_(b.tuple(*values))
        else:
            tangent = rule.differential(b, args[2:], saved)
            b.return_(tangent if tangent is not None else b.float_literal(DOUBLE, 0.0))
    program = Program(module, NumpyBackend())
    return tuple(program.run("@pb", 3.0, 5.0, 2.0)), program.run("@df", 3.0, 5.0, 1.0, 10.0)


@pytest.mark.parametrize(
    ("key", "pullback", "differential"),
    [
        (None, (10.0, 6.0), 35.0),
        ("fmul:pullback-negated:0", (-10.0, 6.0), 35.0),
        ("fmul:pullback-doubled:1", (10.0, 12.0), 35.0),
        ("fmul:pullback-dropped:0", (0.0, 6.0), 35.0),
        ("fmul:pullback-swapped:0,1", (6.0, 10.0), 35.0),
        ("fmul:differential-negated:", (10.0, 6.0), -35.0),
        ("fmul:differential-doubled:", (10.0, 6.0), 70.0),
        ("fmul:differential-dropped:1", (10.0, 6.0), 5.0),
        ("fmul:differential-swapped:0,1", (10.0, 6.0), 53.0),
    ],
)
def test_each_mutant_makes_its_mistake(
    key: str | None, pullback: tuple[float, float], differential: float
) -> None:
    got_pullback, got_differential = fmul_linear_maps("fmul", key)
    assert got_pullback == pullback
    assert math.isclose(got_differential, differential)


def test_a_wrong_saved_value_replaces_a_computed_partial_not_a_kept_operand() -> None:
    x, y = 3.0, 5.0
    r, px, py = x**y, y * x ** (y - 1), math.log(x) * x**y
    # pow computes its partials: the first, y x^(y-1), is replaced by the result, x^y.
    pullback, differential = fmul_linear_maps("pow", "pow:saved-wrong:")
    assert pullback[0] == pytest.approx(2 * r) and pullback[1] == pytest.approx(2 * py)
    assert differential == pytest.approx(r + 10 * py)
    assert fmul_linear_maps("pow", None)[0][0] == pytest.approx(2 * px)
    # fmul keeps its operands as they are, which the emitter saves exactly: nothing to replace.
    assert fmul_linear_maps("fmul", "fmul:saved-wrong:") == fmul_linear_maps("fmul", None)


def test_every_rule_has_mutants_and_their_keys_read_back() -> None:
    found = mutants()
    assert {m.rule for m in found} == set(RULES)
    assert len({m.key for m in found}) == len(found)
    assert all(Mutant.parse(m.key) == m for m in found)
    assert {m.kind for m in mutants(["select"]) if m.operands} >= {"pullback-swapped", "differential-dropped"}
    assert all(0 not in m.operands for m in mutants(["select"]))  # select's condition has no derivative


def test_a_run_kills_a_mutant_a_test_catches_and_not_one_it_misses() -> None:
    root = str(mutate_rules.Path(mutate_rules.__file__).resolve().parents[1])
    checked = ["tests/differentiation/test_rules.py::test_scalar_rules"]
    killed = run_mutant(Mutant.parse("fmul:pullback-negated:0"), checked, root)
    assert killed.verdict == "killed"
    assert killed.by == "tests/differentiation/test_rules.py::test_scalar_rules[fmul]"
    # This test builds fmul's pullback but checks only its type: the mutant survives it.
    types_only = ["tests/differentiation/test_rules.py::test_tuple_results_build"]
    assert run_mutant(Mutant.parse("fmul:pullback-negated:0"), types_only, root).verdict == "survived"
    # This one builds nothing of exp's: no test reaches the mutant, which is a missing test too.
    assert run_mutant(Mutant.parse("exp:pullback-negated:0"), types_only, root).verdict == "unreached"
    # fneg saves nothing: a wrong saved value does not apply.
    assert run_mutant(Mutant.parse("fneg:saved-wrong:"), checked, root).verdict == "n/a"


def test_the_table_in_the_docs_is_of_every_mutant_and_none_survived() -> None:
    """docs/verification.md's section on mutation testing holds the last full run's table: of the
    mutants the rules have now (a rule or a kind of mistake added since shows here: run the tool
    again and paste its table), with no survivor and none unreached."""
    root = mutate_rules.Path(mutate_rules.__file__).resolve().parents[1]
    document = (root / "docs" / "verification.md").read_text(encoding="utf-8")
    section = document.split("\n## Mutation testing", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| rule ")
    ]
    documented = [(rule, what) for rule, what, *_ in rows]
    assert documented == [(m.rule, m.describe()) for m in mutants()]
    verdicts = {verdict for _, _, verdict, _ in rows}
    assert verdicts <= {"killed", "crashed", "n/a", "equivalent"}


def test_a_failure_by_another_exception_than_an_assertion_is_a_crash() -> None:
    root = str(mutate_rules.Path(mutate_rules.__file__).resolve().parents[1])
    tests = ["-k", "reshape", "tests/differentiation/test_tensor_rules_numeric.py"]
    outcome = run_mutant(Mutant.parse("reshape:differential-dropped:0"), tests, root)
    assert outcome.verdict == "crashed" and outcome.by.endswith("(KeyError)")
