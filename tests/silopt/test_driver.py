"""The command line (SIL-SPEC §8): exit codes, input and output, pass flags, IR dumps,
``--verify-each`` and ``--verify-diagnostics``."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import attrs
import pytest

from sil.ir import Module
from sil.passes import Pass, PassContext, register_pass, registered_passes
from silopt.driver import main
from tests.scratch_passes import BreakModule

ROOT = Path(__file__).resolve().parent.parent.parent

GOOD = """\
sil @f : $@convention(thin) (Float) -> Float {
bb0(%0 : $Float):
  %1 = builtin "fmul"(%0 : $Float, %0 : $Float) : $Float
  %2 = builtin "fadd"(%0 : $Float, %0 : $Float) : $Float
  return %1 : $Float
}
"""

AFTER_DCE = """\
sil @f : $@convention(thin) (Float) -> Float {
bb0(%0 : $Float):
  %1 = builtin "fmul"(%0 : $Float, %0 : $Float) : $Float
  return %1 : $Float
}
"""

# A verifier error on line 3.
BAD = """\
sil @f : $@convention(thin) (Int) -> Float {
bb0(%0 : $Int):
  return %0 : $Int
}
"""
BAD_MESSAGE = "bad.sil:3:3: error: return of Int from a function returning Float\n  return %0 : $Int\n  ^\n"


@attrs.frozen
class Outcome:
    status: int
    stdout: str
    stderr: str


def silopt(*argv: str, stdin: str = "") -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), io.StringIO(stdin), out, err)
    return Outcome(status, out.getvalue(), err.getvalue())


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.sil").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad.sil").write_text(BAD, encoding="utf-8")
    return tmp_path


class NoOp(Pass):
    name = "no-op"
    description = "Change nothing"

    def run(self, module: Module, ctx: PassContext) -> None:
        pass


# --- success and input ---------------------------------------------------------------------------


def test_success_prints_the_module(workdir: Path) -> None:
    result = silopt("good.sil")
    assert result == Outcome(0, GOOD, "")


def test_reads_standard_input_for_dash(workdir: Path) -> None:
    assert silopt("-", "-dce", stdin=GOOD) == Outcome(0, AFTER_DCE, "")


def test_diagnostics_from_standard_input_name_stdin() -> None:
    result = silopt("-", stdin=BAD)
    assert result.status == 1
    assert result.stderr.startswith("<stdin>:3:3: error: return of Int")


# --- exit codes --------------------------------------------------------------------------------


def test_unknown_flag_is_bad_usage(workdir: Path) -> None:
    result = silopt("good.sil", "--no-such-flag")
    assert result.status == 2
    assert result.stdout == ""
    assert "usage: silopt" in result.stderr
    assert "--no-such-flag" in result.stderr


def test_unknown_pass_flag_is_bad_usage(workdir: Path) -> None:
    result = silopt("good.sil", "-no-such-pass")
    assert result.status == 2
    assert result.stdout == ""


def test_unknown_pass_in_pipeline_is_bad_usage(workdir: Path) -> None:
    result = silopt("good.sil", "--pass-pipeline=dce,no-such-pass")
    assert result.status == 2
    assert result.stdout == ""
    assert "unknown pass 'no-such-pass'" in result.stderr


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("-differentation", "-differentiation"),
        ("--verfy-each", "--verify-each"),
        ("-verify-each", "--verify-each"),
        ("--pass-pipline=dce", "--pass-pipeline"),
        ("--pass-pipeline=dce,lower-gradiant", "lower-gradient"),
    ],
)
def test_a_mistyped_flag_or_pass_gets_the_likely_one(workdir: Path, typed: str, meant: str) -> None:
    result = silopt("good.sil", typed)
    assert result.status == 2 and result.stdout == ""
    assert f"(did you mean '{meant}'?)" in result.stderr.splitlines()[-1]


def test_nothing_is_suggested_when_nothing_is_close(workdir: Path) -> None:
    for typed in ("-zzz", "--pass-pipeline=zzz"):
        result = silopt("good.sil", typed)
        assert result.status == 2
        assert "did you mean" not in result.stderr
    assert "(see --list-passes)" in silopt("good.sil", "--pass-pipeline=zzz").stderr


def test_no_input_file_reads_standard_input(workdir: Path) -> None:
    """As mlir-opt and xdsl-opt: ``silopt -dce < f.sil``."""
    assert silopt("-dce", stdin=GOOD) == Outcome(0, AFTER_DCE, "")
    result = silopt(stdin=BAD)
    assert result.status == 1
    assert result.stderr == BAD_MESSAGE.replace("bad.sil", "<stdin>")


def test_bad_file_reports_a_located_diagnostic(workdir: Path) -> None:
    assert silopt("bad.sil") == Outcome(1, "", BAD_MESSAGE)


def test_parse_error_exits_1(workdir: Path) -> None:
    (workdir / "syntax.sil").write_text("sil @f : $@convention(thin) () -> () {\nbb0:\n  %0 = nonsense\n}\n")
    result = silopt("syntax.sil")
    assert result.status == 1
    assert result.stdout == ""
    assert result.stderr.startswith("syntax.sil:3:8: error: unknown instruction 'nonsense'\n")


def test_missing_file_exits_1_with_a_message(workdir: Path) -> None:
    result = silopt("missing.sil")
    assert result.status == 1
    assert result.stdout == ""
    assert "missing.sil" in result.stderr
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_non_utf8_file_exits_1(workdir: Path) -> None:
    (workdir / "latin1.sil").write_bytes(b"// caf\xe9\n")
    result = silopt("latin1.sil")
    assert result.status == 1
    assert "latin1.sil" in result.stderr


def test_help_returns_0_and_writes_to_the_given_stdout() -> None:
    """``main`` returns the exit status: ``--help`` must not raise SystemExit or bypass ``stdout``."""
    result = silopt("--help")
    assert result.status == 0
    assert "usage: silopt" in result.stdout


# --- output files -----------------------------------------------------------------------------


def test_output_file_is_written(workdir: Path) -> None:
    result = silopt("good.sil", "-dce", "-o", "out.sil")
    assert result == Outcome(0, "", "")
    assert (workdir / "out.sil").read_text(encoding="utf-8") == AFTER_DCE


def test_output_file_replaces_an_existing_one(workdir: Path) -> None:
    (workdir / "out.sil").write_text("old\n")
    assert silopt("good.sil", "-o", "out.sil").status == 0
    assert (workdir / "out.sil").read_text(encoding="utf-8") == GOOD


def test_output_dash_means_stdout(workdir: Path) -> None:
    assert silopt("good.sil", "-o", "-") == Outcome(0, GOOD, "")


def test_no_output_file_on_error(workdir: Path) -> None:
    result = silopt("bad.sil", "-o", "out.sil")
    assert result.status == 1
    assert result.stdout == ""
    assert not (workdir / "out.sil").exists()
    assert sorted(p.name for p in workdir.iterdir()) == ["bad.sil", "good.sil"]


def test_existing_output_file_untouched_on_error(workdir: Path) -> None:
    out = workdir / "out.sil"
    out.write_text("precious\n")
    before = out.stat().st_mtime_ns
    result = silopt("bad.sil", "-o", "out.sil")
    assert result.status == 1
    assert out.read_text() == "precious\n"
    assert out.stat().st_mtime_ns == before
    assert sorted(p.name for p in workdir.iterdir()) == ["bad.sil", "good.sil", "out.sil"]


def test_existing_output_file_untouched_on_missing_input(workdir: Path) -> None:
    (workdir / "out.sil").write_text("precious\n")
    assert silopt("missing.sil", "-o", "out.sil").status == 1
    assert (workdir / "out.sil").read_text() == "precious\n"


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_new_output_file_gets_the_umasks_mode(workdir: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        assert silopt("good.sil", "-o", "out.sil").status == 0
    finally:
        os.umask(old)
    assert (workdir / "out.sil").stat().st_mode & 0o777 == 0o666 & ~umask


def test_an_existing_output_file_keeps_its_mode(workdir: Path) -> None:
    (workdir / "out.sil").write_text("old\n")
    (workdir / "out.sil").chmod(0o644)
    assert silopt("good.sil", "-o", "out.sil").status == 0
    assert (workdir / "out.sil").stat().st_mode & 0o777 == 0o644


def test_an_output_through_a_symbolic_link_writes_its_target(workdir: Path) -> None:
    (workdir / "target.sil").write_text("old\n")
    (workdir / "out.sil").symlink_to("target.sil")
    assert silopt("good.sil", "-o", "out.sil").status == 0
    assert (workdir / "out.sil").is_symlink()
    assert (workdir / "target.sil").read_text(encoding="utf-8") == GOOD


def test_an_output_that_is_not_a_regular_file_is_written_not_replaced(workdir: Path) -> None:
    """``-o /dev/full`` or ``-o`` a pipe: renaming a temporary file over it would replace the device
    (as root, /dev/full itself) with a file. A pipe stands in for the device here."""
    pipe = workdir / "out.pipe"
    os.mkfifo(pipe)
    read: list[str] = []
    reader = threading.Thread(target=lambda: read.append(pipe.read_text(encoding="utf-8")), daemon=True)
    reader.start()
    result = silopt("good.sil", "-o", "out.pipe")
    reader.join(timeout=10)
    assert result == Outcome(0, "", "")
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    assert read == [GOOD]


def test_a_failing_output_write_exits_1_and_leaves_the_old_file(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "out.sil").write_text("precious\n")

    def full(fd: int, *args: object, **kwargs: object) -> object:
        os.close(fd)
        return open("/dev/full", "w", encoding="utf-8")

    monkeypatch.setattr(os, "fdopen", full)
    result = silopt("good.sil", "-o", "out.sil")
    assert (result.status, result.stdout) == (1, "")
    assert result.stderr == "silopt: error: cannot write 'out.sil': No space left on device\n"
    assert (workdir / "out.sil").read_text() == "precious\n"
    assert sorted(p.name for p in workdir.iterdir()) == ["bad.sil", "good.sil", "out.sil"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    "flags", [["good.sil"], ["good.sil", "--run", "@f", "--args", "2"], ["--list-passes"]]
)
def test_standard_output_on_a_full_disk_exits_1(workdir: Path, flags: list[str]) -> None:
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "silopt", *flags],
            cwd=workdir,
            env=_env(),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert result.returncode == 1
    assert result.stderr == "silopt: error: cannot write the output: No space left on device\n"


def test_unwritable_output_exits_1(workdir: Path) -> None:
    result = silopt("good.sil", "-o", "no/such/dir/out.sil")
    assert result.status == 1
    assert "cannot write" in result.stderr
    assert result.stdout == ""


# --- passes ---------------------------------------------------------------------------------------


def test_list_passes() -> None:
    result = silopt("--list-passes")
    assert result.status == 0
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    names = [line.split()[0] for line in lines]
    assert "dce" in names
    assert names == sorted(names)
    dce_line = lines[names.index("dce")]
    assert dce_line.split(None, 1)[1] == registered_passes()["dce"].description


def test_list_passes_needs_no_input() -> None:
    assert silopt("--list-passes").status == 0


@pytest.mark.parametrize("flags", [["-dce"], ["--dce"], ["--pass-pipeline=dce"], ["--pass-pipeline", "dce"]])
def test_pass_flag_spellings_are_equivalent(workdir: Path, flags: list[str]) -> None:
    assert silopt("good.sil", *flags) == Outcome(0, AFTER_DCE, "")


def test_pipeline_tolerates_spaces_and_empty_entries(workdir: Path) -> None:
    assert silopt("good.sil", "--pass-pipeline= dce ,") == Outcome(0, AFTER_DCE, "")
    assert silopt("good.sil", "--pass-pipeline=") == Outcome(0, GOOD, "")


def test_print_ir_after_all(workdir: Path) -> None:
    result = silopt("good.sil", "-dce", "--print-ir-after-all")
    assert result.status == 0
    assert result.stdout == AFTER_DCE
    assert result.stderr == "// -----// IR Dump After dce //----- //\n" + AFTER_DCE


def test_print_ir_after_all_without_passes_prints_nothing(workdir: Path) -> None:
    assert silopt("good.sil", "--print-ir-after-all") == Outcome(0, GOOD, "")


@pytest.mark.usefixtures("scratch_registry")
def test_passes_run_in_command_line_order(workdir: Path) -> None:
    register_pass(NoOp)
    result = silopt("good.sil", "-no-op", "--pass-pipeline=dce,no-op", "-dce", "--print-ir-after-all")
    assert result.status == 0
    headers = [line for line in result.stderr.splitlines() if line.startswith("// -----// IR Dump After")]
    assert headers == [
        f"// -----// IR Dump After {name} //----- //" for name in ("no-op", "dce", "no-op", "dce")
    ]
    # The dump after the first pass still holds the dead instruction; later ones do not.
    dumps = result.stderr.split("// -----// IR Dump After ")[1:]
    assert '"fadd"' in dumps[0]
    assert all('"fadd"' not in d for d in dumps[1:])


@pytest.mark.usefixtures("scratch_registry")
def test_verify_each_catches_a_pass_that_breaks_the_module(workdir: Path) -> None:
    register_pass(BreakModule)
    (workdir / "out.sil").write_text("precious\n")
    result = silopt("good.sil", "-break-module", "--verify-each", "-o", "out.sil")
    assert result.status == 1
    assert result.stdout == ""
    assert "does not verify after pass 'break-module'" in result.stderr
    assert "good.sil:" in result.stderr
    assert "terminator" in result.stderr
    assert (workdir / "out.sil").read_text() == "precious\n"


@pytest.mark.usefixtures("scratch_registry")
def test_a_pipeline_that_breaks_the_module_is_reported_without_verify_each(workdir: Path) -> None:
    register_pass(BreakModule)
    result = silopt("good.sil", "-break-module")
    assert result.status == 1
    assert result.stdout == ""
    assert "module does not verify after the pass pipeline" in result.stderr
    assert "terminator" in result.stderr


def test_verify_each_with_valid_passes(workdir: Path) -> None:
    assert silopt("good.sil", "-dce", "--verify-each") == Outcome(0, AFTER_DCE, "")


# --- --verify-diagnostics ----------------------------------------------------------------------


def verify_diagnostics(workdir: Path, text: str, *flags: str) -> Outcome:
    (workdir / "v.sil").write_text(text, encoding="utf-8")
    return silopt("v.sil", "--verify-diagnostics", *flags)


def test_expected_error_on_the_same_line(workdir: Path) -> None:
    text = BAD.replace("return %0 : $Int\n", "return %0 : $Int  // expected-error {{return of Int}}\n")
    assert verify_diagnostics(workdir, text) == Outcome(0, "", "")


def test_expected_error_with_offsets(workdir: Path) -> None:
    text = """\
