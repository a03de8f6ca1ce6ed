#!/bin/sh
# tests/mpi/run.sh BUILD - libfmnn_mpi's tests under mpirun with 2 and 3
# ranks on this machine (more ranks than cores: --oversubscribe), each
# rank on one thread, every run bounded by mpirun's --timeout.
set -eu
b=${1:-build}
run() {
    # As root, Open MPI asks for --allow-run-as-root; shared memory between
    # ranks goes through copies (no ptrace permission is needed).
    root=
    [ "$(id -u)" -ne 0 ] || root=--allow-run-as-root
    OMP_NUM_THREADS=1 mpirun $root --oversubscribe --bind-to none --timeout 300 \
        --mca btl_vader_single_copy_mechanism none "$@"
}
failed=0
for n in 2 3; do
    start=$(date +%s)
    run -np $n "$b/tests/mpi/check_mpi" || failed=1
    echo "   ($(( $(date +%s) - start )) s with $n ranks)"
done
exit $failed
