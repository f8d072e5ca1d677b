"""What ``--trap-nan`` costs: nothing when off, and how much when on.

Run from the repository root (or anywhere; it imports the checkout it lives in)::

    python3 benchmarks/nan_bench.py           # the full run (about a minute on 2 cores)
    python3 benchmarks/nan_bench.py --quick   # a smoke run: short loops, small widths, one round

Workloads, on the NumPy backend, each module compiled by three Programs: ``Program(module)`` (the
path every caller takes, which the option does not touch), ``Program(module, trap_nan=False)``
and ``Program(module, trap_nan=True)``: (a) interp_bench's loop of 10^6 trips on Double (a scalar
test after each of its two float builtins), against the same Python ``while`` loop; (b) ad_bench's
MLP loss gradient (lowered by ``-differentiation``, ``-lower-gradient``) at widths 256 and 1024
on Float tensors (a tensor test after each builtin that computes: matmuls, tanh, the pullback's
products and sums), against hand-written NumPy forward and backward passes.

Checked before anything is timed: the three Programs compile byte-identical source for the first
two and not for the third (the tests are there); they compute the same results, bit for bit; and
the trap does stop each workload at a NaN made in it (a loop whose square overflows, a batch with
an infinity). Variants are interleaved call by call in every round (``common.time_round``), and
each ratio is the median over rounds of the ratio within a round. ``benchmarks/README.md``
records results.
"""

from __future__ import annotations

import builtins
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import ad_bench
import common
import interp_bench
import numpy as np
from common import Bench, Figure, checked_module, fail, ratios

import interp.compiler
from accel import Backend, select_backend
from interp import Program, RunError
from sil import Module

TARGET_OFF = 1.05  # trap_nan=False / no option: the same code, so within noise
PROGRAMS = {"no option": {}, "trap off": {"trap_nan": False}, "trap on": {"trap_nan": True}}
GRADIENT = f"@AD__loss__grad_src_0_wrt_{'_'.join(map(str, ad_bench.MLP_WRT))}"


@contextmanager
def capturing_sources() -> Iterator[list[str]]:
    """The Python source of each function the interpreter compiles meanwhile."""
    found: list[str] = []

    def capture(source: str, filename: str) -> Any:  # each compilation, none from the cache
        found.append(source)
        return builtins.compile(source, filename, "exec")

    cached = interp.compiler.compiled_code
    setattr(interp.compiler, "compiled_code", capture)  # noqa: B010 (in place of the cached one)
    try:
        yield found
    finally:
        setattr(interp.compiler, "compiled_code", cached)  # noqa: B010


def compiled(module: Module, backend: Backend, name: str, what: str) -> dict[str, Callable[..., Any]]:
    """``@name`` compiled by each Program of ``PROGRAMS``; the run stops unless the first two
    compile the same source and the trap's differs."""
    forms, sources = {}, {}
    for variant, options in PROGRAMS.items():
        with capturing_sources() as found:
            forms[variant] = Program(module, backend, **options).function(name)
        sources[variant] = found
    if not sources["no option"] or sources["trap off"] != sources["no option"]:
        fail(f"{what}: trap_nan=False compiles other source than a Program without the option")
    if sources["trap on"] == sources["no option"] or not any("_nan" in s for s in sources["trap on"]):
        fail(f"{what}: trap_nan=True compiles no test")
    return forms


def traps(module: Module, backend: Backend, name: str, args: list[Any]) -> str:
    """The message of the fault a run under the trap stops with (none: the run stops)."""
    try:
        Program(module, backend, trap_nan=True).run(name, *args)
    except RunError as e:
        return e.diagnostics[0].message
    fail(f"{name}: the trap let a NaN through")


