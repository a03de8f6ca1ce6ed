#!/bin/sh
# tests/fresh-machine.sh - the README's promise, tested: on a fresh minimal
# Debian machine, `make check` and `make experiments` need nothing else.
#
# Run by `make check-fresh` (root; on 2 cores about four minutes the first
# time, two after that; not part of `make check`).
#
#  1. Builds a minimal root of SUITE (bookworm) with debootstrap
#     --variant=minbase, from the Debian mirror this machine's own apt
#     configuration names, and installs only what a new user starts with:
#     build-essential git make pkg-config zlib1g-dev ca-certificates python3.
#     That image is cached in build/fresh/base-SUITE/ and reused while the
#     mirror, the apt settings and the package list stay the same; the .deb
#     files `make deps` downloads are cached in build/fresh/archives/, so
#     only the first run downloads.  Neither cache makes the root less
#     fresh: each run starts from a copy of the base image, with nothing
#     installed.
#  2. In a copy of it: clones this repository's HEAD (commit what you want
#     tested), runs `make check`, which must skip nothing, then a quick study
#     and a quick run of the modern CNN:
#     build/examples/fashion_experiments --train-limit 3000 --test-limit 1000 --epochs 1
#     build/examples/modern_cnn --train-limit 3000 --test-limit 1000 --epochs 1 --quiet
#  3. In a second copy: `make experiments`, so that its own `make deps` is
#     tested from nothing too, with the quick study's arguments for the
#     Base model alone (EXPERIMENTS_ARGS): the other four ran in step 2.
#
# /proc, /sys, /dev and the package cache are mounted into a root only in
# a private mount namespace (unshare), which ends with the chroot: no mount
# is ever visible outside it or outlives it, whatever kills the script, so
# deleting build/ can never reach the host's /dev.  The roots stay in
# build/fresh/root-*/ for a look after a failure; the next run replaces
# them.
#
# Environment: FRESH_SUITE (bookworm), FRESH_MIRROR (default: from apt),
# FRESH_REBUILD=1 rebuilds the base image.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd -P)
suite=${FRESH_SUITE:-bookworm}
base_packages="build-essential git make pkg-config zlib1g-dev ca-certificates python3"
study_args="--train-limit 3000 --test-limit 1000 --epochs 1"
modern_args="$study_args --quiet"
work=$src/build/fresh
archives=$work/archives

say() { echo "fresh-machine: $*"; }
fail() { echo "fresh-machine: FAIL: $*" >&2; exit 1; }
now() { date +%s; }
started=$(now)
elapsed() { echo "$(( $(now) - $1 )) s"; }

[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot, mount)"
command -v git >/dev/null 2>&1 || fail "git is needed"
git -C "$src" rev-parse --verify -q HEAD >/dev/null ||
    fail "$src is not a git checkout with a commit: the test clones HEAD"
command -v unshare >/dev/null 2>&1 || fail "unshare (util-linux) is needed"
if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            debootstrap >/dev/null || fail "cannot install debootstrap"
fi

# ---- the mirror, from this machine's apt configuration ---------------
# `apt-get indextargets` reads both sources.list and deb822 .sources;
# --no-release-info lists them even before the first `apt-get update`.
# Each line: SITE RELEASE, for the main component of binary packages.
if [ -n "${FRESH_MIRROR:-}" ]; then
    mirror=$FRESH_MIRROR
    sources="$mirror $suite"
else
    sources=$(apt-get indextargets --no-release-info \
                  --format '$(SITE) $(RELEASE) $(COMPONENT) $(TARGET_OF)' |
              awk -v s="$suite" '$3 == "main" && $4 == "deb" &&
                  ($2 == s || $2 == s "-updates" || $2 == s "-security") { print $1, $2 }' |
              sort -u)
    mirror=$(printf '%s\n' "$sources" | awk -v s="$suite" '$2 == s { print $1; exit }')
    [ -n "$mirror" ] ||
        fail "this machine's apt configuration has no '$suite main' source (set FRESH_MIRROR)"
fi

