"""``--emit-dot``, ``--view`` and ``--explain-activity`` on the command line: the DOT is one
graph and deterministic, ``--view`` renders with Graphviz or says how to get it, bad
combinations are bad usage."""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest

from silopt import pictures
from silopt.driver import main

LOOP = """\
sil [differentiable source 0 wrt 0] @f : $@convention(thin) (Double, Int) -> Double {
bb0(%x : $Double, %n : $Int):
  %zero = integer_literal $Int, 0
  br bb1(%zero : $Int, %x : $Double)
bb1(%i : $Int, %acc : $Double):
  %more = builtin "cmp_slt"(%i : $Int, %n : $Int) : $Bool
  cond_br %more, bb2, bb3
bb2:
  %next = builtin "fmul"(%acc : $Double, %x : $Double) : $Double
  %one = integer_literal $Int, 1
  %i2 = builtin "add"(%i : $Int, %one : $Int) : $Int
  br bb1(%i2 : $Int, %next : $Double)
bb3:
  return %acc : $Double
}
"""


def silopt(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), io.StringIO(""), out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def loop_file(tmp_path: Path) -> Path:
    path = tmp_path / "loop.sil"
    path.write_text(LOOP, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["cfg", "activity", "callgraph"])
def test_each_picture_is_one_balanced_digraph_and_the_same_every_time(loop_file: Path, kind: str) -> None:
    status, dot, err = silopt(str(loop_file), f"--emit-dot={kind}")
    assert (status, err) == (0, "")
    assert dot.startswith(f"digraph {kind} {{\n") and dot.endswith("}\n")
    assert dot.count("digraph") == 1
    body = re.sub(r"<<.*?>>|\"(?:[^\"\\]|\\.)*\"", "", dot)  # labels may hold braces
    assert body.count("{") == body.count("}")
    assert silopt(str(loop_file), f"--emit-dot={kind}")[1] == dot


def test_activity_colours_follow_print_activity(loop_file: Path) -> None:
    _, dot, _ = silopt(str(loop_file), "--emit-dot=activity")
    _, printed, _ = silopt(str(loop_file), "-print-activity")
    assert "%acc : $Double [ACTIVE]" in dot and "%acc [ACTIVE]" in printed
    assert "%i : $Int [NONE]" in dot and "%i [NONE]" in printed
    assert 'color="#d62728">%next = builtin &quot;fmul&quot;' in dot


def test_the_cfg_is_drawn_after_the_passes(loop_file: Path) -> None:
    _, dot, _ = silopt(str(loop_file), "-dce", "--emit-dot=cfg")
    assert "%one = integer_literal" in dot  # the loop counter is live
    assert 'label="true"' in dot and 'label="false"' in dot and 'label="(%i2, %next)"' in dot


def test_the_output_goes_to_o(loop_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "loop.dot"
    assert silopt(str(loop_file), "--emit-dot=cfg", "-o", str(out)) == (0, "", "")
    assert out.read_text(encoding="utf-8").startswith("digraph cfg {")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--view"], "--view needs --emit-dot"),
        (["--function=@f"], "--function needs --emit-dot"),
        (["--emit-dot=cfg", "--run", "@f"], "--emit-dot and --run exclude each other"),
        (["--emit-dot=cfg", "--explain-activity=%x"], "--emit-dot and --explain-activity exclude each other"),
        (["--explain-activity=%x", "--check-derivatives"], "exclude each other"),
        (["--emit-dot=pdf"], "invalid choice: 'pdf'"),
    ],
)
def test_bad_combinations_are_bad_usage(loop_file: Path, argv: list[str], message: str) -> None:
    status, out, err = silopt(str(loop_file), *argv)
    assert status == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_view_without_graphviz_says_how_to_get_it(
    loop_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pictures.shutil, "which", lambda name: None)
    monkeypatch.chdir(tmp_path)
    status, out, err = silopt(str(loop_file), "--emit-dot=cfg", "--view")
    assert status == 1
    assert out.startswith("digraph cfg {")  # the DOT is written all the same
    assert err.startswith("silopt: error: --view needs Graphviz's 'dot'")
    assert (
        "apt install graphviz" in err and "brew install graphviz" in err and "conda install graphviz" in err
    )
    assert "Traceback" not in err and not list(tmp_path.glob("*.svg"))


