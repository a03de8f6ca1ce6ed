"""torch_models.py - the PyTorch side of `make check-onnx` (tests/onnx/run.sh).

Builds small nn.Sequential CNNs that between them use every torch module
fmnn_model_import_onnx supports, gives them seeded random weights (and
BatchNorm non-trivial affine parameters and running statistics), and
exports each with torch.onnx.export in eval mode at opset 13 with a
dynamic batch axis.  A model with BatchNorm is exported twice: NAME with
torch's defaults, which fold each BatchNorm2d into the Conv before it, and
NAME_bn with training=TrainingMode.PRESERVE, which keeps BatchNormalization
nodes.  (do_constant_folding=False does not keep them: the folding is
torch's eval-mode peephole pass, not constant folding.  The script counts
the nodes of all three exports and says so.)

For each exported model it writes into OUTDIR:
  NAME.onnx          the model
  NAME.input.f32     its input batch, NCHW float32: Fashion-MNIST test
                     images (three-channel models: the image, its
                     transpose and 1 - image)
  NAME.labels.u8     their classes, one byte each (for fine-tuning)
  NAME.torch.f32     PyTorch's float32 output on that batch
  manifest           a line per model: NAME N,C,H,W N,K

Usage: /usr/bin/python3 torch_models.py [--data DIR] [--count N] OUTDIR
"""
import argparse
import gzip
import io
import os
import sys
import warnings

import numpy as np
import onnx
import torch
from torch import nn
from torch.onnx import symbolic_helper

OPSET = 13


def read_idx(path, header):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8)[header:]


def load_images(data, count):
    """The first count test images as (count, 1, 28, 28) in [0, 1], and their labels."""
    images = read_idx(os.path.join(data, "t10k-images-idx3-ubyte.gz"), 16)
    labels = read_idx(os.path.join(data, "t10k-labels-idx1-ubyte.gz"), 8)
    x = images[:count * 784].reshape(count, 1, 28, 28).astype(np.float32) / 255
    return torch.from_numpy(x), labels[:count].copy()


def three_channels(x):
    """A three-channel batch with distinct channels, to catch NCHW/NHWC mix-ups."""
    return torch.cat([x, x.transpose(2, 3), 1 - x], dim=1)


# Debian's torch 1.13 cannot export two of the supported modules at any
# opset.  These symbolics write what a newer torch writes, or near it.
# Conv2d(padding="same") is a Conv with auto_pad SAME_UPPER, as torch 2
# writes it, except with a dilation, which onnxruntime refuses with
# auto_pad: there the Conv has torch's pads (the odd pixel after).
# Unflatten(1, sizes) is a Reshape to the constant shape (-1, *sizes), as
# torch writes x.reshape(-1, *sizes) (torch 2 computes that shape from the
# input's Shape in a few more nodes).
@symbolic_helper.parse_args("v", "v", "v", "is", "s", "is", "i")
def conv_mode_symbolic(g, x, weight, bias, stride, padding, dilation, groups):
    inputs = [x, weight] if symbolic_helper._is_none(bias) else [x, weight, bias]
    kernel = symbolic_helper._get_tensor_sizes(weight)[2:]
    if padding == "valid" or all(d == 1 for d in dilation):
        pads = dict(auto_pad_s={"same": "SAME_UPPER", "valid": "VALID"}[padding])
    else:
        totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
        pads = dict(pads_i=[t // 2 for t in totals] + [t - t // 2 for t in totals])
    return g.op("Conv", *inputs, kernel_shape_i=kernel, strides_i=stride, dilations_i=dilation,
                group_i=groups, **pads)


@symbolic_helper.parse_args("v", "i", "is")
def unflatten_symbolic(g, x, dim, sizes):
    assert dim == 1, "only Unflatten(1, sizes) is exported"
    shape = torch.tensor([-1] + sizes, dtype=torch.int64)
    return g.op("Reshape", x, g.op("Constant", value_t=shape))


def conv_model():
    """Convolutions of every kind, both poolings, BatchNorm2d and BatchNorm1d."""
    return 3, nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),  # 14x14
        nn.Conv2d(8, 8, 3, padding="same", dilation=2, bias=False), nn.BatchNorm2d(8),
        nn.LeakyReLU(0.1),
        nn.MaxPool2d(2),                                                        # 7x7
        nn.Conv2d(8, 8, 3, padding=1), nn.ELU(),
        nn.AvgPool2d(2),                                                        # 3x3
        nn.Flatten(), nn.Linear(72, 32), nn.BatchNorm1d(32), nn.Tanh(), nn.Dropout(0.3),
        nn.Linear(32, 10), nn.Softmax(dim=1))


