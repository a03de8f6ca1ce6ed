#!/bin/sh
# tests/mpi/run.sh BUILD - libfmnn_mpi's tests under mpirun with 2 and 3
# ranks on this machine (tests/mpi/mpirun.sh has the flags).
set -eu
b=${1:-build}
here=$(dirname "$0")
failed=0
for n in 2 3; do
    start=$(date +%s)
    sh "$here/mpirun.sh" -np $n "$b/tests/mpi/check_mpi" || failed=1
    echo "   ($(( $(date +%s) - start )) s with $n ranks)"
done
exit $failed
