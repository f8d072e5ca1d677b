"""The benchmarks run and say what they measured: each one's --quick smoke run ends cleanly and
writes JSON whose figures ``benchmarks/compare.py`` reads; ``common.figures`` reads the layout
written before the harness was shared (what compare.py meets in an older tree); compare.py flags
ratios outside its noise band and removes its worktree however it ends. Speed is never asserted
here: the machines are too noisy, and benchmarks/README.md records what was measured."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"

# A few figures each smoke run must report, by name (the names compare.py matches between trees).
EXPECTED = {
    "parse": [
        "straight-line 1k: parse",
        "200 functions: print",
        "200 functions: bytes/instr",
        "straight-line 5k: parse/loads",
        "scaling: verify",
    ],
    "interp": [
        "(a) straight-line 10k: interp",
        "(b) loop, Double: python",
        "(a) straight-line / plain Python",
        "(d) MLP 1024 / hand NumPy",
        "(e) counting steps, loop",
    ],
    "ad": [
        "(a) chain of 100 calls: interp gradient",
        "(a) straight-line 1k: gradient / primal",
        "(b) MLP 1024: gradient / hand NumPy fwd+bwd",
        "(b) MLP 1024: peak memory / hand NumPy's",
        "(c) 2,000 blocks: verify+print",
        "(d) loop: gradient / primal",
        "(d) records, 100,000 trips: B/trip",
        "(e) per call: interp gradient",
    ],
    "element": [
        "n = 100,000: interp gradient",
        "n = 10,000: interp gradient, no COW",
        "µs/element 100k / 1k: gradient",
        "µs/element 10k / 1k: hand Python",
        "n = 10k: gradient / hand Python",
        "n = 10k: gradient / no COW",
    ],
    "nan": [
        "(a) loop trip: trap off / no option",
        "(a) loop trip: trap on / trap off",
        "(b) MLP 256: trap off / no option",
        "(b) MLP 256: trap on / trap off",
    ],
    "placement": [
        "gmm 3x2x2: AD",
        "ode_rk4 3: AD, -O",
        "lennard_jones 3: -O, AD, -O",
        "brusselator 4x3: -O, AD",
        "placement: gradient time, -O AD -O / AD -O (geomean)",
        "placement: executed, -O AD -O / AD -O (geomean)",
    ],
    "opt": [
        "loop, Double, 1,000 trips: after",
        "straight-line 1,000: before",
        "interp: executed, after -O / before (geomean)",
        "golden: time, after -O / before (geomean)",
    ],
}
SCRIPTS = {"placement": "placement.py"}  # the others are {bench}_bench.py, as in compare.py


def script(bench: str) -> Path:
    return BENCHMARKS / SCRIPTS.get(bench, f"{bench}_bench.py")


@pytest.fixture(scope="module")
def harness() -> Iterator[tuple[ModuleType, ModuleType]]:
    """``common`` and ``compare``, imported as the benchmarks import them (from their folder)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import common
        import compare

        yield common, compare
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def smoke_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[subprocess.Popen[str], Path]]]:
    """Each benchmark's --quick run, started at once and run side by side (ad_bench's takes about
    30 s of CPU, the others' about 15 together), from a directory outside the checkout; by
    benchmark, the process and where it writes its JSON."""
    folder = tmp_path_factory.mktemp("smoke")
    runs = {}
    for bench in EXPECTED:
        out = folder / f"{bench}.json"
        command = [sys.executable, str(script(bench)), "--quick", "--json", str(out)]
        process = subprocess.Popen(
            command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        runs[bench] = (process, out)
    yield runs
    for process, _ in runs.values():  # a test that failed early leaves its neighbours' runs going
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("bench", list(EXPECTED))
def test_a_smoke_run_writes_its_figures(
    bench: str,
    smoke_runs: dict[str, tuple[subprocess.Popen[str], Path]],
    harness: tuple[ModuleType, ModuleType],
) -> None:
    common, _ = harness
    process, out = smoke_runs[bench]
    stdout, _ = process.communicate(timeout=600)
    assert process.returncode == 0, stdout[-3000:]
    lines = stdout.splitlines()
    assert lines[0].startswith(f"{script(bench).stem}: CPython") and "QUICK smoke run" in lines[0], lines[0]
    assert lines[-1].startswith("Total "), stdout[-500:]
    doc = json.loads(out.read_text())
    assert doc["quick"] is True
    found = common.figures(doc)
    assert doc["figures"] == {name: list(entry) for name, entry in found.items()}
    for name in EXPECTED[bench]:
        assert name in found, f"{name!r} not among {sorted(found)}"
    for name, (value, unit) in found.items():
        assert unit in ("s", "x", "B"), name
        assert math.isfinite(value) and value > 0, (name, value)


def test_compare_runs_every_benchmark_the_smoke_runs_check(harness: tuple[ModuleType, ModuleType]) -> None:
    _, compare = harness
    assert set(compare.BENCHES) == set(EXPECTED) == set(compare.QUICK_ARGS)
    for bench in EXPECTED:
        assert (BENCHMARKS / compare.script_name(bench)) == script(bench)


def test_placement_programs_are_what_their_generator_writes(harness: tuple[ModuleType, ModuleType]) -> None:
    """benchmarks/placement/*.sil are placement_programs.py's output, as checked in."""
    import placement_programs

    assert sorted(p.path.name for p in placement_programs.PROGRAMS) == sorted(
        p.name for p in placement_programs.FOLDER.glob("*.sil")
    )
    for program in placement_programs.PROGRAMS:
        assert program.path.read_text() == program.generate(), program.name


def test_figures_reads_the_layout_written_before_the_harness(harness: tuple[ModuleType, ModuleType]) -> None:
    """The keys fed0b21's benchmarks wrote, each benchmark its own: compare.py reads them in REV."""
    common, _ = harness
    doc = {
        "workloads": [
            {"name": "straight-line 10k", "seconds": {"parse": 0.05}, "bytes_per_instruction": 540.0},
            {"name": "(b) loop, Double", "seconds_per_call": {"interp": 0.3, "python": 0.2}},
        ],
        "scaling": {"print": 1.4},
        "baseline_scaling": {"json.dumps": 1.1},
        "targets": {"parse": {"value": 1.0}},
        "ratios": {"(b) loop trip": {"ratio": 1.5}, "(b) MLP 1024": {"ratio": None, "blocked": "why"}},
        "called_loop": {"trips": [2000, 22000], "seconds_per_call": {"interp gradient": 2e-5}},
        "loop_record_bytes_per_trip": {"1000": 137.0},
        "pass": [{"instructions": 1001, "pass_seconds": [3.0, 1.0, 2.0], "verify_print_seconds": None}],
        "pass_blocks": [{"blocks": 2000, "pass_seconds": [0.5], "verify_print_seconds": [0.25]}],
    }
    assert common.figures(doc) == {
        "straight-line 10k: parse": (0.05, "s"),
        "straight-line 10k: bytes/instr": (540.0, "B"),
        "(b) loop, Double: interp": (0.3, "s"),
        "(b) loop, Double: python": (0.2, "s"),
        "(b) loop trip": (1.5, "x"),
        "scaling: print": (1.4, "x"),
        "baseline scaling: json.dumps": (1.1, "x"),
        "(e) per call: interp gradient": (2e-5, "s"),
        "(d) records, 1,000 trips: B/trip": (137.0, "B"),
        "(c) 1,001 instructions: pass": (2.0, "s"),
        "(c) 2,000 blocks: pass": (0.5, "s"),
        "(c) 2,000 blocks: verify+print": (0.25, "s"),
    }


def test_compare_flags_ratios_outside_the_noise_band(harness: tuple[ModuleType, ModuleType]) -> None:
    _, compare = harness
    runs = {
        "REV": [{"w: interp": (1.0, "s"), "w: python": (1.0, "s"), "r": (2.0, "x"), "old": (1.0, "s")}] * 2,
        "current": [{"w: interp": (1.3, "s"), "w: python": (0.8, "s"), "r": (2.1, "x"), "new": (1.0, "s")}]
        * 2,
    }
    table, one_side = compare.rows(runs, 0.1)
    by_name = {r.name: r for r in table}
    assert sorted(by_name) == ["r", "w: interp", "w: python"]
    assert one_side == ["new", "old"]
    assert (by_name["w: interp"].flag, by_name["w: interp"].control) == ("SLOWER", False)
    assert (by_name["w: python"].flag, by_name["w: python"].control) == ("FASTER", True)
    assert by_name["r"].flag == "" and by_name["r"].ratio == pytest.approx(1.05)
    assert compare.is_control("(a) straight-line 1k: hand Python, gradient / primal")
    assert not compare.is_control("(a) straight-line 1k: gradient / hand Python's")


def test_compare_removes_its_worktree_however_it_ends(harness: tuple[ModuleType, ModuleType]) -> None:
    _, compare = harness

    def listed() -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True, check=True
        ).stdout

    with compare.worktree("HEAD") as path:
        assert (path / "benchmarks" / "common.py").is_file()
        assert str(path) in listed()
    assert not path.exists() and str(path) not in listed()
    with pytest.raises(KeyboardInterrupt), compare.worktree("HEAD") as path:
        raise KeyboardInterrupt
    assert not path.exists() and str(path) not in listed()
    with pytest.raises(SystemExit, match="no commit no-such-revision"), compare.worktree("no-such-revision"):
        pass


