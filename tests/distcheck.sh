#!/bin/sh
# tests/distcheck.sh TARBALL [MAKE] - is the release tarball complete?
#
# Unpacks TARBALL (from `make dist`) in a scratch folder, away from the git
# checkout, and there:
#  1. `make check`: everything builds and passes from the tarball alone, so
#     no source or test depends on an untracked file or on git;
#  2. `make install` into a DESTDIR, then `make uninstall`, which must leave
#     no file behind;
#  3. `make clean`, after which the tree must be the tarball again, file
#     for file and byte for byte: the build wrote nothing outside build/.
set -eu

tarball=${1:?usage: tests/distcheck.sh TARBALL [MAKE]}
make=${2:-make}
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
name=$(basename "$tarball" .tar.gz)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

fail() { echo "distcheck: FAIL: $*" >&2; exit 1; }
say() { echo "distcheck: $*"; }
# The files of the tree under DIR with their contents' checksums, sorted.
listing() { (cd "$1" && find . ! -type d -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); }

tar -xzf "$tarball" -C "$tmp" || fail "cannot unpack $tarball"
tree=$tmp/$name
[ -f "$tree/Makefile" ] || fail "$tarball has no $name/Makefile"
[ ! -e "$tree/.git" ] || fail "$tarball contains a .git"
listing "$tree" > "$tmp/unpacked"
say "unpacked $(wc -l < "$tmp/unpacked") files into $tree"

cd "$tree"
# shellcheck disable=SC2086  # $make may be several words
$make check || fail "make check fails in the unpacked tarball"
say "make check passes in the unpacked tarball"

dest=$tmp/destdir
$make install DESTDIR="$dest" > "$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "make install DESTDIR=$dest"; }
installed=$(find "$dest" ! -type d | wc -l)
[ "$installed" -gt 0 ] || fail "make install installed nothing"
$make uninstall DESTDIR="$dest" > "$tmp/uninstall.log" 2>&1 ||
    { cat "$tmp/uninstall.log" >&2; fail "make uninstall DESTDIR=$dest"; }
left=$(find "$dest" ! -type d)
[ -z "$left" ] || fail "make uninstall left behind: $left"
say "make install put $installed files in a DESTDIR; make uninstall removed them all"

$make clean > /dev/null || fail "make clean"
listing "$tree" > "$tmp/cleaned"
if ! cmp -s "$tmp/unpacked" "$tmp/cleaned"; then
    diff "$tmp/unpacked" "$tmp/cleaned" >&2 || true
    fail "after make clean the tree differs from the tarball (the build wrote outside build/)"
fi
say "ok: $(basename "$tarball") builds, passes make check, installs and uninstalls cleanly"
