"""The command line's shape: standard input when no file is given, ``--args`` and the input file
(``--``), and flags written where argparse cannot read them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.silopt.test_driver import AFTER_DCE, GOOD, Outcome, silopt

SCALE = """\
sil @scale : $@convention(thin) (Float, Float) -> Float {
bb0(%0 : $Float, %1 : $Float):
  %2 = builtin "fmul"(%0 : $Float, %1 : $Float) : $Float
  return %2 : $Float
}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.sil").write_text(GOOD, encoding="utf-8")
    (tmp_path / "scale.sil").write_text(SCALE, encoding="utf-8")
    return tmp_path


def test_no_file_and_dash_both_read_standard_input() -> None:
    assert silopt("-dce", stdin=GOOD) == silopt("-", "-dce", stdin=GOOD) == Outcome(0, AFTER_DCE, "")
    assert silopt(stdin="") == Outcome(0, "", "")


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["--run", "@scale", "--args", "2", "3", "scale.sil"], "scale.sil"),
        (["--run", "@scale", "--args", "2", "3", "missing.sil"], "missing.sil"),
        (["--check-derivatives", "--args", "2", "3", "scale.sil"], "scale.sil"),
        (["-dce", "--run", "@scale", "--args", "2", "3", "scale.txt"], "scale.txt"),
    ],
)
def test_args_that_took_the_input_file_is_bad_usage_with_a_hint(
    workdir: Path, argv: list[str], word: str
) -> None:
    (workdir / "scale.txt").write_text(SCALE, encoding="utf-8")
    result = silopt(*argv, stdin=SCALE)
    assert (result.status, result.stdout) == (2, "")
    assert result.stderr.endswith(
        f"silopt: error: no input file: --args took '{word}' as an argument; end --args with '--' "
        f"(--args 2 3 -- {word}) or put the input file first\n"
    )


def test_the_hints_two_ways_work(workdir: Path) -> None:
    assert silopt("--run", "@scale", "--args", "2", "3", "--", "scale.sil") == Outcome(0, "6.0\n", "")
    assert silopt("scale.sil", "--run", "@scale", "--args", "2", "3") == Outcome(0, "6.0\n", "")
    assert silopt("-dce", "--run", "@scale", "--args", "-2", "3", "--", "scale.sil") == Outcome(
        0, "-6.0\n", ""
    )


def test_dash_dash_ends_args_before_standard_input_or_nothing(workdir: Path) -> None:
    assert silopt("--run", "@scale", "--args", "2", "3", "--", "-", stdin=SCALE) == Outcome(0, "6.0\n", "")
    assert silopt("--run", "@f", "--args", "--", "good.sil").status == 1  # @f takes one argument
    assert "takes 1 argument" in silopt("--run", "@f", "--args", "--", "good.sil").stderr


def test_args_of_numbers_or_npy_files_read_standard_input(workdir: Path) -> None:
    """Without a file name at its end, ``--args`` took nothing it should not have; a tensor
    argument is a ``.npy`` file that exists."""
    assert silopt("--run", "@scale", "--args", "2", "3", stdin=SCALE) == Outcome(0, "6.0\n", "")
    np.save(workdir / "x.npy", np.array([1.0, 2.0], dtype=np.float32))
    tensor = (
        "sil @id : $@convention(thin) (Tensor<Float>) -> Tensor<Float> {\n"
        "bb0(%0 : $Tensor<Float>):\n  return %0 : $Tensor<Float>\n}\n"
    )
    result = silopt("--run", "@id", "--args", "x.npy", stdin=tensor)
    assert (result.status, result.stderr) == (0, "")
    assert "1.0" in result.stdout and "2.0" in result.stdout


def test_a_flag_after_dash_dash_is_said_to_be_one(workdir: Path) -> None:
    result = silopt("--run", "@scale", "--args", "2", "3", "--", "scale.sil", "-dce")
    assert result.status == 2
    assert result.stderr.endswith(
        "silopt: error: unrecognized arguments: -dce (a flag after '--' is not read as one: put it before)\n"
    )