sil @f : $@convention(thin) (Int) -> Float {
bb0(%0 : $Int):
  // expected-error@+1 {{return of Int from a function returning Float}}
  return %0 : $Int
}
sil @g : $@convention(thin) (Int) -> Float {
bb0(%0 : $Int):
  return %0 : $Int
  // expected-error@-1 {{from a function returning Float}}
}
sil @h : $@convention(thin) (Int) -> Float {
// expected-error@+2 {{returning Float}}
bb0(%0 : $Int):
  return %0 : $Int
}
"""
    assert verify_diagnostics(workdir, text) == Outcome(0, "", "")


def test_expectation_matches_a_substring_only_of_the_right_severity(workdir: Path) -> None:
    text = BAD.replace("return %0 : $Int\n", "return %0 : $Int  // expected-warning {{return of Int}}\n")
    result = verify_diagnostics(workdir, text)
    assert result.status == 1
    assert "unexpected error: return of Int from a function returning Float" in result.stderr
    assert 'expected warning "return of Int" was not produced' in result.stderr


def test_expectation_text_must_be_contained_in_the_message(workdir: Path) -> None:
    text = BAD.replace("return %0 : $Int\n", "return %0 : $Int  // expected-error {{return of Double}}\n")
    result = verify_diagnostics(workdir, text)
    assert result.status == 1
    assert 'expected error "return of Double" was not produced' in result.stderr


def test_unexpected_diagnostic(workdir: Path) -> None:
    result = verify_diagnostics(workdir, BAD)
    assert result.status == 1
    assert result.stdout == ""
    assert result.stderr == (
        "v.sil:3:3: error: unexpected error: return of Int from a function returning Float\n"
        "  return %0 : $Int\n"
        "  ^\n"
    )


def test_expected_but_not_produced(workdir: Path) -> None:
    text = GOOD.replace("bb0(%0 : $Float):\n", "bb0(%0 : $Float):  // expected-error {{nothing}}\n")
    result = verify_diagnostics(workdir, text)
    assert result.status == 1
    assert result.stdout == ""
    assert result.stderr.startswith('v.sil:2:20: error: expected error "nothing" was not produced\n')


def test_expectation_on_the_wrong_line(workdir: Path) -> None:
    text = BAD.replace("bb0(%0 : $Int):\n", "bb0(%0 : $Int):  // expected-error {{return of Int}}\n")
    result = verify_diagnostics(workdir, text)
    assert result.status == 1
    assert "unexpected error" in result.stderr
    assert "was not produced" in result.stderr


def test_each_diagnostic_needs_its_own_expectation(workdir: Path) -> None:
    text = BAD + BAD.replace("@f", "@g")
    marked = text.replace("return %0 : $Int\n", "return %0 : $Int  // expected-error {{return of Int}}\n", 1)
    result = verify_diagnostics(workdir, marked)
    assert result.status == 1
    assert result.stderr.startswith("v.sil:7:3: error: unexpected error: return of Int")
    both = text.replace("return %0 : $Int\n", "return %0 : $Int  // expected-error {{return of Int}}\n")
    assert verify_diagnostics(workdir, both) == Outcome(0, "", "")


NOTE_CASE = """\
sil @f : $@convention(thin) (Float) -> Float {
bb0(%0 : $Float):  // expected-note {{defined here}}
  %1 = builtin "fneg"(%0 : $Int) : $Int  // expected-error {{'%0' has type Float, but is used here as Int}}
  return %0 : $Float
}
"""


def test_notes_are_matched_too(workdir: Path) -> None:
    assert verify_diagnostics(workdir, NOTE_CASE) == Outcome(0, "", "")


def test_unexpected_note(workdir: Path) -> None:
    result = verify_diagnostics(workdir, NOTE_CASE.replace("  // expected-note {{defined here}}", ""))
    assert result.status == 1
    assert result.stderr.startswith("v.sil:2:5: error: unexpected note: defined here\n")


def test_verify_diagnostics_without_diagnostics_prints_the_module(workdir: Path) -> None:
    assert verify_diagnostics(workdir, GOOD, "-dce") == Outcome(0, AFTER_DCE, "")


def test_verify_diagnostics_writes_no_output_file_when_diagnostics_were_expected(workdir: Path) -> None:
    text = BAD.replace("return %0 : $Int\n", "return %0 : $Int  // expected-error {{return of Int}}\n")
    assert verify_diagnostics(workdir, text, "-o", "out.sil") == Outcome(0, "", "")
    assert not (workdir / "out.sil").exists()


def test_comment_line_before_closing_brace(workdir: Path) -> None:
    text = GOOD.replace("  return %1 : $Float\n", "  return %1 : $Float\n  // the end\n")
    assert silopt("-", stdin=text) == Outcome(0, GOOD, "")


# --- the program as a process -------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_module_entry_point_reports_a_bad_file_without_traceback(workdir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "silopt", "bad.sil"],
        cwd=workdir,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr == BAD_MESSAGE


@pytest.mark.skipif(shutil.which("silopt") is None, reason="the console script exists once installed")
def test_console_script(workdir: Path) -> None:
    ok = subprocess.run(["silopt", "good.sil", "-dce"], cwd=workdir, capture_output=True, text=True)
    assert (ok.returncode, ok.stdout) == (0, AFTER_DCE)
    missing = subprocess.run(["silopt", "missing.sil"], cwd=workdir, capture_output=True, text=True)
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    piped = subprocess.run(["silopt", "-dce"], cwd=workdir, input=GOOD, capture_output=True, text=True)
    assert (piped.returncode, piped.stdout) == (0, AFTER_DCE)
    usage = subprocess.run(["silopt", "--no-such-flag"], cwd=workdir, capture_output=True, text=True)
    assert usage.returncode == 2


# --- running -------------------------------------------------------------------------------------


def test_run_prints_the_result_in_literal_syntax(workdir: Path) -> None:
    out = silopt("good.sil", "--run", "@f", "--args", "1.5")
    assert (out.status, out.stdout, out.stderr) == (0, "2.25\n", "")


def test_run_after_passes_runs_the_transformed_module(workdir: Path) -> None:
    out = silopt("good.sil", "-dce", "--run", "f", "--args", "-3")
    assert (out.status, out.stdout) == (0, "9.0\n")


def test_args_without_run_is_bad_usage(workdir: Path) -> None:
    out = silopt("good.sil", "--args", "1.0")
    assert (
        out.status == 2
        and "--args needs --run, --check-derivatives, --verify-derivatives or --ad-stats" in out.stderr
    )
    out = silopt("good.sil", "--max-steps", "10")
    assert (
        out.status == 2
        and "--max-steps needs --run, --check-derivatives, --verify-derivatives or --ad-stats" in out.stderr
    )


def test_run_and_check_derivatives_together_is_bad_usage(workdir: Path) -> None:
    """Each replaces the module's printing with its own output: given both, one was ignored."""
    out = silopt("good.sil", "--run", "@f", "--check-derivatives", "--args", "1.0")
    assert (out.status, out.stdout) == (2, "")
    assert "--run and --check-derivatives exclude each other" in out.stderr


