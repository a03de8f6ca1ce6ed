#!/bin/sh
# tests/parity/parity.sh DUMPER - `make check-parity`: libfmnn against
# PyTorch on models that use every newer layer, activation and loss
# (tests/parity/parity.py says what is compared).  Skips, with status 0,
# where /usr/bin/python3 has no torch (Debian's python3-torch).
set -eu
dumper=$1
python=${PARITY_PYTHON:-/usr/bin/python3}
if ! "$python" -c 'import torch' >/dev/null 2>&1; then
    echo "parity: skipped: $python cannot import torch (apt-get install python3-torch)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$dumper" "$tmp"
"$python" "$(dirname "$0")/parity.py" "$tmp"
