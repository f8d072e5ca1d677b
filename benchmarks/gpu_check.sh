#!/usr/bin/env bash
# What the CuPy backend does on a GPU (issue 14, item 7), in one short run from any directory:
#   1. the backend conformance tests (tests/accel, CuPy's among them), the interpreter's transfer
#      counts (the MLP gradient moves only its scalars to the host) and the training example's
#      test, on CuPy;
#   2. the MLP loss gradient on CuPy against hand-written CuPy, batch 1024, widths 256 and 1024
#      (target: at most 1.2x at width 1024), by benchmarks/gpu_mlp.py;
#   3. examples/mlp_train.sil trained on CuPy, its report and its time (and NumPy's, beside it).
# Where CuPy is not installed or sees no GPU it stops at once, with status 2 and a line saying why;
# otherwise every step runs, and the status is 1 when one of them failed. Set PYTHON to use another interpreter. Extra arguments go to gpu_mlp.py (--reps 3, --json FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if ! why=$("$PYTHON" - <<'EOF' 2>&1
from accel.backend import BackendUnavailable
from accel.cupy_backend import CupyBackend

try:
    print(CupyBackend().describe())
except BackendUnavailable as exc:
    print(exc)
    raise SystemExit(1)
EOF
); then
    echo "gpu_check: CuPy cannot run here: ${why}" >&2
    exit 2
fi
echo "gpu_check: ${why}"

failed=()

echo
echo "== 1. tests on CuPy"
"$PYTHON" -m pytest -q -p no:cacheprovider -rs \
    tests/accel tests/interp/test_transfers.py tests/silopt/test_mlp_example.py || failed+=("tests")

echo
echo "== 2. the MLP gradient on CuPy against hand-written CuPy"
"$PYTHON" benchmarks/gpu_mlp.py --accel cupy "$@" || failed+=("gpu_mlp.py")

echo
echo "== 3. examples/mlp_train.sil"
for accel in cupy numpy; do
    TIMEFORMAT="  on ${accel}: %R s, start-up included"
    time "$PYTHON" -m silopt examples/mlp_train.sil --run @train --accel "$accel" || failed+=("training on $accel")
done

if ((${#failed[@]})); then
    echo "gpu_check: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "gpu_check: every step ran"
