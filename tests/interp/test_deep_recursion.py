"""Recursion through closures as deep as --max-depth allows: it runs, or stops with the located depth
error, never crashes the process. Each run is a subprocess, so that a crash of the C stack (exit
139, no message) fails the test instead of killing the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

# @thick recurses through thin_to_thick_function; @rebound through a closure of a closure (two
# wrappers and the function itself per call); @chain calls a closure rebound 100,000 times.
SOURCE = """\
sil @thick : $@convention(thin) (Int) -> Int {
bb0(%n : $Int):
  %zero = integer_literal $Int, 0
  %done = builtin "cmp_eq"(%n : $Int, %zero : $Int) : $Bool
  cond_br %done, bb1, bb2
bb1:
  return %n : $Int
bb2:
  %f = function_ref @thick : $@convention(thin) (Int) -> Int
  %c = thin_to_thick_function %f : $@convention(thin) (Int) -> Int to $@callee_guaranteed (Int) -> Int
  %one = integer_literal $Int, 1
  %m = builtin "sub"(%n : $Int, %one : $Int) : $Int
  %r = apply %c(%m) : $@callee_guaranteed (Int) -> Int
  return %r : $Int
}

sil @rebound : $@convention(thin) (Int, Int, Int) -> Int {
bb0(%n : $Int, %a : $Int, %b : $Int):
  %zero = integer_literal $Int, 0
  %done = builtin "cmp_eq"(%n : $Int, %zero : $Int) : $Bool
  cond_br %done, bb1, bb2
bb1:
  %s = builtin "add"(%a : $Int, %b : $Int) : $Int
  return %s : $Int
bb2:
  %f = function_ref @rebound : $@convention(thin) (Int, Int, Int) -> Int
  %c1 = partial_apply [callee_guaranteed] %f(%b) : $@convention(thin) (Int, Int, Int) -> Int
  %c2 = partial_apply [callee_guaranteed] %c1(%a) : $@callee_guaranteed (Int, Int) -> Int
  %one = integer_literal $Int, 1
  %m = builtin "sub"(%n : $Int, %one : $Int) : $Int
  %r = apply %c2(%m) : $@callee_guaranteed (Int) -> Int
  return %r : $Int
}

sil @start_rebound : $@convention(thin) (Int) -> Int {
bb0(%n : $Int):
  %f = function_ref @rebound : $@convention(thin) (Int, Int, Int) -> Int
  %one = integer_literal $Int, 1
  %r = apply %f(%n, %one, %one) : $@convention(thin) (Int, Int, Int) -> Int
  return %r : $Int
}

sil @chain : $@convention(thin) (Int) -> Int {
bb0(%n : $Int):
  %f = function_ref @thick : $@convention(thin) (Int) -> Int
  %c = thin_to_thick_function %f : $@convention(thin) (Int) -> Int to $@callee_guaranteed (Int) -> Int
  br bb1(%n : $Int, %c : $@callee_guaranteed (Int) -> Int)
bb1(%i : $Int, %g : $@callee_guaranteed (Int) -> Int):
  %zero = integer_literal $Int, 0
  %done = builtin "cmp_eq"(%i : $Int, %zero : $Int) : $Bool
  cond_br %done, bb3, bb2
bb2:
  %h = partial_apply [callee_guaranteed] %g() : $@callee_guaranteed (Int) -> Int
  %one = integer_literal $Int, 1
  %m = builtin "sub"(%i : $Int, %one : $Int) : $Int
  br bb1(%m : $Int, %h : $@callee_guaranteed (Int) -> Int)
bb3:
  %r = apply %g(%zero) : $@callee_guaranteed (Int) -> Int
  return %r : $Int
}
"""


def silopt(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "deep.sil"
    path.write_text(SOURCE, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "silopt", str(path), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize(("entry", "result"), [("@thick", "0"), ("@start_rebound", "2")])
def test_recursion_through_closures_runs_to_any_depth_the_flag_allows(
    tmp_path: Path, entry: str, result: str
) -> None:
    # 50,000 calls: several times what the C stack held when each closure call took a C frame;
    # --max-depth 60,000 is below three Python frames a call, the most @rebound takes.
    out = silopt(tmp_path, "--run", entry, "--args", "50000", "--max-depth", "60000")
    assert (out.returncode, out.stdout, out.stderr) == (0, result + "\n", "")


@pytest.mark.parametrize(("entry", "line"), [("@thick", 13), ("@start_rebound", 31)])
def test_recursion_through_closures_past_the_flag_is_the_located_depth_error(
    tmp_path: Path, entry: str, line: int
) -> None:
    out = silopt(tmp_path, "--run", entry, "--args", "100000", "--max-depth", "50000")
    assert out.returncode == 1
    assert out.stderr.startswith(
        f"{tmp_path / 'deep.sil'}:{line}:3: error: recursion deeper than 50000 calls (see --max-depth)\n"
    ), out.stderr


def test_a_closure_rebound_with_nothing_is_called_in_one_frame(tmp_path: Path) -> None:
    out = silopt(tmp_path, "--run", "@chain", "--args", "100000")
    assert (out.returncode, out.stdout, out.stderr) == (0, "0\n", "")