def test_compare_runs_both_trees_and_compares_their_figures(
    tmp_path: Path, harness: tuple[ModuleType, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    """parse_bench of HEAD and of this tree, one round each (one sample a figure, to keep it short):
    every figure of ours compared, none lost between the trees."""
    _, compare = harness
    monkeypatch.setitem(compare.QUICK_ARGS, "parse", ["--quick", "--no-memory"])
    out = tmp_path / "compare.json"
    assert compare.main(["HEAD", "--quick", "--bench", "parse", "--rounds", "1", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    rows = doc["figures"]["parse"]
    assert "straight-line 5k: parse" in rows and "200 functions: verify" in rows
    for name, row in rows.items():
        assert row["ratio"] == pytest.approx(row["current"] / row["rev"]), name
        assert row["control"] == name.rsplit(": ", 1)[-1].startswith(("floor", "json")), name


def test_gpu_mlp_runs_on_numpy_and_reports_its_ratios(
    tmp_path: Path, harness: tuple[ModuleType, ModuleType]
) -> None:
    """gpu_mlp.py's --quick run on the NumPy backend (what the CPU can check of what gpu_check.sh
    runs on CuPy): the gradients agree with the hand-written ones, and each width has its ratio."""
    common, _ = harness
    out = tmp_path / "gpu_mlp.json"
    command = [
        sys.executable,
        str(BENCHMARKS / "gpu_mlp.py"),
        "--accel",
        "numpy",
        "--quick",
        "--json",
        str(out),
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.startswith("gpu_mlp: CPython") and "backend numpy" in run.stdout.splitlines()[0]
    found = common.figures(json.loads(out.read_text()))
    for width in (256, 1024):
        value, unit = found[f"MLP {width}: gradient / hand numpy"]
        assert unit == "x" and math.isfinite(value) and value > 0


def cupy_unavailable() -> str | None:
    """Why CuPy cannot run here; None when it can."""
    from accel import BackendUnavailable
    from accel.cupy_backend import load_cupy

    try:
        load_cupy()
    except BackendUnavailable as exc:
        return str(exc)
    return None


def test_gpu_check_stops_cleanly_without_a_gpu(tmp_path: Path) -> None:
    why = cupy_unavailable()
    if why is None:
        pytest.skip("CuPy runs here: gpu_check.sh would run in full")
    for command in (
        ["bash", str(BENCHMARKS / "gpu_check.sh")],
        [sys.executable, str(BENCHMARKS / "gpu_mlp.py"), "--quick"],
    ):
        run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 2, run.stdout + run.stderr
        assert run.stdout == "" and run.stderr.endswith(f"cannot run here: {why}\n"), run.stderr
