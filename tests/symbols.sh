#!/bin/sh
# tests/symbols.sh SOFILE... - checks the ABI surface of the shared libraries.
#
# The libraries are built with -fvisibility=hidden and export only what is
# marked FMNN_API, so every symbol a library defines in its dynamic table
# must carry its prefix: fmnn_ for libfmnn.so, fmnn_mpi_ for
# libfmnn_mpi.so (libNAME.so: NAME_).  Anything else (a helper, a kernel,
# a copy of a dependency, libfmnn's own functions) would leak into every
# program's namespace and become ABI.  Also checks that the soname is
# libNAME.so.N, N being FMNN_SOVERSION of include/fmnn/version.h, and that
# each library exports at least one symbol of its prefix (so that the
# check can fail).
set -eu

[ $# -gt 0 ] || { echo "usage: tests/symbols.sh SOFILE..." >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "symbols: FAIL: $*" >&2; exit 1; }

soversion=$(sed -n 's/^#define FMNN_SOVERSION \([0-9][0-9]*\).*/\1/p' \
        "$root/include/fmnn/version.h")
[ -n "$soversion" ] || fail "no FMNN_SOVERSION in include/fmnn/version.h"

for so in "$@"; do
    [ -f "$so" ] || fail "$so: no such file"
    lib=$(basename "$so")
    lib=${lib%%.so*}
    prefix=${lib#lib}_

    # Type A symbols are version-script nodes (FMNN_0.1), not code or data.
    syms=$(nm -D --defined-only "$so") || fail "nm could not read $so"
    names=$(printf '%s\n' "$syms" | awk 'NF >= 2 && $(NF-1) != "A" { print $NF }')
    count=$(printf '%s\n' "$names" | grep -c "^$prefix" || true)
    # fmnn__ (two underscores) marks the library's internal functions.
    bad=$(printf '%s\n' "$names" | grep -v -e "^$prefix" -e '^$' || true)
    bad="$bad$(printf '%s\n' "$names" | grep -e '^fmnn__' || true)"
    if [ -n "$bad" ]; then
        echo "symbols: FAIL: $so exports symbols without the $prefix prefix:" >&2
        printf '%s\n' "$bad" | sed 's/^/  /' >&2
        exit 1
    fi
    [ "$count" -gt 0 ] || fail "$so exports no $prefix symbol at all"

    soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
    [ "$soname" = "$lib.so.$soversion" ] ||
        fail "soname is '${soname:-none}', expected $lib.so.$soversion"

    echo "symbols: $count exported, all $prefix; soname $soname"
done
