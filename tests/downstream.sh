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
# All four programs must run.  Where make builds libfmnn_mpi (make
# mpi-enabled says 1), install must add it, <fmnn/mpi.h> and fmnn-mpi.pc,
# and a program that includes <fmnn/mpi.h> and <mpi.h> is built four ways
# too: with `pkg-config fmnn-mpi`, shared and --static, and against
# fmnn::mpi and fmnn::mpi_static (find_package(fmnn COMPONENTS mpi)); each
# must run under `mpirun -np 2`.  Without MPI that is skipped, saying so.
# Either way an install with MPI=0 must leave out every libfmnn_mpi file,
# and find_package(fmnn COMPONENTS mpi) must then fail, saying why.  Finally
# `make uninstall` must remove every file that `make install` put there.
# This catches an uninstalled header, a wrong .pc or CMake file, a missing
# private dependency and a broken soname link, none of which the in-tree
# tests can see.
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
mpi_soname=libfmnn_mpi.so.$(define FMNN_SOVERSION)
major=$(define FMNN_VERSION_MAJOR)
minor=$(define FMNN_VERSION_MINOR)
full=$major.$minor.$(define FMNN_VERSION_PATCH)

fail() { echo "downstream: FAIL: $*" >&2; exit 1; }
# Whether make (and so make install) builds libfmnn_mpi: 1 or 0.
# shellcheck disable=SC2086  # $make may be several words
mpi=$($make -s --no-print-directory mpi-enabled) || fail "make mpi-enabled"
case $mpi in 0|1) ;; *) fail "make mpi-enabled says '$mpi', not 1 or 0" ;; esac
# Runs a command quietly, showing its output only if it fails.
quiet() { "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; return 1; }; }
# Checks that PROGRAM needs SONAME ($soname), and finds it in LIBDIR
# (the scratch tree's).
needs_installed_so() { # PROGRAM ROUTE [SONAME [LIBDIR]]
    so=${3:-$soname} dir=${4:-$lib}
    readelf -d "$1" | grep "(NEEDED)" | grep -qF "[$so]" ||
        fail "the $2 shared build does not need $so"
    LD_LIBRARY_PATH=$dir ldd "$1" | grep -qF "$so => $dir/$so" ||
        fail "the $2 shared build does not resolve $so to the installed copy"
}
# Checks that PROGRAM does not need libfmnn.so: the archive is linked in.
needs_no_so() { # PROGRAM ROUTE
    if readelf -d "$1" | grep -q 'NEEDED.*libfmnn'; then
        fail "the $2 static build still needs libfmnn.so"
    fi
}
# The link flags FLAGS... with -lfmnn and -lfmnn_mpi taken from their
# archives: beside libfmnn.so, the linker prefers it even with --static
# flags.  The dependencies (OpenBLAS, MPI, libc...) stay as they come.
archives_for_fmnn() { # FLAGS...
    for f in "$@"; do
        case $f in
        -lfmnn|-lfmnn_mpi) printf ' %s' "-Wl,-Bstatic $f -Wl,-Bdynamic" ;;
        *) printf ' %s' "$f" ;;
        esac
    done
}
# Runs PROGRAM on 2 ranks, finding the shared libraries in LIBDIR if
# given: each rank must print "rank R of 2: ok".
run_mpi() { # PROGRAM ROUTE [LIBDIR]
    out=$(if [ -n "${3:-}" ]; then LD_LIBRARY_PATH=$3; export LD_LIBRARY_PATH; fi
          sh tests/mpi/mpirun.sh -np 2 "$1" 2>&1) ||
        { printf '%s\n' "$out" >&2; fail "the $2 build fails under mpirun -np 2"; }
    for r in 0 1; do
        printf '%s\n' "$out" | grep -qx "rank $r of 2: ok" ||
            { printf '%s\n' "$out" >&2; fail "rank $r of the $2 build did not finish"; }
    done
}
# The files of libfmnn_mpi that an install under the tree ROOT/usr has.
mpi_files() { # ROOT
    echo "$1/usr/lib/libfmnn_mpi.a $1/usr/lib/libfmnn_mpi.so.$full $1/usr/lib/$mpi_soname" \
         "$1/usr/lib/libfmnn_mpi.so $1/usr/lib/pkgconfig/fmnn-mpi.pc $1/usr/include/fmnn/mpi.h"
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

# The collective over MPI_COMM_WORLD: its rank and size are MPI's, and a
# sum over it adds every rank's values.
cat > "$tmp/prog_mpi.c" <<'PROG'
#include <stdio.h>
#include <mpi.h>
#include <fmnn/mpi.h>

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "prog_mpi.c:%d: %s failed (%s)\n", __LINE__, #cond, \
            fmnn_last_error()); \
    MPI_Abort(MPI_COMM_WORLD, 1); } } while (0)