# What the chroot's apt needs to reach the same mirrors the same way.
# (Shell functions share their callers' variables: hence the conf_ names.)
acquire_conf() {
    for conf_key in Acquire::http::Proxy Acquire::https::Proxy \
                    Acquire::Check-Valid-Until Acquire::Check-Date; do
        conf_value=$(apt-config dump "$conf_key" | sed -n "s|^$conf_key \"\(.*\)\";\$|\1|p")
        [ -n "$conf_value" ] && echo "$conf_key \"$conf_value\";"
    done
    return 0
}
apt_settings=$(acquire_conf)
# debootstrap fetches with wget, which reads the proxy from the environment.
apt_proxy=$(printf '%s\n' "$apt_settings" | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p')
[ -z "$apt_proxy" ] || export http_proxy="$apt_proxy"

# ---- roots ---------------------------------------------------------------
# Runs COMMAND as root in ROOT, with /proc, /sys, /dev and the package
# cache mounted in a private mount namespace.
chroot_run() { # ROOT COMMAND
    mkdir -p "$archives/partial"
    cp /etc/resolv.conf "$1/etc/resolv.conf"
    unshare --mount --propagation private -- sh -eu -c '
        root=$1 archives=$2 command=$3
        mount -t proc proc "$root/proc"
        mount -t sysfs sysfs "$root/sys"
        mount --rbind /dev "$root/dev"
        mkdir -p "$root/var/cache/apt/archives"
        mount --bind "$archives" "$root/var/cache/apt/archives"
        exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
            DEBIAN_FRONTEND=noninteractive \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            sh -c "$command"' sh "$1" "$archives" "$2"
}
# Deletes ROOT, refusing if anything is mounted below it (nothing should
# be: the mounts live in chroot_run's namespace).
remove_root() { # ROOT
    [ -e "$1" ] || return 0
    if awk -v r="$1/" 'index($2 "/", r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        fail "$1 has mounts below it; not removing it"
    fi
    rm -rf --one-file-system "$1"
}
packages_in() { chroot "$1" dpkg-query -W | wc -l; }

# ---- 1. the base image -------------------------------------------------
key=$(printf '%s\n' "$suite" "$mirror" "$sources" "$base_packages" "$apt_settings" |
      cksum | cut -d' ' -f1)
base=$work/base-$suite
mkdir -p "$work"
if [ "${FRESH_REBUILD:-0}" = 1 ] || [ ! -d "$base" ] ||
   [ "$(cat "$base.key" 2>/dev/null)" != "$key" ]; then
    t=$(now)
    say "building the base image: debootstrap --variant=minbase $suite $mirror"
    remove_root "$base.tmp"
    rm -f "$base.key"
    debootstrap --variant=minbase "$suite" "$base.tmp" "$mirror" > "$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap (log: $work/debootstrap.log)"; }
    printf '%s\n' "$sources" | awk '{ print "deb", $1, $2, "main" }' > "$base.tmp/etc/apt/sources.list"
    printf '%s\n' "$apt_settings" > "$base.tmp/etc/apt/apt.conf.d/00mirror"
    chroot_run "$base.tmp" \
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends $base_packages" \
        > "$work/base-packages.log" 2>&1 ||
        { tail -20 "$work/base-packages.log" >&2; fail "installing the base packages"; }
    remove_root "$base"
    mv "$base.tmp" "$base"
    echo "$key" > "$base.key"
    say "base image ready in $(elapsed "$t"): $(du -sh "$base" | cut -f1), $(packages_in "$base") packages"
else
    say "reusing the base image $base ($(packages_in "$base") packages)"
fi
# Whatever `make deps` installs beyond the base list must be missing from
# the image, or the test could not notice that `make deps` forgot it.
for p in $(make -s --no-print-directory -C "$src" deps-list); do
    case " $base_packages " in *" $p "*) continue ;; esac
    if chroot "$base" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        fail "the base image already has $p: it would hide a missing 'make deps' entry"
    fi
done

commit=$(git -C "$src" rev-parse --short HEAD)
if [ -n "$(git -C "$src" status --porcelain --untracked-files=no)" ]; then
    say "note: uncommitted changes are not tested; testing commit $commit"
fi

# Runs COMMAND in a clone of HEAD in a fresh copy of the base image, with
# its output in build/fresh/NAME.log.
in_fresh_root() { # NAME COMMAND
    root=$work/root-$1
    remove_root "$root"
    cp -a "$base" "$root" || fail "cannot copy the base image to $root"
    git clone -q --no-hardlinks "$src" "$root/root/libfmnn" || fail "cannot clone $src"
    chroot_run "$root" "cd /root/libfmnn && $2" > "$work/$1.log" 2>&1
}

# ---- 2. make check, then a quick study ----------------------------------
t=$(now)
say "[check] make check in a fresh root (commit $commit; log: $work/check.log)"
if ! in_fresh_root check "make check && build/examples/fashion_experiments $study_args --out /tmp/study &&
                          build/examples/modern_cnn $modern_args --out /tmp/modern"; then
    tail -30 "$work/check.log" >&2
    fail "make check, the quick study or the modern CNN failed on a fresh $suite (log: $work/check.log)"
fi
grep -E '^(Installing:|== |[0-9]+%: Checks|downstream: |docs: |symbols: |headers: |All test)' "$work/check.log" |
    sed 's/^/  /'
# The point of this test: nothing may be skipped for want of a tool.  The
# tests say "SKIP" (Check suites) or "skipping" (shell tests) when they do.
if grep -E 'SKIP|[Ss]kipping' "$work/check.log" >&2; then
    fail "a check was skipped on the fresh machine (log: $work/check.log)"
fi
# The study's comparison table.
sed -n '/^--- Comparison ---$/,/^$/p' "$work/check.log" | sed 's/^/  /'
grep -E '^Modern CNN - Test' "$work/check.log" | sed 's/^/  /'
say "[check] passed in $(elapsed "$t")"

# ---- 3. make experiments ------------------------------------------------
t=$(now)
say "[experiments] make experiments in another fresh root (log: $work/experiments.log)"
if ! in_fresh_root experiments "make experiments EXPERIMENTS_ARGS='$study_args --models base'"; then
    tail -30 "$work/experiments.log" >&2
    fail "make experiments failed on a fresh $suite (log: $work/experiments.log)"
fi
grep -E '^Installing:' "$work/experiments.log" | sed 's/^/  /'
grep -E '^(Epoch |[0-9]+/[0-9]+ \[)' "$work/experiments.log" | head -2 | sed 's/^/  /'
sed -n '/^--- Comparison ---$/,/^$/p' "$work/experiments.log" | sed 's/^/  /'
grep -E '^Reports written' "$work/experiments.log" | sed 's/^/  /'
say "[experiments] passed in $(elapsed "$t")"

say "ok: make check and make experiments pass on a fresh $suite, commit $commit ($(elapsed "$started") in all)"