@pytest.mark.parametrize("flag", ["--max-steps", "--max-depth"])
@pytest.mark.parametrize("value", ["0", "-4", "ten"])
def test_limits_must_be_positive_integers(workdir: Path, flag: str, value: str) -> None:
    out = silopt("good.sil", "--run", "@f", "--args", "1.0", flag, value)
    assert out.status == 2 and flag in out.stderr


def test_run_of_a_missing_function_names_the_file_and_a_close_name(workdir: Path) -> None:
    out = silopt("good.sil", "--run", "@nope")
    assert (out.status, out.stdout) == (1, "")
    assert out.stderr == "error: 'good.sil' has no function '@nope' to run (--run)\n"
    out = silopt("good.sil", "--run", "@ff")
    assert out.stderr == "error: 'good.sil' has no function '@ff' to run (--run); did you mean '@f'?\n"


def test_a_newline_in_an_argument_is_quoted_so_the_source_line_follows(workdir: Path) -> None:
    out = silopt("good.sil", "--run", "@f", "--args", "1\n2")
    assert out.status == 1
    assert out.stderr.splitlines() == [
        "good.sil:1:5: error: argument 0 of '@f': '1\\n2' is not a Float literal",
        "sil @f : $@convention(thin) (Float) -> Float {",
        "    ^",
    ]
    out = silopt("good.sil", "--run", "@f\nx")
    assert out.stderr == "error: 'good.sil' has no function '@f\\nx' to run (--run)\n"