int main(int argc, char **argv)
{
    fmnn_mpi *mpi = NULL;
    const fmnn_collective *c;
    int rank, size;
    float f[2];
    double d;

    CHECK(MPI_Init(&argc, &argv) == MPI_SUCCESS);
    CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank) == MPI_SUCCESS);
    CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size) == MPI_SUCCESS);
    CHECK(fmnn_mpi_new(&mpi, MPI_COMM_WORLD) == FMNN_OK);
    c = fmnn_mpi_collective(mpi);
    CHECK(c != NULL && c->version == FMNN_COLLECTIVE_VERSION);
    CHECK(c->rank == rank && c->size == size);

    f[0] = (float)(rank + 1);
    f[1] = -0.5f;
    d = 0.25 * rank;
    CHECK(c->allreduce_sum(c->context, f, 2, FMNN_COLLECTIVE_FLOAT32) == FMNN_OK);
    CHECK(c->allreduce_sum(c->context, &d, 1, FMNN_COLLECTIVE_FLOAT64) == FMNN_OK);
    CHECK(f[0] == (float)(size * (size + 1) / 2) && f[1] == -0.5f * (float)size);
    CHECK(d == 0.125 * size * (size - 1));
    /* libfmnn's side of the collective, through libfmnn_mpi. */
    CHECK(fmnn_collective_agree(c, FMNN_OK) == FMNN_OK);
    CHECK(c->barrier(c->context) == FMNN_OK);

    printf("rank %d of %d: ok\n", rank, size);
    fmnn_mpi_free(mpi);
    return MPI_Finalize() == MPI_SUCCESS ? 0 : 1;
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
if [ "$mpi" = 1 ]; then
    for f in $(mpi_files "$tmp"); do
        [ -e "$f" ] || fail "make install did not install $f (libfmnn_mpi)"
    done
fi
echo "downstream: install ok ($(find "$tmp/usr" ! -type d | wc -l) files)"

# Without MPI, none of libfmnn_mpi: <fmnn/mpi.h> would not compile.
nompi=$tmp
if [ "$mpi" = 1 ]; then
    nompi=$tmp/nompi
    # shellcheck disable=SC2086
    quiet $make MPI=0 install DESTDIR="$nompi" PREFIX=/usr LIBDIR=/usr/lib ||
        fail "make MPI=0 install"
fi
for f in $(mpi_files "$nompi"); do
    if [ -e "$f" ] || [ -L "$f" ]; then
        fail "make install without MPI installed $f"
    fi
done
echo "downstream: install without MPI ok (no libfmnn_mpi file)"

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
# shellcheck disable=SC2086
static=$(archives_for_fmnn $slibs)
# shellcheck disable=SC2086
quiet $cc $cflags -o "$tmp/prog-static" "$tmp/prog.c" $static ||
    fail "cannot build against the static library with --static flags"
needs_no_so "$tmp/prog-static" pkg-config
version=$("$tmp/prog-static") || fail "the static build fails"
echo "downstream: pkg-config static ok (libfmnn.a, version $version)"

# ---- pkg-config fmnn-mpi --------------------------------------------
# PKG_CONFIG_SYSROOT_DIR would move MPI's own folders into the scratch tree
# too, so fmnn-mpi.pc is taken from an install at its real PREFIX, which
# `make MPI=0 uninstall` must then empty: uninstall removes libfmnn_mpi
# whatever MPI is.
if [ "$mpi" = 1 ]; then
    prefix=$tmp/prefix
    # shellcheck disable=SC2086
    quiet $make install PREFIX="$prefix" LIBDIR="$prefix/lib" ||
        fail "make install PREFIX=$prefix"
    mpc() { env -u PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config "$@"; }
    requires=$(mpc --print-requires fmnn-mpi | tr '\n' ' ') ||
        fail "pkg-config --print-requires fmnn-mpi"
    [ "$requires" = "fmnn = $full mpi-c " ] ||
        fail "fmnn-mpi.pc requires '$requires', not 'fmnn = $full' and mpi-c"
    mflags="-std=c11 -Wall -Wextra -Werror $(mpc --cflags fmnn-mpi)" ||
        fail "pkg-config --cflags fmnn-mpi"
    mlibs=$(mpc --libs fmnn-mpi) || fail "pkg-config --libs fmnn-mpi"
    mslibs=$(mpc --static --libs fmnn-mpi) || fail "pkg-config --static --libs fmnn-mpi"
    # shellcheck disable=SC2086
    quiet $cc $mflags -o "$tmp/prog_mpi" "$tmp/prog_mpi.c" $mlibs ||
        fail "cannot build against libfmnn_mpi.so with pkg-config fmnn-mpi"
    needs_installed_so "$tmp/prog_mpi" "pkg-config fmnn-mpi" "$mpi_soname" "$prefix/lib"
    needs_installed_so "$tmp/prog_mpi" "pkg-config fmnn-mpi" "$soname" "$prefix/lib"
    run_mpi "$tmp/prog_mpi" "pkg-config fmnn-mpi shared" "$prefix/lib"
    # shellcheck disable=SC2086
    mstatic=$(archives_for_fmnn $mslibs)
    # shellcheck disable=SC2086
    quiet $cc $mflags -o "$tmp/prog_mpi-static" "$tmp/prog_mpi.c" $mstatic ||
        fail "cannot build against libfmnn_mpi.a with pkg-config --static fmnn-mpi"
    needs_no_so "$tmp/prog_mpi-static" "pkg-config fmnn-mpi"
    run_mpi "$tmp/prog_mpi-static" "pkg-config fmnn-mpi static"
    # shellcheck disable=SC2086
    quiet $make MPI=0 uninstall PREFIX="$prefix" LIBDIR="$prefix/lib" ||
        fail "make MPI=0 uninstall PREFIX=$prefix"
    left=$(find "$prefix" ! -type d)
    [ -z "$left" ] || fail "make MPI=0 uninstall left behind: $left"
    echo "downstream: pkg-config fmnn-mpi ok (shared and static, 2 ranks; MPI=0 uninstall empties it)"
