"""check_models.py - onnx.checker.check_model(full_check=True) on each ONNX
file given, for `make check-onnx` (tests/onnx/run.sh).

With --exported (libfmnn's files), also checks what fmnn/onnx.h promises
of an exported model: opset 13 and IR version 7, one float32 input named
"input" of shape (N, C, H, W) with N symbolic, one output named "output",
and no Dropout node (Dropout and the augmentation layers are left out).

Prints a result row per file and check (tab-separated: model, check, two
empty error columns, PASS or FAIL, the message), the model being the
file's name without .onnx.  Exits 0: the rows carry the verdicts.

Usage: /usr/bin/python3 check_models.py [--exported] FILE.onnx...
"""
import os
import sys

import onnx


def checker(model):
    onnx.checker.check_model(model, full_check=True)


def interface(model):
    """Raises AssertionError naming the first broken promise of an export."""
    opsets = {o.domain: o.version for o in model.opset_import}
    assert opsets.get("", opsets.get("ai.onnx")) == 13, f"opset {opsets}"
    assert model.ir_version == 7, f"IR version {model.ir_version}"
    graph = model.graph
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    assert [i.name for i in inputs] == ["input"], f"inputs {[i.name for i in inputs]}"
    tensor = inputs[0].type.tensor_type
    assert tensor.elem_type == onnx.TensorProto.FLOAT, "input is not float32"
    dims = tensor.shape.dim
    assert len(dims) == 4 and dims[0].dim_param and all(d.dim_value > 0 for d in dims[1:]), \
        f"input shape {[d.dim_param or d.dim_value for d in dims]}"
    assert [o.name for o in graph.output] == ["output"], f"outputs {[o.name for o in graph.output]}"
    dropouts = [n.name for n in graph.node if n.op_type == "Dropout"]
    assert not dropouts, f"Dropout nodes {dropouts}"


def verdict(check, model):
    try:
        check(model)
        return "PASS", ""
    except Exception as e:  # the checker's errors, and our assertions
        return "FAIL", " ".join(str(e).split())[:200]


def main():
    args = sys.argv[1:]
    checks = [("onnx.checker", checker)]
    if args and args[0] == "--exported":
        args = args[1:]
        checks.append(("interface", interface))
    for path in args:
        name = os.path.basename(path)[:-len(".onnx")]
        try:
            model = onnx.load(path)
        except Exception as e:  # protobuf's error on a file that is not ONNX
            print(f"{name}\tonnx.load\t\t\tFAIL\t{' '.join(str(e).split())[:200]}")
            continue
        for label, check in checks:
            print(f"{name}\t{label}\t\t\t" + "\t".join(verdict(check, model)))


if __name__ == "__main__":
    main()
