#!/bin/sh
# tests/convert.sh [BUILD] - build/examples/fmnn_convert end to end: a
# saved model to ONNX and back, the exit statuses of a usage error and of
# an unreadable file, and --help.
set -eu

cd "$(dirname "$0")/.."
convert=${1:-build}/examples/fmnn_convert
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

failed=0
fail() { echo "convert: FAIL: $*" >&2; failed=1; }
# expect STATUS COMMAND...: runs the command quietly, checks its status.
expect() {
    want=$1; shift
    status=0
    "$@" >"$tmp/out" 2>&1 || status=$?
    [ "$status" -eq "$want" ] || { cat "$tmp/out" >&2; fail "'$*' exits $status, not $want"; }
}

expect 0 "$convert" --help
grep -q '^Usage: fmnn_convert' "$tmp/out" || fail "--help prints no usage"
expect 0 "$convert" tests/format1/small.fmnn "$tmp/small.onnx"
grep -q 'Total params' "$tmp/out" || fail "no summary of the converted model"
expect 0 "$convert" --quiet "$tmp/small.onnx" "$tmp/back.fmnn"
[ ! -s "$tmp/out" ] || fail "--quiet still prints"
expect 0 "$convert" -q --loss mse tests/onnx/data/torch_seq.onnx "$tmp/torch.fmnn"
expect 2 "$convert" tests/format1/small.fmnn "$tmp/small.txt"
expect 2 "$convert" --loss nonsense "$tmp/small.onnx" "$tmp/x.fmnn"
expect 1 "$convert" "$tmp/missing.onnx" "$tmp/x.fmnn"
grep -q 'missing.onnx' "$tmp/out" || fail "the error does not name the file"

[ "$failed" -eq 0 ] || exit 1
echo "convert: ok"