INT_AND_TENSOR = """\
sil @f : $@convention(thin) (Int, Tensor<Float>) -> Int {
bb0(%0 : $Int, %t : $Tensor<Float>):
  return %0 : $Int
}
"""


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        (b"", "is not a .npy file: it is empty"),
        (b"PK\x03\x04 a zip archive", "is not a .npy file: it is a zip archive (.npz)"),
        (b'\x93NUMPY\x01\x00\x10\x00{"descr": "<f4", (  \n', "is not a .npy file: its header is malformed"),
        (
            b"\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, "
            b"'shape': (10000000000,), }    \n",
            "holds less data than its header says",
        ),
    ],
    ids=["empty", "zip", "malformed-header", "short"],
)
def test_a_broken_npy_argument_is_a_diagnostic(workdir: Path, contents: bytes, message: str) -> None:
    (workdir / "m.sil").write_text(INT_AND_TENSOR, encoding="utf-8")
    (workdir / "t.npy").write_bytes(contents)
    out = silopt("m.sil", "--run", "@f", "--args", "1", "t.npy")
    assert (out.status, out.stdout) == (1, "")
    assert out.stderr.startswith(f"m.sil:1:5: error: argument 1 of '@f': 't.npy' {message}\n"), out.stderr


def test_an_integer_argument_of_5000_digits_does_not_fit(workdir: Path) -> None:
    (workdir / "m.sil").write_text(INT_AND_TENSOR, encoding="utf-8")
    out = silopt("m.sil", "--run", "@f", "--args", "7" * 5000, "t.npy")
    assert (out.status, out.stdout) == (1, "")
    assert "argument 0 of '@f': '777777777777777777777777777777…777777777' does not fit in Int" in out.stderr


