#!/usr/bin/env bash
# One-shot GPU check for a machine with an NVIDIA GPU and no network; no pip, no build (< 10 min):
#   1. the machine: nvidia-smi, the Python found by `command -v python3 || command -v python`;
#   2. the pure-Python wheels it may lack (array-api-compat, array-api-strict, threadpoolctl),
#      unpacked from gpu-wheels/ into a temporary folder on PYTHONPATH, with this source tree;
#   3. the probe: CuPy must compile a kernel and run a matrix product, else the check stops here;
#   4. the tests on CuPy and NumPy (CuPy tests fail rather than skip), at most 240 s;
#   5. python -m benchmarks --gpu --quick, at most 200 s;
#   (a step that runs out of time gets SIGINT, so pytest still writes its JUnit XML and the
#   benchmark keeps every section it finished; the step's exit status is then 124)
#   6. $OUT/gpu-latest.json: device, cupy_version, tests {passed, failed, skipped}, benchmark rows.
# Logs, JUnit XML, the Markdown table and the JSON records go under $OUT.
#
# Usage, from the repository root:  OUT=/path/to/out bash benchmarks/gpu.sh
# gpu-wheels/ (untracked, not ignored, so that it travels with the working tree) is made once, on a
# machine with network, by:
#   pip download --no-deps --only-binary=:all: -d gpu-wheels \
#       array-api-compat==1.16.0 array-api-strict==2.6.1 threadpoolctl==3.8.0
# The machine needs numpy and cupy (cupy-cuda12x or cupy-cuda13x with its CUDA libraries), pytest
# and hypothesis for the tests; scipy, torch and scikit-learn only for optional rows.
set -uo pipefail

ROOT="$(realpath "$(dirname "$0")/..")"
OUT="$(realpath -m "${OUT:-$ROOT/gpu-out}")"
WHEELS="$(realpath -m "${WHEELS:-$ROOT/gpu-wheels}")"
cd "$ROOT" || exit 2
mkdir -p "$OUT" || exit 2
exec > >(tee "$OUT/gpu.log") 2>&1

PY="$(command -v python3 || command -v python)" || {
    echo "GPU CHECK FAILED: no python3 or python on PATH"
    exit 2
}

echo "== machine"
nvidia-smi || echo "nvidia-smi not found or failed"
echo "python: $PY ($("$PY" --version 2>&1))"

echo "== wheels from $WHEELS"
SITE="$(mktemp -d)"
trap 'rm -rf "$SITE"' EXIT
shopt -s nullglob
wheels=("$WHEELS"/*.whl)
if [ "${#wheels[@]}" -eq 0 ]; then
    echo "GPU CHECK FAILED: no wheels in $WHEELS; make them on a machine with network:"
    echo "  pip download --no-deps --only-binary=:all: -d gpu-wheels array-api-compat==1.16.0 array-api-strict==2.6.1 threadpoolctl==3.8.0"
    exit 2
fi
for wheel in "${wheels[@]}"; do
    echo "  $(basename "$wheel")"
    "$PY" -m zipfile -e "$wheel" "$SITE" || exit 2 # a wheel is a zip of the package and its metadata
done
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export SOFTMAX_XP_REQUIRE_GPU=1 MPLBACKEND=Agg SCIPY_ARRAY_API=1

echo "== probe"
"$PY" -m benchmarks.gpu_check probe || exit 3

echo "== tests on CuPy and NumPy (at most 240 s)"
SOFTMAX_XP_TEST_BACKENDS=cupy,numpy timeout -s INT -k 30 240 \
    "$PY" -m pytest -q -p no:cacheprovider \
    --junitxml="$OUT/pytest.xml"
tests=$?

echo "== GPU benchmark (at most 200 s)"
timeout -s INT -k 30 200 "$PY" -m benchmarks --gpu --quick --out "$OUT/gpu-benchmark.json" |
    tee "$OUT/gpu-benchmark.md"
bench=${PIPESTATUS[0]}

"$PY" -m benchmarks.gpu_check summary "$OUT" tests="$tests" benchmark="$bench"
status=$((tests != 0 ? tests : bench))
echo "== done: tests exit $tests, benchmark exit $bench (124: timed out); outputs in $OUT"
exit "$status"
