#!/bin/sh
# tests/downstream.sh MAKE - builds a program against the installed library,
# as a user or a distribution package would.
#
# Installs into a scratch DESTDIR with PREFIX=/usr, then builds a small
# external program that includes only <fmnn.h>, by both routes a user has:
#  - pkg-config: every flag from the installed fmnn.pc
#    (PKG_CONFIG_SYSROOT_DIR maps /usr to the scratch tree), linked against
#    libfmnn.so.N, and against libfmnn.a with `pkg-config --static`, which
#    must bring in the private dependencies (OpenBLAS, zlib, OpenMP, libm);
#  - CMake: find_package(fmnn 0.M REQUIRED) through the installed
#    fmnnConfig.cmake, linked to fmnn::fmnn and to fmnn::fmnn_static;
#    find_package must refuse the versions this one does not satisfy; and
#    a shared build against a multiarch install (LIBDIR=/usr/lib/TRIPLET).
# All four programs must run.  Finally `make uninstall` must remove every
# file that `make install` put there.  This catches an uninstalled header,
# a wrong fmnn.pc or CMake file, a missing private dependency and a broken
# soname link, none of which the in-tree tests can see.
set -eu

make=${1:-make}
cc=${CC:-cc}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
lib=$tmp/usr/lib
define() { sed -n "s/^#define $1 \([0-9][0-9]*\).*/\1/p" include/fmnn/version.h; }
soname=libfmnn.so.$(define FMNN_SOVERSION)
major=$(define FMNN_VERSION_MAJOR)
minor=$(define FMNN_VERSION_MINOR)

