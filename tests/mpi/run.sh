#!/bin/sh
# tests/mpi/run.sh BUILD - libfmnn_mpi's tests under mpirun with 2 and 3
# ranks, then a small distributed study, on this machine
# (tests/mpi/mpirun.sh has the flags).
set -eu
b=${1:-build}
here=$(dirname "$0")
run() { sh "$here/mpirun.sh" "$@"; }
failed=0
for n in 2 3; do
    start=$(date +%s)
    run -np $n "$b/tests/mpi/check_mpi" || failed=1
    echo "   ($(( $(date +%s) - start )) s with $n ranks)"
done

# The study on 2 ranks, small: it ends with the reports and no backup;
# without its data, each rank exits with 1 (each writes its status to a
# file) instead of waiting for the other.
data=${FMNN_DATA:-/usr/share/datasets/fashion-mnist}
study=$b/examples/fashion_experiments_mpi
if [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
    echo "mpi: the study: SKIP: no Fashion-MNIST in $data (make deps installs it)"
    exit $failed
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
if ! run -np 2 "$study" --data "$data" --epochs 1 --train-limit 300 --test-limit 100 --models base \
        --threads 1 --quiet --out "$tmp/out" >"$tmp/log" 2>&1 ||
   [ ! -f "$tmp/out/report.html" ] || [ -e "$tmp/out/.backup" ]; then
    cat "$tmp/log"; echo "mpi: FAIL: the study on 2 ranks"; failed=1
fi
run -np 2 sh -c '"$0" --data "$1/none" --out "$1/none-out"; echo $? >"$1/status.$OMPI_COMM_WORLD_RANK"' \
    "$study" "$tmp" >"$tmp/log" 2>&1 || true
if [ "$(cat "$tmp/status.0" "$tmp/status.1" 2>/dev/null)" != "$(printf '1\n1')" ] ||
   [ "$(grep -c "no such file" "$tmp/log")" -ne 1 ]; then
    cat "$tmp/log"; echo "mpi: FAIL: the study without its data did not fail on every rank"; failed=1
fi
echo "   ($(( $(date +%s) - start )) s for the study on 2 ranks)"
exit $failed