def global_avg_model():
    return 1, nn.Sequential(
        nn.Conv2d(1, 6, 5, stride=2), nn.SELU(),                                # 12x12
        nn.Conv2d(6, 6, 4, padding="same"), nn.ReLU(),
        nn.Conv2d(6, 8, 3, stride=(2, 1)), nn.Sigmoid(),                        # 5x10
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10), nn.Softmax(dim=1))


def global_max_model():
    return 1, nn.Sequential(
        nn.ZeroPad2d((1, 2, 0, 1)),                                             # 29x31
        nn.Conv2d(1, 6, 3, dilation=(1, 2)), nn.SiLU(),                         # 27x27
        nn.Conv2d(6, 6, 3, stride=2), nn.Softplus(),                            # 13x13
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(6, 10), nn.Hardsigmoid())


def gelu_model():
    """GELU in both forms: torch writes each as a small graph of elementwise ops."""
    return 1, nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=3), nn.GELU(),                                # 9x9
        nn.Flatten(), nn.Linear(324, 16), nn.GELU(approximate="tanh"),
        nn.Linear(16, 10), nn.Softmax(dim=1))


def unflatten_model():
    """Dense to image: the Flatten after the Conv flattens NCHW, not NHWC."""
    return 1, nn.Sequential(
        nn.Flatten(), nn.Linear(784, 48), nn.ReLU(), nn.Unflatten(1, (3, 4, 4)),
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Identity(), nn.ReLU(),
        nn.Flatten(), nn.Linear(128, 10), nn.Softmax(dim=1))


MODELS = {
    "t_conv": conv_model,
    "t_global_avg": global_avg_model,
    "t_global_max": global_max_model,
    "t_gelu": gelu_model,
    "t_unflatten": unflatten_model,
}


def give_batchnorm_statistics(model, x):
    """Random affine parameters, and running statistics from a few train-mode
    passes over inputs shifted and scaled away from the defaults' 0 and 1."""
    batchnorms = [m for m in model if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for bn in batchnorms:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.momentum = 0.5
        model.train()
        for i in range(4):
            model(x[i * 32:(i + 1) * 32] * 1.5 + 0.2)
    return len(batchnorms)


def export(model, x, **options):
    f = io.BytesIO()
    torch.onnx.export(model, x[:2], f, opset_version=OPSET, input_names=["input"],
                      output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, **options)
    return f.getvalue()


def batchnorm_nodes(data):
    return sum(n.op_type == "BatchNormalization" for n in onnx.load_from_string(data).graph.node)


def write(outdir, name, data, x, labels, y, manifest):
    with open(os.path.join(outdir, name + ".onnx"), "wb") as f:
        f.write(data)
    x.numpy().astype("<f4").tofile(os.path.join(outdir, name + ".input.f32"))
    labels.tofile(os.path.join(outdir, name + ".labels.u8"))
    y.numpy().astype("<f4").tofile(os.path.join(outdir, name + ".torch.f32"))
    shape = lambda t: ",".join(str(d) for d in t.shape)
    manifest.write(f"{name} {shape(x)} {shape(y)}\n")
    ops = [n.op_type for n in onnx.load_from_string(data).graph.node]
    print(f"torch_models: {name}: {len(ops)} nodes: {' '.join(ops)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("outdir")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    # The exporter's advice on constant folding and Slice, and torch's on an even
    # kernel with "same" padding, are not ours to act on.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
    torch.onnx.register_custom_op_symbolic("aten::_convolution_mode", conv_mode_symbolic, OPSET)
    torch.onnx.register_custom_op_symbolic("aten::unflatten", unflatten_symbolic, OPSET)
    images, labels = load_images(args.data, args.count)
    torch.set_num_threads(1)
    ok = True
    with open(os.path.join(args.outdir, "manifest"), "w") as manifest:
        for seed, (name, build) in enumerate(MODELS.items()):
            torch.manual_seed(seed)
            channels, model = build()
            x = three_channels(images) if channels == 3 else images
            n_bn = give_batchnorm_statistics(model, x)
            model.eval()
            with torch.no_grad():
                y = model(x)
            data = export(model, x)
            write(args.outdir, name, data, x, labels, y, manifest)
            if not n_bn:
                continue
            preserved = export(model, x, training=torch.onnx.TrainingMode.PRESERVE)
            unfolded = export(model, x, do_constant_folding=False)
            counts = [batchnorm_nodes(d) for d in (data, unfolded, preserved)]
            print(f"torch_models: {name}: {n_bn} BatchNorm modules; BatchNormalization nodes: "
                  f"default {counts[0]}, do_constant_folding=False {counts[1]}, "
                  f"training=PRESERVE {counts[2]}")
            if counts[2] != n_bn:
                print(f"torch_models: {name}_bn: PRESERVE kept {counts[2]} of {n_bn} BatchNorms",
                      file=sys.stderr)
                ok = False
            write(args.outdir, name + "_bn", preserved, x, labels, y, manifest)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