fail() { echo "downstream: FAIL: $*" >&2; exit 1; }
# Runs a command quietly, showing its output only if it fails.
quiet() { "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; return 1; }; }
# Checks that PROGRAM needs $soname, and finds it in the scratch tree.
needs_installed_so() { # PROGRAM ROUTE
    readelf -d "$1" | grep "(NEEDED)" | grep -qF "[$soname]" ||
        fail "the $2 shared build does not need $soname"
    LD_LIBRARY_PATH=$lib ldd "$1" | grep -qF "$soname => $lib/$soname" ||
        fail "the $2 shared build does not resolve $soname to the installed copy"
}
# Checks that PROGRAM does not need libfmnn.so: the archive is linked in.
needs_no_so() { # PROGRAM ROUTE
    if readelf -d "$1" | grep -q 'NEEDED.*libfmnn'; then
        fail "the $2 static build still needs libfmnn.so"
    fi
}

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
# LIBDIR too, in case the environment sets it: the checks expect /usr/lib.
quiet $make install DESTDIR="$tmp" PREFIX=/usr LIBDIR=/usr/lib || fail "make install"
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
needs_installed_so "$tmp/prog" pkg-config
version=$(LD_LIBRARY_PATH=$lib "$tmp/prog") ||
    fail "the shared build fails"
echo "downstream: pkg-config shared ok ($soname, version $version)"

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
needs_no_so "$tmp/prog-static" pkg-config
version=$("$tmp/prog-static") || fail "the static build fails"
echo "downstream: pkg-config static ok (libfmnn.a, version $version)"

# ---- CMake ------------------------------------------------------------
command -v cmake >/dev/null 2>&1 || fail "cmake is missing (make deps installs it)"
mkdir "$tmp/cmake"
cat > "$tmp/cmake/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.13)
project(fmnn_consumer C)
find_package(fmnn ${WANT} REQUIRED)
add_executable(prog_shared ../prog.c)
target_link_libraries(prog_shared PRIVATE fmnn::fmnn)
if(NOT SHARED_ONLY)
  add_executable(prog_static ../prog.c)
  target_link_libraries(prog_static PRIVATE fmnn::fmnn_static)
endif()
set(CMAKE_C_STANDARD 11)
add_compile_options(-Wall -Wextra -Werror)
CMAKE
# CMake wants the compiler alone: words before it (ccache, env) become
# its launcher.
compiler=${cc##* }
launcher=$(echo "${cc% *}" | tr ' ' ';')
[ "$compiler" = "$cc" ] && launcher=
# Configures the consumer against the install under PREFIX, asking for
# version WANT, into build-NAME.
cmake_configure() { # NAME PREFIX WANT [CMAKE OPTIONS...]
    name=$1 prefix=$2 want=$3
    shift 3
    cmake -S "$tmp/cmake" -B "$tmp/cmake/build-$name" -DWANT="$want" \
          -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$compiler" \
          -DCMAKE_C_COMPILER_LAUNCHER="$launcher" "$@"
}
# Checks that the configure of build-NAME used the fmnnConfig.cmake of
# PREFIX, not one that CMAKE_PREFIX_PATH in the environment led to.
found_in() { # NAME PREFIX
    dir=$(sed -n 's/^fmnn_DIR:PATH=//p' "$tmp/cmake/build-$1/CMakeCache.txt")
    [ "$dir" = "$2/$3" ] || fail "CMake found fmnn in $dir, not in $2/$3"
}
wanted=$major.$minor
quiet cmake_configure main "$tmp/usr" "$wanted" ||
    fail "CMake: find_package(fmnn $wanted) fails"
found_in main "$tmp/usr" lib/cmake/fmnn
quiet cmake --build "$tmp/cmake/build-main" ||
    fail "CMake: cannot build against fmnn::fmnn and fmnn::fmnn_static"
needs_installed_so "$tmp/cmake/build-main/prog_shared" CMake
needs_no_so "$tmp/cmake/build-main/prog_static" CMake
# CMake's build RPATH finds the installed library with no LD_LIBRARY_PATH.
version=$("$tmp/cmake/build-main/prog_shared") || fail "the CMake shared build fails"
[ "$("$tmp/cmake/build-main/prog_static")" = "$version" ] || fail "the CMake static build fails"
# Newer versions are refused, and so are older ones of another ABI: while
# the major version is 0, each minor version is one.
refused="$major.$((minor + 1)) $((major + 1)).0"
if [ "$major" -gt 0 ]; then
    refused="$refused $((major - 1)).0"
elif [ "$minor" -gt 0 ]; then
    refused="$refused 0.$((minor - 1))"
fi
for other in $refused; do
    if cmake_configure "$other" "$tmp/usr" "$other" > "$tmp/log" 2>&1; then
        fail "CMake: find_package(fmnn $other) accepts version $version"
    fi
    grep -q 'considered but not accepted' "$tmp/log" ||
        { cat "$tmp/log" >&2; fail "CMake: find_package(fmnn $other) fails for another reason"; }
done
echo "downstream: CMake ok (fmnn::fmnn and fmnn::fmnn_static, version $version; refuses $refused)"

# A multiarch LIBDIR, as Debian's packages use: the package files find the
# library and the headers from a deeper folder.
multiarch=$($cc -print-multiarch 2>/dev/null || true)
libdir=/usr/lib/${multiarch:-multiarch}
quiet $make install DESTDIR="$tmp/multiarch" PREFIX=/usr LIBDIR="$libdir" ||
    fail "make install LIBDIR=$libdir"
quiet cmake_configure multiarch "$tmp/multiarch/usr" "$wanted" -DSHARED_ONLY=ON ||
    fail "CMake: find_package(fmnn) fails with LIBDIR=$libdir"
found_in multiarch "$tmp/multiarch/usr" "${libdir#/usr/}/cmake/fmnn"
quiet cmake --build "$tmp/cmake/build-multiarch" ||
    fail "CMake: cannot build against fmnn::fmnn with LIBDIR=$libdir"
"$tmp/cmake/build-multiarch/prog_shared" > /dev/null ||
    fail "the CMake shared build fails with LIBDIR=$libdir"
rm -rf "$tmp/multiarch"
echo "downstream: CMake ok with LIBDIR=$libdir"

# ---- uninstall ------------------------------------------------------
# shellcheck disable=SC2086
quiet $make uninstall DESTDIR="$tmp" PREFIX=/usr LIBDIR=/usr/lib || fail "make uninstall"
left=$(find "$tmp/usr" ! -type d)
[ -z "$left" ] || fail "make uninstall left behind: $left"
echo "downstream: uninstall ok (nothing left)"
