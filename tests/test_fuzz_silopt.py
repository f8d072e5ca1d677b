"""Mutation fuzzing of silopt: damaged versions of every golden input and example must give a located
diagnostic or a module, never a traceback (SIL-SPEC §7, §8).

Each input (``golden/*/**/*.sil``, ``examples/*.sil``, collected when the tests run) is cut into crude
tokens and mutated with a seeded ``random.Random`` (``silopt.fuzz``, which campaigns share), so every
run checks the same mutants. A hypothesis variant mutates characters instead. For every mutant,
silopt runs in-process and:

- no Python exception escapes, and the exit status is 0 or 1;
- on 1, standard output is empty and standard error holds an ``error:`` diagnostic; every
  ``FILE:LINE:COL: error:`` names the input, a line that exists, a column on it, and is followed
  by that line's text;
- on 0, standard output parses, verifies, and prints back unchanged.
"""

from __future__ import annotations

import random
import re
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from silopt.fuzz import (
    FLAG_SETS,
    PUNCTUATION,
    contract_violation,
    corpus,
    mutate,
    run_silopt,
    time_limit,
    tokenize,
)

ROOT = Path(__file__).resolve().parent.parent
TOTAL_MUTANTS = 600
CORPUS = corpus(ROOT)


def check_outcome(name: str, text: str, status: int, out: str, err: str, prints_module: bool = True) -> None:
    """The contract of silopt on any input named ``name`` with content ``text`` (``silopt.fuzz``)."""
    violation = contract_violation(name, text, status, out, err, prints_module)
    assert violation is None, violation


@pytest.mark.parametrize("case", CORPUS, ids=[c.relative_to(ROOT).as_posix() for c in CORPUS])
def test_token_mutants(case: Path, tmp_path: Path) -> None:
    original = case.read_text(encoding="utf-8")
    tokens = tokenize(original)
    r = random.Random(f"{case.relative_to(ROOT).as_posix()}")
    per_case = max(4, TOTAL_MUTANTS // max(1, len(CORPUS)))
    path = tmp_path / case.name
    for n in range(per_case):
        text = mutate(tokens, r)
        flags = r.choice(FLAG_SETS)
        path.write_text(text, encoding="utf-8")
        status, out, err = run_silopt([str(path), *flags])
        try:
            check_outcome(str(path), text, status, out, err)
        except AssertionError as e:
            raise AssertionError(f"mutant {n} of {case.name}, flags {flags}:\n{text}\n--- {e}") from None


RUN_CASES = sorted(
    p for p in ROOT.glob("golden/run/*.sil") if "--run" in p.read_text(encoding="utf-8").split("\n")[0]
)
# Mutants may loop or recurse forever: runs are bounded so that each ends in a diagnostic.
RUN_LIMITS = ["--max-steps", "200000", "--max-depth", "300"]


@pytest.mark.parametrize("case", RUN_CASES, ids=[c.name for c in RUN_CASES])
def test_run_mutants(case: Path, tmp_path: Path) -> None:
    """Damaged programs run with their case's --run flags: a value or a located diagnostic."""
    original = case.read_text(encoding="utf-8")
    words = original.split("\n", 1)[0].split()
    flags = [w for w in words[words.index("%s") + 1 :] if w != "%s"]
    flags = [str(ROOT / w) if w.endswith(".npy") else w for w in flags]
    tokens = tokenize(original)
    r = random.Random(f"run:{case.name}")
    path = tmp_path / case.name
    for n in range(12):
        text = mutate(tokens, r)
        path.write_text(text, encoding="utf-8")
        status, out, err = run_silopt([str(path), *flags, *RUN_LIMITS])
        try:
            check_outcome(str(path), text, status, out, err, prints_module=False)
        except AssertionError as e:
            raise AssertionError(f"mutant {n} of {case.name}, flags {flags}:\n{text}\n--- {e}") from None


def test_run_cases_are_found() -> None:
    assert len(RUN_CASES) >= 5


def test_corpus_is_not_empty() -> None:
    assert len(CORPUS) >= 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.sampled_from(CORPUS or [ROOT / "examples" / "polynomial.sil"]),
    edits=st.lists(
        st.tuples(
            st.floats(0, 1),
            st.sampled_from(["insert", "delete", "replace"]),
            st.lists(st.sampled_from(PUNCTUATION) | st.characters(codec="utf-8"), max_size=3).map("".join),
        ),
        min_size=1,
        max_size=4,
    ),
    flags=st.sampled_from(FLAG_SETS),
)
def test_character_mutants(case: Path, edits: list[tuple[float, str, str]], flags: list[str]) -> None:
    text = case.read_text(encoding="utf-8")
    for where, kind, payload in edits:
        at = int(where * len(text))
        if kind == "insert":
            text = text[:at] + payload + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + len(payload) + 1 :]
        else:
            text = text[:at] + payload + text[at + len(payload) :]
    note(repr(text))
    status, out, err = run_silopt(["-", *flags], stdin=text)
    check_outcome("<stdin>", text, status, out, err)


