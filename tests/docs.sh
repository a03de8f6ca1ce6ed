#!/bin/sh
# tests/docs.sh [CC [LIBS]] - keeps the documentation from going stale.
#
#  1. docs/api.md documents every public name in include/: each FMNN_API
#     function and each type under a heading of its own (functions with
#     their prototype), each macro and enum constant in `code`; a heading
#     for a name that no longer exists fails too.
#  2. Every ```c block of README.md and docs/*.md compiles, warning-free:
#     programs (with a main) are linked against build/libfmnn.a, fragments
#     (first line /* fragment */) are wrapped in a function body,
#     declarations are compiled after #include <fmnn.h>, and the blocks of
#     a recipe (first line /* in PATH */, docs/internals.md) are compiled
#     together against the private headers, and their gradient check run.
#     tests/docs_tool.pl describes the rules.
#  3. Relative links in README.md and docs/*.md lead to existing files
#     and headings.
#  4. docs/fmnn.3 renders without a warning from groff and man.
#
# LIBS are the link flags of libfmnn's dependencies (the Makefile passes
# them); by default they come from pkg-config.  Needs build/libfmnn.a.
set -eu

cc=${1:-cc}
cd "$(dirname "$0")/.."
libs=${2:-"$(pkg-config --libs openblas zlib) -fopenmp -lm"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

failed=0
fail() { echo "docs: FAIL: $*" >&2; failed=1; }
# Runs a command quietly, showing its output only if it fails.
quiet() { "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; return 1; }; }

command -v perl >/dev/null 2>&1 || { echo "docs: FAIL: perl is needed" >&2; exit 1; }
[ -f build/libfmnn.a ] || { echo "docs: FAIL: build/libfmnn.a is missing: run make" >&2; exit 1; }

# ---- 1. the API reference --------------------------------------------
perl tests/docs_tool.pl api docs/api.md include/fmnn.h include/fmnn/*.h || failed=1

# ---- 2. the C blocks ---------------------------------------------------
docs="README.md $(ls docs/*.md)"
# shellcheck disable=SC2086
perl tests/docs_tool.pl extract "$tmp" $docs > "$tmp/manifest" ||
    { echo "docs: FAIL: cannot extract the code blocks" >&2; exit 1; }

std="-std=c11 -Wall -Wextra -Wpedantic -Werror -Wno-unused-function"
check_cflags=$(pkg-config --cflags check 2>/dev/null || true)
check_libs=$(pkg-config --libs check 2>/dev/null || echo -lcheck)
n=0 mpi_skipped=0
while read -r kind unit where; do
    n=$((n + 1))
    src=$tmp/$unit
    # $cc, $libs and the flags may be several words.
    # A block that includes fmnn/mpi.h is libfmnn_mpi's: built with MPI's
    # flags and build/libfmnn_mpi.a, or skipped where MPI is missing.
    mpi_flags= mpi_link=
    if grep -q 'fmnn/mpi\.h' "$src"; then
        if ! pkg-config --exists mpi-c 2>/dev/null || [ ! -f build/libfmnn_mpi.a ]; then
            mpi_skipped=$((mpi_skipped + 1))
            continue
        fi
        mpi_flags=$(pkg-config --cflags-only-I mpi-c | sed 's/-I/-isystem /g')
        mpi_link="build/libfmnn_mpi.a $(pkg-config --libs mpi-c)"
    fi
    # shellcheck disable=SC2086
    case $kind in
    program)
        quiet $cc $std -Iinclude $mpi_flags -o "${src%.c}" "$src" $mpi_link build/libfmnn.a $libs ||
            fail "the program at $where does not build" ;;
    fragment)
        quiet $cc $std -Wno-unused-variable -Wno-unused-but-set-variable \
            -Wno-unused-label -Iinclude $mpi_flags -c -o "${src%.c}.o" "$src" ||
            fail "the fragment at $where does not compile" ;;
    decls)
        quiet $cc $std -Iinclude $mpi_flags -c -o "${src%.c}.o" "$src" ||
            fail "the declarations at $where do not compile (statements? start the block with /* fragment */)" ;;
    recipe|recipe-run)
        rflags="$std -fopenmp -DFMNN_BUILDING -Iinclude -Ilib -Itests $check_cflags"
        if ! quiet $cc $rflags -c -o "${src%.c}.o" "$src"; then
            fail "the recipe starting at $where does not compile"
        elif [ "$kind" = recipe-run ]; then
            if ! quiet $cc -std=c11 -fopenmp -Iinclude -Ilib -Itests $check_cflags \
                    -o "${src%.c}" "${src%.c}.o" tests/gradcheck.c build/libfmnn.a \
                    $libs $check_libs; then
                fail "the recipe starting at $where does not link"
            elif ! CK_FORK=no quiet "${src%.c}"; then
                fail "the tests of the recipe starting at $where fail"
            fi
        fi ;;
    *)
        fail "unknown block kind '$kind' at $where" ;;
    esac
done < "$tmp/manifest"
[ "$n" -gt 0 ] || fail "found no C code block in $docs"
kinds=$(awk '{ print $1 }' "$tmp/manifest" | sort | uniq -c | awk '{ printf " %s %s", $1, $2 }')
echo "docs: $n C units compiled from the docs:$kinds"
[ "$mpi_skipped" -eq 0 ] || echo "docs: $mpi_skipped of them skipped: they need MPI (make mpi)"

# ---- 3. links ------------------------------------------------------------
# shellcheck disable=SC2086
perl tests/docs_tool.pl links $docs || failed=1

# ---- 4. the man page -----------------------------------------------------
man_page=docs/fmnn.3
if [ ! -f "$man_page" ]; then
    fail "$man_page is missing"
else
    checked= man_failed=$failed
    if command -v groff >/dev/null 2>&1; then
        groff -man -ww -z "$man_page" > "$tmp/groff" 2>&1 || true
        if [ -s "$tmp/groff" ]; then
            cat "$tmp/groff" >&2
            fail "groff -man -ww warns about $man_page"
        fi
        checked="groff"
    fi
    if command -v man >/dev/null 2>&1; then
        MANWIDTH=80 man --warnings -l "$man_page" > /dev/null 2> "$tmp/man" || true
        if [ -s "$tmp/man" ]; then
            cat "$tmp/man" >&2
            fail "man --warnings -l warns about $man_page"
        fi
        checked="$checked${checked:+ and }man"
    fi
    if [ -z "$checked" ]; then
        echo "docs: neither groff nor man is installed: skipping the check of $man_page"
    elif [ "$failed" -eq "$man_failed" ]; then
        echo "docs: $man_page renders without warnings ($checked)"
    fi
fi

[ "$failed" -eq 0 ] || exit 1
echo "docs: ok"