class Setup:
    """Every workload generated, compiled three ways and checked, with its variants ready to time."""

    def __init__(self, quick: bool, backend: Backend) -> None:
        self.quick = quick
        self.backend = backend
        self.benches: list[Bench] = []
        self.profiled: dict[str, Callable[[], object]] = {}
        self.loop = self.scalar_loop()
        self.widths = (64, 256) if quick else ad_bench.HIDDEN_WIDTHS
        self.mlp = [self.gradient(width) for width in self.widths]

    def scalar_loop(self) -> Bench:
        module = checked_module(interp_bench.loop_text("Double"), "loop on Double")
        forms = compiled(module, self.backend, "@loop", "loop on Double")
        c, n = interp_bench.LOOP_C, 10_000 if self.quick else 1_000_000
        expected = interp_bench.py_loop(c, n)
        for variant, form in forms.items():
            if not interp_bench.same_bits(form(1, c, n), expected):
                fail(f"loop on Double, {variant}: not the Python loop's result")
        if "'fmul' made a NaN" not in traps(module, self.backend, "@loop", [float("inf"), 3]):
            fail("loop on Double: the first trip's 0 * inf was not trapped")
        b = Bench("(a) loop, Double", n, "trip")
        calls = 10 if self.quick else 2
        for variant, form in forms.items():
            b.add(variant, partial(form, 1, c, n), calls, warmup=1)
        b.add("python", partial(interp_bench.py_loop, c, n), calls, warmup=1)
        self.benches.append(b)
        self.profiled["loop"] = partial(forms["trap on"], 1, c, n)
        return b

    def gradient(self, width: int) -> Bench:
        module = checked_module(ad_bench.mlp_text(), "MLP loss")
        common.pass_manager("differentiation", "lower-gradient").run(module)
        forms = compiled(module, self.backend, GRADIENT, "MLP gradient")
        host = ad_bench.mlp_inputs(width)
        args = [self.backend.from_host(a, np.float32) for a in host]
        _, want = ad_bench.numpy_loss_and_grad(*host)
        results = {
            variant: [self.backend.to_host(g) for g in form(1, *args)] for variant, form in forms.items()
        }
        ad_bench.check_arrays(f"MLP width {width}: the gradient", results["no option"], want)
        for variant, got in results.items():
            if any(g.tobytes() != r.tobytes() for g, r in zip(got, results["no option"])):
                fail(f"MLP width {width}, {variant}: not bit for bit the gradient without the option")
        poisoned = [a.copy() for a in host]
        poisoned[0][0, 0] = np.inf  # tanh saturates the row to ±1: its pullback's 0 meets the inf
        if "'matmul' made a NaN" not in traps(module, self.backend, GRADIENT, poisoned):
            fail(f"MLP width {width}: an infinite input made no trapped NaN")
        b = Bench(f"(b) MLP gradient, width {width}", 1, "step")
        calls = 1 if self.quick else (5 if width >= 1024 else 20)
        for variant, form in forms.items():
            b.add(variant, partial(form, 1, *args), calls)
        b.add("numpy fwd+bwd", partial(ad_bench.numpy_loss_and_grad, *host), calls)
        self.benches.append(b)
        if width == max(self.widths):
            self.profiled["mlp"] = partial(forms["trap on"], 1, *args)
        return b


def ratio_figures(setup: Setup) -> list[Figure]:
    loop = setup.loop
    figures = [
        Figure(
            "(a) loop trip: trap off / no option", ratios((loop, "trap off"), (loop, "no option")), TARGET_OFF
        ),
        Figure("(a) loop trip: trap on / trap off", ratios((loop, "trap on"), (loop, "trap off"))),
        Figure("(a) loop trip: no option / Python while", ratios((loop, "no option"), (loop, "python"))),
    ]
    for b in setup.mlp:
        width = b.name.rsplit(" ", 1)[1]
        figures += [
            Figure(
                f"(b) MLP {width}: trap off / no option",
                ratios((b, "trap off"), (b, "no option")),
                TARGET_OFF,
            ),
            Figure(f"(b) MLP {width}: trap on / trap off", ratios((b, "trap on"), (b, "trap off"))),
            Figure(
                f"(b) MLP {width}: no option / hand NumPy", ratios((b, "no option"), (b, "numpy fwd+bwd"))
            ),
        ]
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = common.argument_parser(
        __doc__,
        quick="10^4-trip loop, widths 64 and 256, one round: a smoke run",
        reps="timed rounds (default 9; 1 with --quick)",
        profile=("loop", "mlp"),
        profile_help="instead of timing, run one workload under the trap under cProfile",
    )
    args = ap.parse_args(argv)
    backend = select_backend("numpy")
    reps = args.reps or (1 if args.quick else 9)
    info = common.machine(numpy=np.__version__, backend=backend.describe())
    started = time.perf_counter()
    setup = Setup(args.quick, backend)
    if args.profile:
        common.print_profile(setup.profiled[args.profile], args.profile)
        return 0
    common.header("nan_bench", info, ("NumPy", "backend"), f"{reps} round(s)", args.quick)
    ready = time.perf_counter() - started
    print(f"  generated, compiled and checked {len(setup.benches)} workloads in {ready:.1f} s")
    interp_bench.measure(setup.benches, reps)
    common.print_medians("Median time per call (and per unit of work), over rounds:", setup.benches, 14)
    summary = common.print_ratios(
        "Ratios: the median over rounds of the ratio within a round, and its quartiles",
        ratio_figures(setup),
        40,
        11,
    )
    if args.quick:
        print("A --quick smoke run: too small and short to judge the targets.")
    print(f"\nTotal {time.perf_counter() - started:.1f} s.")
    doc = {"machine": info, "reps": reps, "quick": args.quick}
    common.write_json(args.json, {**doc, "workloads": common.benches_json(setup.benches), "ratios": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