def test_deeply_nested_types(tmp_path: Path) -> None:
    # Between the depth the parser accepts and the depth it reports as too deep, comparing two equal
    # types recursed past Python's limit (in the verifier's type check).
    path = tmp_path / "deep.sil"
    for depth in range(100, 700, 20):
        nested = "(Float, " * depth + "Float" + ")" * depth
        text = f"sil @f : $@convention(thin) ({nested}, {nested}) -> Float\n"
        path.write_text(text, encoding="utf-8")
        status, out, err = run_silopt([str(path)])
        check_outcome(str(path), text, status, out, err)


# Damaged command-line arguments: a newline (the diagnostic must still quote the source line
# after FILE:LINE:COL), an integer past Python's 4,300-digit conversion limit, and .npy files that
# are missing, empty, a zip archive, malformed, or shorter than their header says.
BAD_NPY = {
    "missing.npy": None,
    "empty.npy": b"",
    "zip.npy": b"PK\x03\x04\x14\x00\x00\x00",
    "header.npy": b'\x93NUMPY\x01\x00\x10\x00{"descr": "<f4", (  \n',
    "short.npy": b"\x93NUMPY\x01\x00\x46\x00{'descr': '<f8', 'fortran_order': False, "
    b"'shape': (99999999999,), }  \n",
}
ARGUMENT_MUTANTS = [
    "1\n2",
    "\n",
    "7" * 5000,
    "-" + "9" * 4400,
    "0x" + "f" * 5000,
    "1e99999",
    "",
    "@",
    *BAD_NPY,
]


ARGUMENT_CASES = [c for c in RUN_CASES if "--args" in c.read_text(encoding="utf-8").split("\n", 1)[0]]


@pytest.mark.parametrize("case", ARGUMENT_CASES, ids=[c.name for c in ARGUMENT_CASES])
def test_argument_mutants(case: Path, tmp_path: Path) -> None:
    """Each --args word of a case replaced by each damaged argument: a value or a located diagnostic."""
    for name, contents in BAD_NPY.items():
        if contents is not None:
            (tmp_path / name).write_bytes(contents)
    words = case.read_text(encoding="utf-8").split("\n", 1)[0].split()
    flags = [str(ROOT / w) if w.endswith(".npy") else w for w in words[words.index("%s") + 1 :]]
    first = flags.index("--args") + 1
    last = next((i for i in range(first, len(flags)) if flags[i].startswith("--")), len(flags))
    for i in range(first, last):
        for bad in ARGUMENT_MUTANTS:
            argv = [str(case), *flags[:i], str(tmp_path / bad) if bad in BAD_NPY else bad, *flags[i + 1 :]]
            status, out, err = run_silopt([*argv, *RUN_LIMITS])
            try:
                check_outcome(
                    str(case), case.read_text(encoding="utf-8"), status, out, err, prints_module=False
                )
            except AssertionError as e:
                raise AssertionError(f"argument {i - first} replaced by {bad[:20]!r}:\n--- {e}") from None


CHECK_CASES = sorted(
    p
    for p in ROOT.glob("golden/differentiation/**/*.sil")
    if "-differentiation" in p.read_text(encoding="utf-8").split("\n", 1)[0]
)
CHECK_LINE_RE = re.compile(r"^.+: (.+ \d\.\de[+-]\d\d)(, .+ \d\.\de[+-]\d\d)*: (ok|FAILED)$")


