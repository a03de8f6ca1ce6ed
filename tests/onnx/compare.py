"""compare.py - compares two implementations' outputs on the models of a
manifest, for `make check-onnx` (tests/onnx/run.sh).

    compare.py LABEL DIR A B [TOLERANCE]

For each line "NAME N,C,H,W OUTSHAPE" of DIR/manifest, reads the raw
float32 files DIR/NAME.A.f32 and DIR/NAME.B.f32 (B the reference), both of
OUTSHAPE, and prints a result row (tab-separated: model, LABEL, the
elementwise and the normwise relative error, PASS or FAIL, a note).

  elementwise  max_i |a_i - b_i| / max(|b_i|, 1e-6)
  normwise     max over samples n of ||a_n - b_n||_inf / ||b_n||_inf

The verdict is normwise <= TOLERANCE (1e-5).  The elementwise error is
shown but does not decide: two correct float32 computations that sum in
different orders differ by more than 1e-5 relative on outputs near 0 (a
logit that cancels to 0.003, a softmax probability of 1e-9), since their
error is relative to the magnitudes that were summed, not to the result.
Each sample's largest output is that scale: for class probabilities the
normwise error is the error in probability.  Any NaN or Inf fails.
"""
import os
import sys

import numpy as np

FLOOR = 1e-6


def errors(a, b):
    """The elementwise and the normwise relative error of a against b, (N, K)."""
    diff = np.abs(a - b)
    elementwise = (diff / np.maximum(np.abs(b), FLOOR)).max()
    scale = np.maximum(np.abs(b).max(axis=1), np.finfo(np.float64).tiny)
    normwise = (diff.max(axis=1) / scale).max()
    return elementwise, normwise


def compare(path_a, path_b, shape, tolerance):
    """(elementwise, normwise, verdict, note) for one model."""
    missing = [p for p in (path_a, path_b) if not os.path.exists(p)]
    if missing:
        return "", "", "FAIL", "no output " + os.path.basename(missing[0])
    n = shape[0]
    count = int(np.prod(shape))
    a, b = (np.fromfile(p, dtype="<f4").astype(np.float64) for p in (path_a, path_b))
    if a.size != count or b.size != count:
        return "", "", "FAIL", f"{a.size} and {b.size} values, not {count}"
    a, b = a.reshape(n, -1), b.reshape(n, -1)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return "", "", "FAIL", "NaN or Inf in the outputs"
    elementwise, normwise = errors(a, b)
    agree = int((a.argmax(axis=1) == b.argmax(axis=1)).sum())
    verdict = "PASS" if normwise <= tolerance else "FAIL"
    return f"{elementwise:.2e}", f"{normwise:.2e}", verdict, f"argmax agrees on {agree}/{n}"


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit("usage: compare.py LABEL DIR A B [TOLERANCE]")
    label, folder, a, b = sys.argv[1:5]
    tolerance = float(sys.argv[5]) if len(sys.argv) == 6 else 1e-5
    with open(os.path.join(folder, "manifest")) as manifest:
        for line in manifest:
            name, _, out_shape = line.split()
            shape = [int(d) for d in out_shape.split(",")]
            row = compare(os.path.join(folder, f"{name}.{a}.f32"),
                          os.path.join(folder, f"{name}.{b}.f32"), shape, tolerance)
            print("\t".join((name, label) + row))


if __name__ == "__main__":
    main()
