#!/bin/sh
# tests/abi-check.sh [--update] SOFILE BASELINE - guards libfmnn's ABI.
#
# BASELINE (tests/abi/libfmnn.abi) is what libabigail's abidw read off the
# debug information of libfmnn.so when the ABI last changed: every exported
# function and variable and every type they reach, limited to what
# include/ declares.  abidiff compares it with SOFILE, and the change is
#   - compatible when functions or variables were only added;
#   - incompatible when an existing one was removed or changed: a
#     parameter or return type, or any type it reaches (a struct field
#     added, removed, moved or resized, an enum value renumbered...).
# An incompatible change fails unless SOFILE's soname differs from the
# baseline's, that is unless FMNN_SOVERSION in include/fmnn/version.h was
# bumped with it, and the version too: its minor number while it is 0.x,
# its major number from 1.0 on.  Any change abidiff reports, compatible or
# not, still fails until the baseline is refreshed (--update, `make
# abi-baseline`) in the same commit, so that the next change is compared
# with this one.  The baseline records the version it was taken from.
# docs/internals.md, "Releases and the ABI", gives the rule.
set -eu

update=0
[ "${1:-}" = --update ] && { update=1; shift; }
so=${1:?usage: tests/abi-check.sh [--update] SOFILE BASELINE}
baseline=${2:?usage: tests/abi-check.sh [--update] SOFILE BASELINE}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

fail() { echo "abi-check: FAIL: $*" >&2; exit 1; }
command -v abidw >/dev/null 2>&1 || fail "abidw is missing (apt-get install abigail-tools)"
[ -f "$so" ] || fail "$so: no such file (run make)"

# Exported interfaces only, without source paths, line numbers or
# DT_NEEDED: the baseline changes only when the ABI does, whoever builds
# it and wherever.
abidw --exported-interfaces-only --headers-dir "$root/include" --drop-private-types \
      --no-corpus-path --no-comp-dir-path --no-show-locs --no-elf-needed --type-id-style hash \
      --out-file "$tmp/current.abi" "$so" || fail "abidw cannot read $so"
soname=$(sed -n "1s/.* soname='\([^']*\)'.*/\1/p" "$tmp/current.abi")
[ -n "$soname" ] || fail "$so has no soname"
# Without debug information abidw sees symbols but no types, and every
# type change would pass unseen.
grep -q '<function-decl ' "$tmp/current.abi" ||
    fail "$so has no debug information (built without -g?): abidw cannot see its types"
version=$(sed -n 's/^#define FMNN_VERSION_STRING "\(.*\)"/\1/p' "$root/include/fmnn/version.h")
[ -n "$version" ] || fail "no FMNN_VERSION_STRING in include/fmnn/version.h"

if [ "$update" -eq 1 ]; then
    mkdir -p "$(dirname "$baseline")"
    # abidiff accepts a comment inside the root element, not before it.
    sed "1a\\  <!-- libfmnn $version; refreshed by make abi-baseline -->" \
        "$tmp/current.abi" > "$baseline"
    echo "abi-check: wrote $baseline (libfmnn $version, $soname, $(grep -c '<elf-symbol ' "$baseline") symbols)"
    exit 0
fi
[ -f "$baseline" ] || fail "$baseline is missing (make abi-baseline writes it)"
old_soname=$(sed -n "1s/.* soname='\([^']*\)'.*/\1/p" "$baseline")
old_version=$(sed -n 's/.*<!-- libfmnn \([0-9.]*\);.*/\1/p' "$baseline")
[ -n "$old_version" ] || fail "$baseline does not say which version it was taken from (make abi-baseline)"

# Did the version take the step an incompatible change needs?
version_bumped() {
    echo "$old_version $version" | awk '{
        split($1, o, "."); split($2, n, ".")
        if (n[1] > o[1]) exit 0                       # a new major version
        if (n[1] == 0 && o[1] == 0 && n[2] > o[2]) exit 0  # 0.x: a new minor
        exit 1 }'
}

# abidiff's exit status marks only removed symbols as incompatible, so the
# verdict comes from its summary lines ("N Removed, M Changed, K Added").
status=0
abidiff "$baseline" "$tmp/current.abi" > "$tmp/report" 2>&1 || status=$?
[ $((status & 3)) -eq 0 ] || { cat "$tmp/report" >&2; fail "abidiff could not compare (status $status)"; }
count() { # WORD: the sum of "N WORD" over the summary lines
    sed -n "s/.*summary:.* \([0-9][0-9]*\) $1.*/\1/p" "$tmp/report" | awk '{ n += $1 } END { print n + 0 }'
}
breaking=$(( $(count Removed) + $(count Changed) ))
added=$(count Added)

if [ "$breaking" -gt 0 ]; then
    if [ "$soname" = "$old_soname" ]; then
        cat "$tmp/report" >&2
        fail "incompatible ABI change ($breaking removed or changed) with the soname still $soname: bump FMNN_SOVERSION and the version (docs/internals.md), or undo the change"
    fi
    version_bumped ||
        fail "incompatible ABI change with the soname bumped to $soname, but the version is still $version against the baseline's $old_version: bump the minor version (0.x) or the major version (from 1.0) too"
    verdict="incompatible, with the soname bumped from $old_soname to $soname and the version from $old_version to $version"
elif [ "$added" -gt 0 ]; then
    verdict="compatible: $added added, nothing removed or changed"
fi
# A change that passes must still be recorded, so that the next change is
# compared with it.
if [ "$breaking" -gt 0 ] || [ "$added" -gt 0 ]; then
    fail "$verdict; now record it: make abi-baseline, and commit $baseline with the change"
fi
# What abidiff does not report (an enum value added at the end, or another
# compiler's way of writing the same types) passes, with a reminder.
if ! sed '2{/^  <!-- libfmnn /d}' "$baseline" | cmp -s - "$tmp/current.abi"; then
    echo "abi-check: abidw's output differs from $baseline in ways abidiff calls harmless; make abi-baseline records them"
fi
echo "abi-check: the ABI of $soname matches $baseline ($(grep -c '<elf-symbol ' "$baseline") symbols)"
