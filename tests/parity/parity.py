"""parity.py - the PyTorch side of `make check-parity`.

For each model that parity_dump wrote (the same models, layer for layer),
loads its initial weights into PyTorch, computed in float64 as the
reference, and compares with libfmnn's float32 results:

  * the output at inference (BatchNormalization on its moving statistics),
    within 1e-5 relative;
  * every weight after one SGD step (learning rate 0.1, the whole batch),
    within float32 rounding: at most 4 units in the last place of the
    weight, plus 1e-5 of the step; and every moving statistic within 4
    ulps of itself plus the float32 rounding its batch statistic carries
    (0.01 of 8 ulps of the batch's E|x| or E[x^2]).

Keras semantics, where PyTorch's own defaults differ, are written out here
(see ../shared/reference/keras-semantics.md): TensorFlow's "same" padding,
which may put the extra pixel after; average pooling over the real pixels
only; BatchNormalization's biased batch variance and Keras's momentum;
LeakyReLU's slopes.  libfmnn is channels-last, so the tensors here are
NHWC and are permuted around PyTorch's NCHW convolutions.

Usage: python3 parity.py DIR   (prints a table; exit status 1 on a miss)
"""
import math
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def activation(kind, x):
    return {
        "linear": lambda v: v,
        "relu": F.relu,
        "sigmoid": torch.sigmoid,
        "softmax": lambda v: torch.softmax(v, -1),
        "tanh": torch.tanh,
        "leaky_relu": lambda v: F.leaky_relu(v, 0.2),       # keras.activations' slope
        "elu": F.elu,
        "selu": lambda v: SELU_SCALE * torch.where(v > 0, v, SELU_ALPHA * torch.expm1(v)),
        "gelu": lambda v: F.gelu(v, approximate="none"),
        "gelu_tanh": lambda v: F.gelu(v, approximate="tanh"),
        "softplus": lambda v: torch.where(v > 0, v, 0 * v) + torch.log1p(torch.exp(-v.abs())),
        "swish": F.silu,
        "hard_sigmoid": lambda v: F.relu6(v + 3) / 6,
    }[kind](x)


def same_pads(size, window, stride):
    """TensorFlow's 'same': (before, after), the extra pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


# The models of parity_dump.c, layer for layer.
def cnn():
    return [("zero_padding", (1, 1, 0, 1)),
            ("conv", dict(filters=4, k=(3, 3), dilation=(2, 1), bias=False, padding="valid", act="gelu")),
            ("batch_norm", None), ("act", "elu"),
            ("avgpool_same", (2, 2)),
            ("conv", dict(filters=3, k=(2, 2), dilation=(1, 1), bias=True, padding="same", act="swish")),
            ("leaky_layer", 0.3), ("reshape", (5, 4, 3)), ("gap", None),
            ("dense", "selu"), ("batch_norm", None), ("dense", "softmax")]


def head(last):
    return [("conv", dict(filters=3, k=(3, 3), dilation=(1, 1), bias=True, padding="same", act="gelu_tanh")),
            ("gmp", None), ("dense", "softplus"), ("act", "hard_sigmoid"), ("dense", last)]


MODELS = {
    "cnn": (cnn(), "cce", (6, 6, 2)),
    "bce_sigmoid": (head("sigmoid"), "bce", (5, 5, 1)),
    "bce_logits": (head("linear"), "bce_logits", (5, 5, 1)),
    "cce_logits": (head("linear"), "cce_logits", (5, 5, 1)),
    "sparse_logits": (head("linear"), "sparse_logits", (5, 5, 1)),
    "mae": (head("linear"), "mae", (5, 5, 1)),
    "huber": (head("linear"), "huber", (5, 5, 1)),
    "mse_leaky": (head("leaky_relu"), "mse", (5, 5, 1)),
}


def read(path):
    values = {}
    with open(path) as f:
        for line in f:
            name, count, *numbers = line.split()
            assert int(count) == len(numbers), name
            values[name] = torch.tensor([float(v) for v in numbers])
    return values


class Net:
    """The layers as functions of NHWC tensors, with libfmnn's parameters."""

    def __init__(self, layers, values, in_shape):
        self.layers, self.params, self.state = layers, {}, {}
        for i, (kind, arg) in enumerate(layers):
            for part in ("kernel", "bias"):
                v = values.get(f"L{i}.{part}")
                if v is not None and v.numel():
                    self.params[(i, part)] = v.clone().requires_grad_(True)
            s = values.get(f"L{i}.state")
            if s is not None and s.numel():
                self.state[i] = s.clone()
        self.in_shape = in_shape
        self.moved, self.magnitude = {}, {}

    def forward(self, x, training):
        p = self.params
        for i, (kind, arg) in enumerate(self.layers):
            n = x.shape[0]
            if kind == "zero_padding":
                top, bottom, left, right = arg
                x = F.pad(x, (0, 0, left, right, top, bottom))
            elif kind == "conv":
                kh, kw = arg["k"]
                dh, dw = arg["dilation"]
                cin = x.shape[3]
                w = p[(i, "kernel")].reshape(kh, kw, cin, arg["filters"]).permute(3, 2, 0, 1)
                b = p[(i, "bias")] if arg["bias"] else None
                xc = x.permute(0, 3, 1, 2)
                if arg["padding"] == "same":
                    t, bo = same_pads(xc.shape[2], (kh - 1) * dh + 1, 1)
                    l, r = same_pads(xc.shape[3], (kw - 1) * dw + 1, 1)
                    xc = F.pad(xc, (l, r, t, bo))
                x = activation(arg["act"], F.conv2d(xc, w, b, dilation=(dh, dw)).permute(0, 2, 3, 1))
            elif kind == "batch_norm":
                c = x.shape[-1]
                axes = tuple(range(x.dim() - 1))
                if training:
                    mean, var = x.mean(axes), x.var(axes, unbiased=False)  # Keras: biased
                    ms = self.state[i]
                    self.moved[i] = torch.cat([ms[:c] * 0.99 + mean.detach() * 0.01,
                                               ms[c:] * 0.99 + var.detach() * 0.01])
                    # what float32 inputs can move them by: their own rounding
                    self.magnitude[i] = torch.cat([x.detach().abs().mean(axes), (x.detach() ** 2).mean(axes)])
                else:
                    mean, var = self.state[i][:c], self.state[i][c:]
                x = p[(i, "kernel")] * (x - mean) / torch.sqrt(var + 1e-3) + p[(i, "bias")]
            elif kind == "act":
                x = activation(arg, x)
            elif kind == "avgpool_same":  # the mean over the real pixels of each window
                ph, pw = arg
                xc = x.permute(0, 3, 1, 2)
                t, bo = same_pads(xc.shape[2], ph, 1)
                l, r = same_pads(xc.shape[3], pw, 1)
                ones = torch.ones_like(xc[:, :1])
                total = F.avg_pool2d(F.pad(xc, (l, r, t, bo)), (ph, pw), 1) * ph * pw
                count = F.avg_pool2d(F.pad(ones, (l, r, t, bo)), (ph, pw), 1) * ph * pw
                x = (total / count).permute(0, 2, 3, 1)
            elif kind == "leaky_layer":
                x = F.leaky_relu(x, arg)
            elif kind == "reshape":
                x = x.reshape(n, *arg)
            elif kind == "gap":
                x = x.mean((1, 2))
            elif kind == "gmp":
                x = x.amax((1, 2))  # the gradient shared among ties, as ops.max's
            elif kind == "dense":
                z = x @ p[(i, "kernel")].reshape(x.shape[-1], -1) + p[(i, "bias")]
                self.logits = z
                x = activation(arg, z)
        return x

    def loss(self, out, y, kind):
        z = self.logits
        if kind == "cce":  # fused with the final softmax: from its logits
            return -(y.reshape(z.shape) * torch.log_softmax(z, -1)).sum(-1).mean()
        if kind == "cce_logits":
            return -(y.reshape(out.shape) * torch.log_softmax(out, -1)).sum(-1).mean()
        if kind == "sparse_logits":
            return F.cross_entropy(out, y.long())
        if kind == "bce":  # fused with the final sigmoid
            return F.binary_cross_entropy_with_logits(z, y.reshape(z.shape))
        if kind == "bce_logits":
            return F.binary_cross_entropy_with_logits(out, y.reshape(out.shape))
        t = y.reshape(out.shape)
        if kind == "mae":
            return (out - t).abs().mean()
        if kind == "huber":
            return F.huber_loss(out, t, delta=1.0)
        if kind == "mse":
            return ((out - t) ** 2).mean()
        raise ValueError(kind)


