"""check_models.py - onnx.checker.check_model(full_check=True) on each ONNX
file given, for `make check-onnx` (tests/onnx/run.sh).

Prints a result row per file (tab-separated: model, check, two empty
error columns, PASS or FAIL, the checker's message), the model being the
file's name without .onnx.  Exits 0: the rows carry the verdicts.

Usage: /usr/bin/python3 check_models.py FILE.onnx...
"""
import os
import sys

import onnx


def check(path):
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        return "PASS", ""
    except Exception as e:  # the checker's own errors, and protobuf's on a corrupt file
        return "FAIL", " ".join(str(e).split())[:200]


def main():
    for path in sys.argv[1:]:
        verdict, message = check(path)
        name = os.path.basename(path)[:-len(".onnx")]
        print(f"{name}\tonnx.checker\t\t\t{verdict}\t{message}")


if __name__ == "__main__":
    main()
