#!/bin/sh
# tests/mpi/mpirun.sh MPIRUN-ARGS... - mpirun as the tests run it: any
# number of ranks on this machine (more than cores: --oversubscribe),
# each on one thread, bounded by mpirun's --timeout.  For tests/mpi/run.sh
# and tests/downstream.sh.
set -eu
# As root, Open MPI asks for --allow-run-as-root; shared memory between
# ranks goes through copies (no ptrace permission is needed).
root=
[ "$(id -u)" -ne 0 ] || root=--allow-run-as-root
OMP_NUM_THREADS=1 exec mpirun $root --oversubscribe --bind-to none --timeout 300 \
    --mca btl_vader_single_copy_mechanism none "$@"
