"""Mutation fuzzing of silopt (SIL-SPEC §7, §8): damaged inputs and the contract silopt keeps on them.

Shared by the fuzz tests (``tests/test_fuzz_silopt.py``) and campaigns (``silopt.campaign``), so
both cut, mutate and judge inputs the same way. Inputs are cut into crude tokens (``tokenize``) and
mutated with a seeded ``random.Random`` (``mutate``), so a seed names its mutants. The contract
(``contract_violation``) on any input:

- the exit status is 0 or 1 (no Python exception escapes: ``run_silopt`` lets it through);
- on 1, standard output is empty and standard error holds an ``error:`` diagnostic; every
  ``FILE:LINE:COL: error:`` names the input, a line that exists, a column on it, and is followed
  by that line's text;
- on 0, standard output parses, verifies, and prints back unchanged.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import random
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from sil import SILError, parse, print_module, verify_module
from silopt.driver import main

ROOT = Path(__file__).resolve().parent.parent

# Whitespace, comments, quoted strings, words with their sigil, `->`, then any single character.
TOKEN_RE = re.compile(r'\s+|//[^\n]*|"(?:[^"\\\n]|\\.)*"?|[%@#$]?[\w$.]+|->|.', re.DOTALL)
PUNCTUATION = [
    "(", ")", "{", "}", "[", "]", "<", ">", ",", ":", "=", "$", "#", "!", "@", "%", '"', "->", "\\",
    "//", "\n", " ", "\t", "-", "+", ".", "0", "-1", "0x", "1e999", "nan", "inf", "99999999999999999999",
    "%0", "bb0", "bb9", "$Float", "$Int", "$()", "sil", "struct", "enum", "}\n", "{\n", "\u00e9", "\x00",
]  # fmt: skip
FLAG_SETS: list[list[str]] = [
    [],
    ["-dce"],
    ["--verify-diagnostics"],
    ["-dce", "--verify-each"],
    ["--pass-pipeline=dce", "--print-ir-after-all"],
    ["-print-activity"],
    ["-differentiation"],
    ["-differentiation", "-lower-gradient"],
    ["-reverse-adjoint-params", "-synthesize-vjp", "-checkpoint-active-applies"],
    ["-move-originals-into-checkpoints", "-remove-primal-adjoint"],
]
# The comments an analysis printer ends lines with; the canonical printer writes none.
ANNOTATION_RE = re.compile(r"  // [^\n]*")
MAX_SECONDS_PER_RUN = 10
DIAGNOSTIC_RE = re.compile(r"^(.*):(\d+):(\d+): (error|warning|note): ", re.MULTILINE)


def corpus(root: Path = ROOT) -> list[Path]:
    """The inputs mutated: every golden case and example under ``root``."""
    return sorted(root.glob("golden/*/**/*.sil")) + sorted(root.glob("examples/*.sil"))


def tokenize(text: str) -> list[str]:
    """``text`` cut into tokens that join back to it."""
    tokens: list[str] = TOKEN_RE.findall(text)
    assert "".join(tokens) == text
    return tokens


def token_kind(token: str) -> str:
    """A token's kind, so that a mutation can put a value for a value, a number for a number."""
    first = token[0]
    if first in '%@#$"':
        return first
    if first.isdigit() or (first in "+-" and token[1:2].isdigit()):
        return "number"
    if first.isalpha() or first == "_":
        return "word"
    return "punctuation"