@pytest.mark.parametrize("value", [str(2**63 - 1), "7" * 5000], ids=["2**63-1", "5000-digits"])
def test_a_huge_max_depth_is_bad_usage(workdir: Path, value: str) -> None:
    out = silopt("good.sil", "--run", "@f", "--args", "1.0", "--max-depth", value)
    assert out.status == 2 and "argument --max-depth" in out.stderr and len(out.stderr) < 2000


def test_the_deepest_max_depth_runs(workdir: Path) -> None:
    from silopt.arguments import MAX_DEPTH

    out = silopt("good.sil", "--run", "@f", "--args", "1.5", "--max-depth", str(MAX_DEPTH))
    assert (out.status, out.stdout, out.stderr) == (0, "2.25\n", "")


def test_run_lowers_only_the_derivative_requests_it_reaches(workdir: Path) -> None:
    source = (ROOT / "golden" / "run" / "unreached_request.sil").read_text(encoding="utf-8")
    (workdir / "m.sil").write_text(source, encoding="utf-8")
    assert silopt("m.sil", "--run", "@main", "--args", "3.0") == Outcome(0, "6.0\n", "")
    out = silopt("m.sil", "--run", "@unused", "--args", "3.0")
    assert (out.status, out.stdout) == (1, "")
    assert out.stderr.startswith(
        "m.sil:7:3: error: expression is not differentiable: 'fptosi' has no derivative\n"
    )


