#!/bin/sh
# tests/onnx/run.sh [DRIVER] - `make check-onnx`: libfmnn's ONNX export and
# import against onnxruntime, onnx.checker and PyTorch.
#
#  1. Installs what is missing, as root: python3-onnx and python3-torch for
#     /usr/bin/python3, nodejs (and npm where node came without it), and
#     onnxruntime-node@1.30.0 (its CPU build ships in the npm package;
#     --ignore-scripts skips the optional CUDA download) into
#     ${ONNX_CACHE:-build/onnx/cache}.  When an install fails (no network),
#     prints "check-onnx: skipped: <why>" and exits 0.
#  2. torch_models.py exports torch's models; DRIVER (onnx_driver) exports
#     libfmnn's, checks their round trip, and imports and fine-tunes torch's.
#  3. onnx.checker (check_models.py) on every exported file, and on
#     libfmnn's what fmnn/onnx.h promises of them; onnxruntime
#     (ort_run.js) on every model; compare.py against the references.
#
# Without DRIVER only torch's side runs (checker, onnxruntime against
# torch).  Every step prints result rows (model, check, elementwise and
# normwise relative error, PASS or FAIL, a note; compare.py defines the
# errors), collected in ${ONNX_OUT:-build/onnx/out}/results.tsv and
# printed as a table.  Exits 1 on any FAIL.
#
# Also from the environment: ONNX_PYTHON (/usr/bin/python3, Debian's, whose
# packages are installed), FMNN_DATA (the Fashion-MNIST folder).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
driver=${1:-}
python=${ONNX_PYTHON:-/usr/bin/python3}
data=${FMNN_DATA:-/usr/share/datasets/fashion-mnist}
out=${ONNX_OUT:-build/onnx/out}
ort_version=1.30.0

skip() { echo "check-onnx: skipped: $*"; exit 0; }

# ---- 1. what the check needs -------------------------------------------
mkdir -p "${ONNX_CACHE:-build/onnx/cache}" "$out"
cache=$(cd "${ONNX_CACHE:-build/onnx/cache}" && pwd)
log=$out/install.log
: >"$log"
# The Debian packages missing, as " python3-onnx nodejs".  (Node.js builds
# that bundle npm conflict with Debian's npm package: npm only without it.)
missing_packages() {
    "$python" -c 'import onnx' 2>/dev/null || printf ' python3-onnx'
    "$python" -c 'import torch' 2>/dev/null || printf ' python3-torch'
    if ! command -v node >/dev/null 2>&1; then printf ' nodejs'
    elif ! command -v npm >/dev/null 2>&1; then printf ' npm'; fi
}
install_packages() {
    echo "check-onnx: installing $*"
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"; } >>"$log" 2>&1 ||
        skip "apt-get install $* failed (no network?), see $log"
}
missing=$(missing_packages)
if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || skip "needs$missing (apt-get install them as root)"
    # shellcheck disable=SC2086 # one word per package
    install_packages $missing
    # Debian's nodejs comes without npm: a second round installs it.
    missing=$(missing_packages)
    [ "$missing" != " npm" ] || { install_packages npm; missing=$(missing_packages); }
    [ -z "$missing" ] || skip "still missing after apt-get install:$missing, see $log"
fi
installed=$(NODE_PATH=$cache/node_modules node -p "require('onnxruntime-node/package.json').version" 2>/dev/null) ||
    installed=none
if [ "$installed" != "$ort_version" ]; then
    echo "check-onnx: installing onnxruntime-node@$ort_version into $cache"
    (cd "$cache" && npm install --no-audit --no-fund --ignore-scripts "onnxruntime-node@$ort_version") >>"$log" 2>&1 ||
        skip "npm install onnxruntime-node@$ort_version failed (no network?), see $log"
fi
[ -f "$data/t10k-images-idx3-ubyte.gz" ] || skip "no Fashion-MNIST in $data (make deps installs it)"

# ---- 2. the models ------------------------------------------------------
rm -rf "$out/torch" "$out/fmnn"
mkdir -p "$out/torch" "$out/fmnn"
results=$out/results.tsv
: >"$results"
fail_row() { printf '%s\t%s\t\t\tFAIL\t%s\n' "$1" "$2" "$3" >>"$results"; }

"$python" "$here/torch_models.py" --data "$data" "$out/torch" ||
    fail_row "(torch)" "torch_models.py" "exited with $?"
if [ -n "$driver" ]; then
    FMNN_DATA=$data "$driver" export "$out/fmnn" >>"$results" || fail_row "(fmnn)" "onnx_driver export" "exited with $?"
    FMNN_DATA=$data "$driver" import "$out/torch" >>"$results" || fail_row "(torch)" "onnx_driver import" "exited with $?"
else
    echo "check-onnx: no driver given: torch's side only"
fi

# ---- 3. checker, onnxruntime, comparisons ------------------------------
for dir in "$out/torch" "$out/fmnn"; do
    [ -f "$dir/manifest" ] || continue
    exported=; [ "$dir" = "$out/torch" ] || exported=--exported
    # shellcheck disable=SC2046,SC2086 # one word per file (the names have no spaces), none for no flag
    "$python" "$here/check_models.py" $exported $(sed "s|^\([^ ]*\) .*|$dir/\1.onnx|" "$dir/manifest") >>"$results"
    while read -r name in_shape _; do
        NODE_PATH=$cache/node_modules node "$here/ort_run.js" "$dir/$name.onnx" "$dir/$name.input.f32" \
            "$in_shape" "$dir/$name.ort.f32" || true  # compare.py reports the missing output
    done <"$dir/manifest"
done
compare() { "$python" "$here/compare.py" "$@" >>"$results"; }
[ -f "$out/torch/manifest" ] && compare "ort vs torch" "$out/torch" ort torch
if [ -n "$driver" ]; then
    [ -f "$out/torch/manifest" ] && compare "import vs torch" "$out/torch" fmnn torch
    [ -f "$out/fmnn/manifest" ] && compare "ort vs fmnn" "$out/fmnn" ort fmnn
fi

# ---- the table ----------------------------------------------------------
echo
echo "Relative errors: elementwise max|a-b|/max(|b|,1e-6); normwise, which decides (<= 1e-5),"
echo "max over samples of ||a-b||_inf/||b||_inf, b the reference (see tests/onnx/compare.py)."
awk -F '\t' 'BEGIN { printf "%-20s %-18s %-11s %-11s %-7s %s\n", "model", "check", "elementwise", "normwise", "result", "note" }
    { printf "%-20s %-18s %-11s %-11s %-7s %s\n", $1, $2, $3, $4, $5, $6 }' "$results"
passed=$(awk -F '\t' '$5 == "PASS"' "$results" | wc -l)
failed=$(awk -F '\t' '$5 != "PASS"' "$results" | wc -l)
echo "check-onnx: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