def max_diff(ours, ref):
    return float((ours - ref).abs().max()) if ours.numel() else 0.0


def check(name, values):
    layers, loss_kind, in_shape = MODELS[name]
    net = Net(layers, values, in_shape)
    x = values["x"].reshape(-1, *in_shape)
    y = values["y"]
    with torch.no_grad():
        out = net.forward(x, training=False)
        loss = net.loss(out, y, loss_kind)
    ours = values["predict"].reshape(out.shape)
    forward_rel = float(((ours - out).abs() / out.abs().clamp(min=1e-6)).max())
    loss_rel = abs(float(values["loss"][0]) - float(loss)) / max(abs(float(loss)), 1e-6)

    before = {k: v.detach().clone() for k, v in net.params.items()}
    out = net.forward(x, training=True)
    net.loss(out, y, loss_kind).backward()
    worst_diff, worst_step = 0.0, 0.0
    with torch.no_grad():
        for (i, part), w in net.params.items():
            ref = w - 0.1 * w.grad
            mine = values[f"after.L{i}.{part}"]
            step = (ref - before[(i, part)]).abs().max()
            # allowed: 4 ulps of the weight, plus 1e-5 of the step it took
            err = (mine - ref).abs()
            allowed = 4 * torch.clamp(ref.abs(), min=2.0 ** -126) * 2.0 ** -23 + 1e-5 * step
            worst_step = max(worst_step, float((err / allowed).max()))
            worst_diff = max(worst_diff, max_diff(mine, ref))
        for i, moved in net.moved.items():
            # allowed: 4 ulps of the statistic, plus its 0.01 share of 8
            # ulps of the batch's E|x| (mean) or E[x^2] (variance), the
            # inputs' float32 rounding carried into the batch statistic
            mine = values[f"after.L{i}.state"]
            allowed = 4 * moved.abs() * 2.0 ** -23 + 0.01 * 8 * net.magnitude[i] * 2.0 ** -23
            worst_diff = max(worst_diff, max_diff(mine, moved))
            worst_step = max(worst_step, float(((mine - moved).abs() / allowed).max()))
    ok = forward_rel <= 1e-5 and loss_rel <= 1e-5 and worst_step <= 1.0
    print(f"| {name} | {len(layers)} | {forward_rel:.2e} | {loss_rel:.2e} | {worst_diff:.2e} | {worst_step:.2f} |"
          f" {'ok' if ok else 'FAIL'} |")
    return ok


def main():
    directory = sys.argv[1]
    print("| model | layers | forward, max rel. diff | loss, rel. diff | weights and state after a step,"
          " max abs. diff | worst diff / allowed | |")
    print("|---|---|---|---|---|---|---|")
    ok = all([check(name, read(f"{directory}/{name}.txt")) for name in MODELS])
    print(f"parity: {'ok' if ok else 'FAIL'}: PyTorch {torch.__version__}, float64 reference")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
