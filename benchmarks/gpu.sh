#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU and no network (about 5 minutes):
#   1. install the carried wheels (array-api-compat, array-api-strict; CuPy if it is missing),
#   2. install this project without its dependencies,
#   3. run the test suite on CuPy and NumPy,
#   4. run the GPU benchmark (python -m benchmarks --gpu).
# Everything (logs, JUnit XML, Markdown, JSON) goes under "$OUT".
#
# Usage, from anywhere:  OUT=/path/to/out WHEELS=/path/to/wheels bash benchmarks/gpu.sh
# WHEELS defaults to wheels/ at the repository root, filled on a machine with network by
#   pip download array-api-compat array-api-strict cupy-cuda12x pytest hypothesis scipy -d wheels
set -uo pipefail

ROOT="$(realpath "$(dirname "$0")/..")"
OUT="$(realpath -m "${OUT:-$ROOT/gpu-out}")"        # relative paths: from the caller's directory
WHEELS="$(realpath -m "${WHEELS:-$ROOT/wheels}")"
cd "$ROOT"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.log") 2>&1

echo "== machine"
nvidia-smi || echo "nvidia-smi not found"
python --version

echo "== install (offline, from $WHEELS)"
pip install --no-index --find-links "$WHEELS" array-api-compat array-api-strict || exit 1
# CuPy and the test tools only when the machine lacks them (module name, then package name).
for pair in cupy:cupy-cuda12x pytest:pytest hypothesis:hypothesis scipy:scipy; do
    if ! python -c "import ${pair%%:*}" 2>/dev/null; then
        pip install --no-index --find-links "$WHEELS" "${pair#*:}" || exit 1
    fi
done
pip install --no-deps -e . || exit 1
python -c "import softmax_xp, json; print(json.dumps(softmax_xp.backend_info(), indent=1, default=str))"

status=0
echo "== tests on CuPy and NumPy"
SOFTMAX_XP_TEST_BACKENDS=cupy,numpy timeout 180 \
    python -m pytest -q -p no:cacheprovider --junitxml="$OUT/pytest.xml" || status=$?

echo "== GPU benchmark"
timeout 270 python -m benchmarks --gpu --out "$OUT/gpu-latest.json" | tee "$OUT/gpu-benchmark.md"
bench=${PIPESTATUS[0]}
[ "$bench" -eq 0 ] || status=$bench

echo "== done (exit $status); outputs in $OUT"
exit "$status"