def mutate(tokens: list[str], r: random.Random) -> str:
    """One to three random token-level mutations of ``tokens`` (a copy is changed)."""
    tokens = list(tokens)
    for _ in range(r.randint(1, 3)):
        words = [i for i, t in enumerate(tokens) if t and not t.isspace()]
        if not words:
            break
        i = r.choice(words)
        kind = r.choice(
            ["delete", "duplicate", "swap", "truncate", "replace", "insert", "insert", "alike"]
            + ["alike"] * 3
        )
        if kind == "delete":
            del tokens[i]
        elif kind == "duplicate":
            tokens.insert(i, tokens[i])
        elif kind == "swap":
            later = [j for j in words if j > i]
            if later:
                j = later[0]
                tokens[i], tokens[j] = tokens[j], tokens[i]
        elif kind == "truncate":
            cut = r.randrange(len(tokens[i]) + 1)
            tokens = [*tokens[:i], tokens[i][:cut]]
        elif kind == "replace":
            tokens[i] = tokens[r.choice(words)]
        elif kind == "alike":
            # A token of the same kind (a value for a value, a type for a type, a number for a
            # number…): the text often still parses, and the verifier or a pass must object.
            alike = [tokens[j] for j in words if token_kind(tokens[j]) == token_kind(tokens[i])]
            tokens[i] = r.choice(alike)
        else:
            tokens.insert(i + r.randrange(2), r.choice(PUNCTUATION))
    return "".join(tokens)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in this thread instead of hanging: by SIGALRM in the main thread where
    the platform has it, else (a worker's thread, as a Dask worker's) by a timer that raises it in
    this thread asynchronously, as soon as it runs Python code again."""
    if hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread():
        with _alarm(seconds):
            yield
        return
    with _async_timeout(seconds):
        yield


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"silopt ran for more than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _async_timeout(seconds: float) -> Iterator[None]:
    target = threading.get_ident()
    lock = threading.Lock()
    state = {"done": False, "fired": False}

    def expire() -> None:
        with lock:
            if not state["done"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(target), ctypes.py_object(TimeoutError)
                )

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except TimeoutError as e:
        raise TimeoutError(f"silopt ran for more than {seconds:g} s") from e
    finally:
        with lock:
            state["done"] = True
            if state["fired"]:  # raised, or about to be: not outside this block
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), None)
        timer.cancel()


def run_silopt(argv: list[str], stdin: str = "", seconds: int = MAX_SECONDS_PER_RUN) -> tuple[int, str, str]:
    """silopt in-process: its exit status, standard output and standard error. Exceptions escape."""
    out, err = io.StringIO(), io.StringIO()
    with time_limit(seconds):
        status = main(argv, io.StringIO(stdin), out, err)
    return status, out.getvalue(), err.getvalue()


def _diagnostics_violation(name: str, text: str, err: str) -> str | None:
    lines = text.split("\n")
    err_lines = err.split("\n")
    for m in DIAGNOSTIC_RE.finditer(err):
        if m.group(1) != name:
            return f"diagnostic names {m.group(1)!r}, not {name!r}:\n{err}"
        line, col = int(m.group(2)), int(m.group(3))
        if not 1 <= line <= len(lines):
            return f"line {line} is not in the file:\n{err}"
        if not 1 <= col <= len(lines[line - 1]) + 1:
            return f"column {col} is not on line {line}:\n{err}"
        echoed = err_lines[err[: m.start()].count("\n") + 1]
        if echoed != lines[line - 1]:
            return f"the diagnostic quotes {echoed!r}, not line {line}:\n{err}"
    return None


def _module_violation(out: str) -> str | None:
    try:
        module = parse(out, "<output>")
    except SILError as e:
        return f"silopt output does not parse: {e}\n{out}"
    if [d.render() for d in verify_module(module)]:
        return f"silopt output does not verify:\n{out}"
    if print_module(module) != ANNOTATION_RE.sub("", out):
        return "silopt output is not canonical"
    return None


def contract_violation(
    name: str, text: str, status: int, out: str, err: str, prints_module: bool = True
) -> str | None:
    """How silopt broke its contract on the input named ``name`` with content ``text`` (first line:
    what; then the evidence), or None where it kept it."""
    if status not in (0, 1):
        return f"exit status {status}\n{err}"
    if status == 1:
        if out != "":
            return "output on failure"
        if not re.search(r"^(.*: )?error: ", err, re.MULTILINE):
            return f"no error diagnostic:\n{err}"
        return _diagnostics_violation(name, text, err)
    if not prints_module:  # --run prints a value: one or more lines
        if not (out.endswith("\n") and out.strip()):
            return f"--run printed {out!r}"
        return f"a successful run wrote to standard error:\n{err}" if err else None
    return _module_violation(out)
