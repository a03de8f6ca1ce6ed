#!/bin/sh
# tests/downstream.sh MAKE - builds a program against the installed library,
# as a user or a distribution package would.
#
# Installs into a scratch DESTDIR with PREFIX=/usr, then compiles a small
# external program that includes only <fmnn.h> and takes every flag from
# the installed fmnn.pc (PKG_CONFIG_SYSROOT_DIR maps /usr to the scratch
# tree).  It is linked twice: against libfmnn.so.0, and against libfmnn.a
# with `pkg-config --static` (which must bring in the private dependencies:
# OpenBLAS, zlib, OpenMP, libm).  Both must run.  Finally `make uninstall`
# must remove every file that `make install` put there.  This catches an
# uninstalled header, a wrong fmnn.pc, a missing Libs.private and a broken
# soname link, none of which the in-tree tests can see.
set -eu

make=${1:-make}
cc=${CC:-cc}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
lib=$tmp/usr/lib

fail() { echo "downstream: FAIL: $*" >&2; exit 1; }
# Runs a command quietly, showing its output only if it fails.
quiet() { "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; return 1; }; }

cat > "$tmp/prog.c" <<'PROG'
#include <stdio.h>
#include <string.h>
#include <fmnn.h>

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "prog.c:%d: %s failed (%s)\n", __LINE__, #cond, \
            fmnn_last_error()); \
    return 1; } } while (0)

int main(void)
{
    fmnn_tensor *x = NULL, *y = NULL;
    fmnn_model *m = NULL;
    float *data;
    int i, j;

    printf("%s\n", fmnn_version_string());
    CHECK(strcmp(fmnn_version_string(), FMNN_VERSION_STRING) == 0);

    CHECK(fmnn_tensor_new(&x, 2, (const int[]){2, 4}) == FMNN_OK);
    CHECK(fmnn_tensor_size(x) == 8);
    data = fmnn_tensor_data(x);
    for (i = 0; i < 8; i++)
        data[i] = 0.25f * (float)i - 1.0f;

    CHECK(fmnn_model_new(&m, 1, (const int[]){4}) == FMNN_OK);
    CHECK(fmnn_model_add(m, fmnn_dense(3, NULL)) == FMNN_OK);
    CHECK(fmnn_model_add(m, fmnn_activation(FMNN_SOFTMAX)) == FMNN_OK);
    CHECK(fmnn_model_compile(m, FMNN_LOSS_CATEGORICAL_CROSSENTROPY, NULL, 1)
          == FMNN_OK);
    CHECK(fmnn_model_predict(m, x, 0, &y) == FMNN_OK);
    CHECK(fmnn_tensor_rank(y) == 2);
    CHECK(fmnn_tensor_dim(y, 0) == 2 && fmnn_tensor_dim(y, 1) == 3);
    for (i = 0; i < 2; i++) {
        const float *p = fmnn_tensor_const_data(y) + 3 * i;
        float sum = 0.0f;
        for (j = 0; j < 3; j++) {
            CHECK(p[j] >= 0.0f && p[j] <= 1.0f);
            sum += p[j];
        }
        CHECK(sum > 0.9999f && sum < 1.0001f);
    }

    fmnn_tensor_free(y);
    fmnn_tensor_free(x);
    fmnn_model_free(m);
    return 0;
}
PROG

# ---- install --------------------------------------------------------
# shellcheck disable=SC2086  # $make may be several words
quiet $make install DESTDIR="$tmp" PREFIX=/usr || fail "make install"
pc=$lib/pkgconfig/fmnn.pc
[ -f "$pc" ] || fail "make install did not install $pc"
grep -qx 'libdir=/usr/lib' "$pc" ||
    fail "installed fmnn.pc does not say libdir=/usr/lib: $(grep '^libdir=' "$pc")"
echo "downstream: install ok ($(find "$tmp/usr" ! -type d | wc -l) files)"

export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp"
cflags=$(pkg-config --cflags fmnn) || fail "pkg-config --cflags fmnn"
libs=$(pkg-config --libs fmnn) || fail "pkg-config --libs fmnn"
slibs=$(pkg-config --static --libs fmnn) || fail "pkg-config --static --libs"
cflags="-std=c11 -Wall -Wextra -Werror $cflags"

# ---- shared ---------------------------------------------------------
# shellcheck disable=SC2086
quiet $cc $cflags -o "$tmp/prog" "$tmp/prog.c" $libs ||
    fail "cannot build against the shared library"
readelf -d "$tmp/prog" | grep -q 'NEEDED.*\[libfmnn\.so\.0\]' ||
    fail "the shared build does not need libfmnn.so.0"
LD_LIBRARY_PATH=$lib ldd "$tmp/prog" |
    grep -qF "libfmnn.so.0 => $lib/libfmnn.so.0" ||
    fail "libfmnn.so.0 does not resolve to the installed copy"
version=$(LD_LIBRARY_PATH=$lib "$tmp/prog") ||
    fail "the shared build fails"
echo "downstream: shared ok (libfmnn.so.0, version $version)"

# ---- static ---------------------------------------------------------
# libfmnn.a and libfmnn.so sit side by side: force the archive for -lfmnn
# only, keeping the dependencies (OpenBLAS, libc...) as they come.
static=
for f in $slibs; do
    [ "$f" = -lfmnn ] && f="-Wl,-Bstatic -lfmnn -Wl,-Bdynamic"
    static="$static $f"
done
# shellcheck disable=SC2086
quiet $cc $cflags -o "$tmp/prog-static" "$tmp/prog.c" $static ||
    fail "cannot build against the static library with --static flags"
if readelf -d "$tmp/prog-static" | grep -q 'NEEDED.*libfmnn'; then
    fail "the static build still needs libfmnn.so"
fi
version=$("$tmp/prog-static") || fail "the static build fails"
echo "downstream: static ok (libfmnn.a, version $version)"

# ---- uninstall ------------------------------------------------------
# shellcheck disable=SC2086
quiet $make uninstall DESTDIR="$tmp" PREFIX=/usr || fail "make uninstall"
left=$(find "$tmp/usr" ! -type d)
[ -z "$left" ] || fail "make uninstall left behind: $left"
echo "downstream: uninstall ok (nothing left)"
