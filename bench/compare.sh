#!/bin/sh
# bench/compare.sh BUILD REFS [THREADS] - libfmnn next to the peers, back to
# back on this machine (make bench-compare).
#
# Runs build/bench/fmnn_bench, then each reference of REFS (the folder of
# torch_ref.py and ort_ref.sh): PyTorch fp32, fp32 with channels_last, bf16
# autocast with channels_last, and onnxruntime's CPU build.  Each prints
# train_images_per_s, infer_images_per_s and latency_ms_batch1 (onnxruntime
# the last two only).  A table then gives every figure and our ratio to it:
# throughput ours / theirs, latency theirs / ours, so > 1 means ahead.  A
# reference that cannot run (no PyTorch, no npm) is listed as missing.
# The machine is shared: run it twice and quote both.
set -eu
build=${1:-build}
refs=${2:-../shared/bench}
threads=${3:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

# run NAME COMMAND...: its output in $tmp/NAME, or a note that it failed.
run() {
    name=$1
    shift
    echo "== $name: $*" >&2
    if ! "$@" >"$tmp/$name" 2>"$tmp/$name.err"; then
        echo "   failed (left out): $(tail -n 1 "$tmp/$name.err")" >&2
        : >"$tmp/$name"
    fi
}

run ours "$build/bench/fmnn_bench" --threads "$threads"
if [ -f "$refs/torch_ref.py" ]; then
    run torch /usr/bin/python3 "$refs/torch_ref.py" --threads "$threads"
    run torch_cl /usr/bin/python3 "$refs/torch_ref.py" --threads "$threads" --channels-last
    run torch_bf16 /usr/bin/python3 "$refs/torch_ref.py" --threads "$threads" --channels-last --bf16
else
    echo "== PyTorch: $refs/torch_ref.py is missing" >&2
fi
if [ -f "$refs/ort_ref.sh" ]; then
    run ort sh "$refs/ort_ref.sh" --threads "$threads"
else
    echo "== onnxruntime: $refs/ort_ref.sh is missing" >&2
fi

# value FILE KEY: the figure after KEY, or empty.
value() { awk -v k="$2" '$1 == k { print $2; exit }' "$tmp/$1" 2>/dev/null; }

echo
echo "$threads threads, $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
printf '%-40s %20s %20s %20s\n' "" "train img/s" "infer img/s" "latency ms"
for name in ours torch torch_cl torch_bf16 ort; do
    case $name in
    ours) label="libfmnn fp32" ;;
    torch) label="PyTorch fp32" ;;
    torch_cl) label="PyTorch fp32 channels_last" ;;
    torch_bf16) label="PyTorch bf16 autocast + channels_last" ;;
    ort) label="onnxruntime fp32" ;;
    esac
    [ -s "$tmp/$name" ] || { printf '%-40s %20s\n' "$label" "(missing)"; continue; }
    line=$(printf '%-40s' "$label")
    for key in train_images_per_s infer_images_per_s latency_ms_batch1; do
        theirs=$(value $name $key)
        mine=$(value ours $key)
        if [ -z "$theirs" ]; then
            cell="-"
        elif [ $name = ours ] || [ -z "$mine" ]; then
            cell=$theirs
        elif [ $key = latency_ms_batch1 ]; then
            cell=$(awk -v a="$theirs" -v b="$mine" 'BEGIN { printf "%s (%.2fx)", a, a / b }')
        else
            cell=$(awk -v a="$mine" -v b="$theirs" 'BEGIN { printf "%s (%.2fx)", b, a / b }')
        fi
        line="$line $(printf '%20s' "$cell")"
    done
    echo "$line"
done
echo "(x: ours / theirs for throughput, theirs / ours for latency; > 1 means libfmnn is ahead)"