def test_unknown_backend_is_bad_usage(workdir: Path) -> None:
    out = silopt("good.sil", "--run", "@f", "--args", "1.0", "--accel", "tpu")
    assert out.status == 2 and "--accel" in out.stderr


def test_bad_sil_accel_environment_variable(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIL_ACCEL", "tpu")
    out = silopt("good.sil", "--run", "@f", "--args", "1.0")
    assert out.status == 1 and "SIL_ACCEL" in out.stderr and out.stdout == ""


def test_numpy_backend_can_be_chosen(workdir: Path) -> None:
    out = silopt("good.sil", "--run", "@f", "--args", "2", "--accel", "numpy")
    assert (out.status, out.stdout) == (0, "4.0\n")


def test_version_names_the_tensor_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIL_ACCEL", raising=False)
    out = silopt("--version", "--accel", "numpy")
    assert out.status == 0
    assert out.stdout.startswith("silopt (sil-workbench) ")
    assert "accel: numpy" in out.stdout


def test_driver_constants_match_the_packages_they_stand_for() -> None:
    """silopt names these without importing accel and interp (which import NumPy)."""
    import accel
    import interp
    from silopt import arguments

    assert arguments.BACKEND_NAMES == accel.BACKEND_NAMES
    assert arguments.DEFAULT_MAX_DEPTH == interp.DEFAULT_MAX_DEPTH


def test_parsing_alone_does_not_import_numpy() -> None:
    code = (
        "import sys, silopt.driver as d; d.main(['examples/polynomial.sil']); print('numpy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("False")