def test_view_with_an_empty_path_says_how_to_get_it(loop_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ``shutil.which``, on a PATH where no ``dot`` is."""
    monkeypatch.setenv("PATH", "")
    status, _, err = silopt(str(loop_file), "--emit-dot=cfg", "--view", "-o", os.devnull)
    assert status == 1 and "install graphviz" in err


FAKE_DOT = """\
import sys
out = sys.argv[sys.argv.index("-o") + 1]
text = sys.stdin.read()
if "-Tsvg" not in sys.argv or not text.startswith("digraph"):
    sys.exit("Error: syntax error in line 1")
open(out, "w").write("<svg>" + str(len(text)) + "</svg>")
"""


def _fake_dot(tmp_path: Path, script: str) -> Path:
    """A ``dot`` on PATH that checks its arguments and writes a stand-in SVG."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dot.py").write_text(script, encoding="utf-8")
    dot = bin_dir / "dot"
    dot.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{bin_dir / "dot.py"}" "$@"\n', encoding="utf-8")
    dot.chmod(dot.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def test_view_renders_beside_the_output(
    loop_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(_fake_dot(tmp_path, FAKE_DOT)))
    out = tmp_path / "pictures" / "loop.dot"
    out.parent.mkdir()
    status, stdout, err = silopt(str(loop_file), "--emit-dot=callgraph", "--view", "-o", str(out))
    svg = out.with_suffix(".svg")
    assert (status, stdout, err) == (0, "", f"silopt: wrote {svg}\n")
    assert svg.read_text() == f"<svg>{len(out.read_text())}</svg>"


def test_view_to_standard_output_renders_in_the_working_directory(
    loop_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(_fake_dot(tmp_path, FAKE_DOT)))
    monkeypatch.chdir(tmp_path)
    status, _, err = silopt(str(loop_file), "--emit-dot=activity", "--view")
    assert (status, err) == (0, "silopt: wrote loop.activity.svg\n")
    assert (tmp_path / "loop.activity.svg").exists()


def test_a_failing_dot_is_reported(loop_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(_fake_dot(tmp_path, "import sys\nsys.exit('Error: out of memory')\n")))
    monkeypatch.chdir(tmp_path)
    status, _, err = silopt(str(loop_file), "--emit-dot=cfg", "--view")
    assert status == 1
    assert err == "silopt: error: 'dot' could not render the picture: Error: out of memory\n"


def test_svg_path_never_overwrites_the_dot() -> None:
    import argparse

    def path(output: str | None, given: str = "x/m.sil") -> str:
        return pictures.svg_path(argparse.Namespace(output=output, input=given, emit_dot="cfg"))

    assert path("out/g.dot") == "out/g.svg"
    assert path("g.svg") == "g.svg.svg"
    assert path(None) == "m.cfg.svg" and path("-", "-") == "stdin.cfg.svg"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("kind", ["cfg", "activity", "callgraph"])
def test_graphviz_renders_every_picture(loop_file: Path, tmp_path: Path, kind: str) -> None:
    out = tmp_path / f"{kind}.dot"
    status, _, err = silopt(str(loop_file), f"--emit-dot={kind}", "--view", "-o", str(out))
    assert status == 0, err
    assert "<svg" in out.with_suffix(".svg").read_text(encoding="utf-8")


def test_explain_names_each_step_and_where(loop_file: Path) -> None:
    status, out, err = silopt(str(loop_file), "--explain-activity=@f:%next")
    assert (status, err) == (0, "")
    assert out.splitlines()[0] == "%next in '@f' for source 0 wrt 0: ACTIVE"
    assert f"{loop_file}:9:3: %next = builtin" in out
    assert f"{loop_file}:12:3: br bb1(%i2 : $Int, %next : $Double)  (to %acc)" in out
    assert out.rstrip().endswith("return %acc : $Double")


def test_explain_an_unknown_function_or_value(loop_file: Path) -> None:
    status, _, err = silopt(str(loop_file), "--explain-activity=@ff:%x")
    assert status == 1 and "no function '@ff' in the module (did you mean '@f'?)" in err
    status, _, err = silopt(str(loop_file), "--explain-activity=%nxt")  # @f is the only candidate
    assert status == 1 and err.startswith(
        f"{loop_file}:1:37: error: no value '%nxt' in '@f' (did you mean '%next'?)"
    )
    two = loop_file.with_name("two.sil")
    two.write_text(LOOP + "\n" + LOOP.replace("@f", "@g"), encoding="utf-8")
    status, _, err = silopt(str(two), "--explain-activity=%nxt")
    assert (status, err) == (
        1,
        "error: no function something asks to differentiate defines '%nxt' (did you mean '%next'?)\n",
    )
    status, out, _ = silopt(str(two), "--explain-activity=%next")
    assert "%next in '@f'" in out and "%next in '@g'" in out
    status, _, err = silopt(str(loop_file), "--explain-activity=@f:%nxt")
    assert status == 1 and err.startswith(
        f"{loop_file}:1:37: error: no value '%nxt' in '@f' (did you mean '%next'?)"
    )
