#!/bin/sh
# tests/headers.sh CC - checks that every public header stands alone.
#
# Each of include/fmnn.h and include/fmnn/*.h is included on its own (twice,
# to exercise its include guard) in a tiny translation unit and compiled
# as strict C11 and as C++11 with every warning an error.  This catches a
# header that relies on another being included first, that is not valid
# C++ (missing extern "C", C-only syntax) or that warns in users' builds.
set -eu

cc=${1:-cc}
cxx=${CXX:-c++}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

if ! command -v "${cxx%% *}" >/dev/null 2>&1; then
    echo "headers: no C++ compiler ($cxx): skipping the C++ checks"
    cxx=
fi

n=0 failed=0
for h in include/fmnn.h include/fmnn/*.h; do
    name=${h#include/}
    # fmnn/mpi.h is libfmnn_mpi's: it includes <mpi.h>, taken as a system
    # header (Open MPI's C++ bindings warn under -Wextra on their own).
    extra=
    if [ "$name" = fmnn/mpi.h ]; then
        if ! pkg-config --exists mpi-c 2>/dev/null; then
            echo "headers: skipping fmnn/mpi.h: MPI is not installed"
            continue
        fi
        extra=$(pkg-config --cflags-only-I mpi-c | sed 's/-I/-isystem /g')
    fi
    printf '#include <%s>\n#include <%s>\nint fmnn_header_check;\n' \
        "$name" "$name" > "$tmp/tu.c"
    cp "$tmp/tu.c" "$tmp/tu.cpp"
    # $cc and $cxx may hold several words ("ccache gcc"): split them.
    # shellcheck disable=SC2086
    $cc -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude $extra -fsyntax-only \
        "$tmp/tu.c" || { echo "headers: FAIL: $name as C11" >&2; failed=1; }
    if [ -n "$cxx" ]; then
        # shellcheck disable=SC2086
        $cxx -std=c++11 -Wall -Wextra -Wpedantic -Werror -Iinclude $extra \
            -fsyntax-only "$tmp/tu.cpp" ||
            { echo "headers: FAIL: $name as C++11" >&2; failed=1; }
    fi
    n=$((n + 1))
done

[ "$n" -gt 1 ] || { echo "headers: FAIL: no public headers found" >&2; exit 1; }
[ "$failed" -eq 0 ] || exit 1
echo "headers: $n headers compile alone as C11${cxx:+ and C++11}"
