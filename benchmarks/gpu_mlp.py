"""The MLP loss gradient of ``ad_bench.py`` (b) on a tensor backend, against the same forward and
backward passes written by hand for that backend's array library: on CuPy, the interpreter's
gradient against hand-written CuPy (issue 14, item 7: at most 1.2x at width 1024, batch 1024).

Run from the repository root (``benchmarks/gpu_check.sh`` runs it)::

    python3 benchmarks/gpu_mlp.py                  # CuPy, batch 1024, widths 256 and 1024
    python3 benchmarks/gpu_mlp.py --accel numpy    # the same on NumPy (what the CPU can check)
    python3 benchmarks/gpu_mlp.py --quick          # a smoke run: one round, a few calls

The module is ``ad_bench.mlp_text()``, differentiated and lowered; the hand-written passes are
``ad_bench.hand_loss_and_grad`` on the backend's array module. The gradients are checked against
each other (float32, up to summation order) before anything is timed. A GPU runs kernels
asynchronously, so each timed call ends by waiting for the device (both variants alike); the
interpreter's gradient also waits where its SIL takes a scalar out of a tensor (the loss's
``mean``). Variants are timed round-robin, and the ratio is the median over rounds of the ratio
within a round. A backend that cannot run here (no CuPy, no GPU) ends the run with status 2 and
one line saying why.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from functools import partial

import common  # first: it puts this checkout on sys.path
import numpy as np
from ad_bench import MLP_WRT, check_arrays, differentiated, hand_loss_and_grad, mlp_inputs, mlp_text
from common import Bench, Figure, ratios

from accel import Backend, BackendUnavailable, select_backend
from interp import Program

TARGET_GPU_MLP = 1.2  # interpreter's gradient / hand-written CuPy's, width 1024, batch 1024
GPU_BATCH, GPU_WIDTHS = 1024, (256, 1024)


def synchronizer(backend: Backend) -> Callable[[], None]:
    """What waits until the backend's queued work is done: nothing for NumPy."""
    if backend.name != "cupy":
        return lambda: None
    stream = importlib.import_module("cupy").cuda.get_current_stream()
    return stream.synchronize  # type: ignore[no-any-return]


def waited(fn: Callable[[], object], sync: Callable[[], None]) -> Callable[[], object]:
    def call() -> object:
        result = fn()
        sync()
        return result

    return call


def benches(backend: Backend, quick: bool) -> list[Bench]:
    """Per width: the interpreter's gradient and the hand-written one, checked and ready to time."""
    xp = np if backend.name == "numpy" else importlib.import_module(backend.name)
    module = differentiated(mlp_text(), "MLP loss")
    grad = Program(module, backend).function(f"@AD__loss__grad_src_0_wrt_{'_'.join(map(str, MLP_WRT))}")
    sync = synchronizer(backend)
    result = []
    for width in GPU_WIDTHS:
        args = [backend.from_host(a, np.float32) for a in mlp_inputs(width, batch=GPU_BATCH)]
        got = [backend.to_host(g) for g in grad(1, *args)]
        _, want = hand_loss_and_grad(xp, *args)
        check_arrays(f"MLP width {width} on {backend.name}", got, [backend.to_host(w) for w in want])
        b = Bench(f"MLP loss gradient, batch {GPU_BATCH}, width {width}", 1, "step")
        calls = 2 if quick else 20
        b.add("interp gradient", waited(partial(grad, 1, *args), sync), calls, warmup=2 if quick else 10)
        b.add(f"hand {backend.name}", waited(partial(hand_loss_and_grad, xp, *args), sync), calls)
        result.append(b)
    return result


def one_round(timed: list[Bench], i: int) -> str:
    common.time_round(timed, i)
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = common.argument_parser(
        __doc__,
        quick="one round of a few calls: a smoke run",
        reps="timed rounds (default 9; 1 with --quick)",
        profile=("mlp",),
        profile_help="instead of timing, run the interpreter's gradient at width 1024 under cProfile",
    )
    ap.add_argument("--accel", choices=("cupy", "numpy"), default="cupy", help="the backend (default cupy)")
    args = ap.parse_args(argv)
    try:
        backend = select_backend(args.accel)
    except BackendUnavailable as exc:
        print(f"gpu_mlp: the {args.accel} backend cannot run here: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    timed = benches(backend, args.quick)
    if args.profile:
        fn = timed[-1].variants["interp gradient"][0]
        common.print_profile(lambda: [fn() for _ in range(20)], "mlp")
        return 0
    reps = args.reps or (1 if args.quick else 9)
    info = common.machine(numpy=np.__version__, backend=backend.describe())
    common.header("gpu_mlp", info, ("NumPy", "backend"), f"{reps} round(s)", args.quick)
    common.warm_up(timed)
    common.rounds(reps, partial(one_round, timed))
    common.print_medians("Median time per call, over rounds:", timed, 20)
    figures = [
        Figure(
            f"MLP {b.name.rsplit(' ', 1)[1]}: gradient / hand {backend.name}",
            ratios((b, "interp gradient"), (b, f"hand {backend.name}")),
            TARGET_GPU_MLP if b is timed[-1] and backend.name == "cupy" else None,
        )
        for b in timed
    ]
    summary = common.print_ratios(
        "Ratios: the median over rounds of the ratio within a round", figures, 40, 11
    )
    if args.quick:
        print("A --quick smoke run: too small and short to judge the target.")
    print(f"\nTotal {time.perf_counter() - started:.1f} s.")
    doc = {"machine": info, "reps": reps, "quick": args.quick, "batch": GPU_BATCH}
    common.write_json(args.json, {**doc, "workloads": common.benches_json(timed), "ratios": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