else
    echo "downstream: libfmnn_mpi skipped: MPI is off (not installed, or MPI=0; make deps installs libopenmpi-dev and openmpi-bin)"
fi

# ---- CMake ------------------------------------------------------------
command -v cmake >/dev/null 2>&1 || fail "cmake is missing (make deps installs it)"
mkdir "$tmp/cmake"
# The flags come first: targets take them when they are added.
cat > "$tmp/cmake/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.13)
project(fmnn_consumer C)
set(CMAKE_C_STANDARD 11)
add_compile_options(-Wall -Wextra -Werror)
if(WITH_MPI)
  find_package(fmnn ${WANT} REQUIRED COMPONENTS mpi)
else()
  find_package(fmnn ${WANT} REQUIRED)
endif()
add_executable(prog_shared ../prog.c)
target_link_libraries(prog_shared PRIVATE fmnn::fmnn)
if(NOT SHARED_ONLY)
  add_executable(prog_static ../prog.c)
  target_link_libraries(prog_static PRIVATE fmnn::fmnn_static)
endif()
if(WITH_MPI)
  add_executable(prog_mpi_shared ../prog_mpi.c)
  target_link_libraries(prog_mpi_shared PRIVATE fmnn::mpi)
  add_executable(prog_mpi_static ../prog_mpi.c)
  target_link_libraries(prog_mpi_static PRIVATE fmnn::mpi_static)
endif()
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
with_mpi=OFF components=
[ "$mpi" = 0 ] || with_mpi=ON components=" COMPONENTS mpi"
quiet cmake_configure main "$tmp/usr" "$wanted" -DWITH_MPI=$with_mpi ||
    fail "CMake: find_package(fmnn $wanted$components) fails"
found_in main "$tmp/usr" lib/cmake/fmnn
quiet cmake --build "$tmp/cmake/build-main" ||
    fail "CMake: cannot build against fmnn::fmnn and fmnn::fmnn_static${components:+, fmnn::mpi and fmnn::mpi_static}"
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
if [ "$mpi" = 1 ]; then
    needs_installed_so "$tmp/cmake/build-main/prog_mpi_shared" "CMake fmnn::mpi" "$mpi_soname"
    needs_no_so "$tmp/cmake/build-main/prog_mpi_static" "CMake fmnn::mpi_static"
    run_mpi "$tmp/cmake/build-main/prog_mpi_shared" "CMake fmnn::mpi"
    run_mpi "$tmp/cmake/build-main/prog_mpi_static" "CMake fmnn::mpi_static"
    echo "downstream: CMake ok (fmnn::mpi and fmnn::mpi_static, 2 ranks)"
fi
# Without libfmnn_mpi, the component mpi fails find_package, saying why.
if cmake_configure nompi "$nompi/usr" "$wanted" -DWITH_MPI=ON > "$tmp/log" 2>&1; then
    fail "CMake: find_package(fmnn COMPONENTS mpi) succeeds without libfmnn_mpi"
fi
# CMake wraps the reason's lines.
tr -s ' \n' '  ' < "$tmp/log" | grep -q 'component mpi: .* is missing: libfmnn_mpi is not installed' ||
    { cat "$tmp/log" >&2; fail "CMake: find_package(fmnn COMPONENTS mpi) fails for another reason without libfmnn_mpi"; }
[ "$nompi" = "$tmp" ] || rm -rf "$nompi"
echo "downstream: CMake ok without libfmnn_mpi (find_package(fmnn COMPONENTS mpi) refuses)"

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
echo "downstream: uninstall ok (nothing left$([ "$mpi" = 0 ] || echo ", libfmnn_mpi's files included"))"
