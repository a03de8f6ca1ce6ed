#!/bin/sh
# tests/symbols.sh SOFILE - checks the ABI surface of the shared library.
#
# The library is built with -fvisibility=hidden and exports only what is
# marked FMNN_API, so every symbol it defines in its dynamic table must
# carry the fmnn_ prefix: anything else (a helper, a kernel, a copy of a
# dependency) would leak into every program's namespace and become ABI.
# Also checks that the soname is libfmnn.so.N, N being FMNN_SOVERSION of
# include/fmnn/version.h, and that the library exports at least one fmnn_
# symbol (so that the check can fail).
set -eu

so=${1:?usage: tests/symbols.sh SOFILE}
root=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "symbols: FAIL: $*" >&2; exit 1; }

[ -f "$so" ] || fail "$so: no such file"

# Type A symbols are version-script nodes (FMNN_0.1), not code or data.
syms=$(nm -D --defined-only "$so") || fail "nm could not read $so"
names=$(printf '%s\n' "$syms" | awk 'NF >= 2 && $(NF-1) != "A" { print $NF }')
count=$(printf '%s\n' "$names" | grep -c '^fmnn_' || true)
# fmnn__ (two underscores) marks the library's internal functions.
bad=$(printf '%s\n' "$names" | grep -v -e '^fmnn_' -e '^$' || true)
bad="$bad$(printf '%s\n' "$names" | grep -e '^fmnn__' || true)"
if [ -n "$bad" ]; then
    echo "symbols: FAIL: $so exports symbols without the fmnn_ prefix:" >&2
    printf '%s\n' "$bad" | sed 's/^/  /' >&2
    exit 1
fi
[ "$count" -gt 0 ] || fail "$so exports no fmnn_ symbol at all"

soversion=$(sed -n 's/^#define FMNN_SOVERSION \([0-9][0-9]*\).*/\1/p' \
        "$root/include/fmnn/version.h")
[ -n "$soversion" ] || fail "no FMNN_SOVERSION in include/fmnn/version.h"
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = "libfmnn.so.$soversion" ] ||
    fail "soname is '${soname:-none}', expected libfmnn.so.$soversion"

echo "symbols: $count exported, all fmnn_; soname $soname"