@pytest.mark.parametrize("case", CHECK_CASES, ids=[c.relative_to(ROOT).as_posix() for c in CHECK_CASES])
def test_check_derivatives_mutants(case: Path, tmp_path: Path) -> None:
    """Damaged differentiable programs under --check-derivatives: a report or located diagnostics
    (after the report's lines, when some requests were checked)."""
    tokens = tokenize(case.read_text(encoding="utf-8"))
    r = random.Random(f"check:{case.name}")
    path = tmp_path / case.name
    for n in range(8):
        text = mutate(tokens, r)
        path.write_text(text, encoding="utf-8")
        # A mutant may loop forever (an increment become 0): the step budget ends it, located.
        status, out, err = run_silopt([str(path), "--check-derivatives", "--max-steps", "2000000"])
        try:
            assert all(CHECK_LINE_RE.match(line) for line in out.splitlines()), f"report:\n{out}"
            check_outcome(
                str(path), text, status, "" if status == 1 else out or "\n", err, prints_module=False
            )
        except AssertionError as e:
            raise AssertionError(f"mutant {n} of {case.name}:\n{text}\n--- {e}") from None


HUGE = "9" * 5_000  # past the 4,300 digits Python converts from decimal
HUGE_HEX = "0x" + "f" * 5_000  # converts, but cannot be written out in decimal for a message
HUGE_INTEGER_PLACES = [
    "sil @f : $@convention(thin) () -> Int {{\nbb0:\n"
    "  %0 = integer_literal $Int, {n}\n  return %0 : $Int\n}}\n",
    "sil @f : $@convention(thin) () -> Bool {{\nbb0:\n"
    "  %0 = integer_literal $Bool, {n}\n  return %0 : $Bool\n}}\n",
    "sil @f : $@convention(thin) ((Int, Int)) -> Int {{\nbb0(%t : $(Int, Int)):\n"
    "  %0 = tuple_extract %t : $(Int, Int), {n}\n  return %0 : $Int\n}}\n",
    "sil [differentiable source {n} wrt 0] @f : $@convention(thin) (Float) -> Float {{\n"
    "bb0(%x : $Float):\n  return %x : $Float\n}}\n",
    "sil [differentiable source 0 wrt {n}] @f : $@convention(thin) (Float) -> Float {{\n"
    "bb0(%x : $Float):\n  return %x : $Float\n}}\n",
    "sil @g : $@convention(thin) (Float) -> Float\n\nsil @f : $@convention(thin) () -> () {{\nbb0:\n"
    "  %g = function_ref @g : $@convention(thin) (Float) -> Float\n"
    "  %d = differentiable_function [parameters {n}] %g : $@convention(thin) (Float) -> Float\n"
    "  %r = tuple ()\n  return %r : $()\n}}\n",
]


@pytest.mark.parametrize(
    "number", [HUGE, "-" + HUGE, HUGE_HEX, "0x" + "0" * 5_000 + "1"], ids=["dec", "neg", "hex", "zeros"]
)
@pytest.mark.parametrize("place", range(len(HUGE_INTEGER_PLACES)))
def test_huge_integers_are_located_errors(tmp_path: Path, number: str, place: int) -> None:
    text = HUGE_INTEGER_PLACES[place].format(n=number)
    path = tmp_path / "huge.sil"
    path.write_text(text, encoding="utf-8")
    status, out, err = run_silopt([str(path)])
    check_outcome(str(path), text, status, out, err)
    if number.lstrip("-").startswith("9") or "f" in number:
        assert status == 1


@pytest.mark.parametrize("in_a_thread", [False, True], ids=["main thread", "worker thread"])
def test_a_hang_is_stopped_in_the_main_thread_and_in_a_worker_thread(in_a_thread: bool) -> None:
    """The limit holds where a campaign's tasks run: a pool's process (SIGALRM) and a thread, as a
    Dask worker's (an exception raised in it by a timer); a block that ends in time is not hit."""
    outcome: list[BaseException | None] = []

    def hang() -> None:
        try:
            with time_limit(0.3):
                while True:
                    pass
        except TimeoutError as e:
            outcome.append(e)
        try:
            with time_limit(0.3):
                pass
            time.sleep(0.5)  # after the block: the limit's timer is gone
            outcome.append(None)
        except TimeoutError as e:
            outcome.append(e)

    if in_a_thread:
        worker = threading.Thread(target=hang)
        worker.start()
        worker.join(10)
        assert not worker.is_alive()
    else:
        hang()
    assert isinstance(outcome[0], TimeoutError) and "more than 0.3 s" in str(outcome[0])
    assert outcome[1] is None
