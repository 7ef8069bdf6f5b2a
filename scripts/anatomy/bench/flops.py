"""Rows ``flops/*``: achieved FLOP/s of a training step (FLOPs counted from the layer shapes) as a fraction
of the float32 matmul peak measured in the same run."""

from __future__ import annotations

import time

import numpy as np

from anatomy.bench.common import row


def forward_flops(model) -> int:
    """Multiply-adds x 2 of the Conv2D, Conv2DTranspose and Dense layers for one image (forward)."""
    import keras

    total = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, cin = layer.input.shape
            kh, kw = layer.kernel_size
            total += 2 * h * w * cin * layer.filters * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            total += 2 * h * w * cout * kh * kw * cin
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * int(np.prod(layer.input.shape[1:])) * layer.units
    return int(total)


def training_flops(model) -> int:
    """One training step per image: forward, gradient w.r.t. weights (= forward) and w.r.t. inputs
    (= forward, except for the first layer, whose input needs no gradient)."""
    first = 0
    for layer in _layers(model):
        f = forward_flops(_single(layer))
        if f:
            first = f
            break
    fwd = forward_flops(model)
    return 3 * fwd - first


def _layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def _single(layer):
    class One:  # a stand-in "model" holding one layer, for forward_flops
        layers = [layer]
    return One()


def matmul_chain(k: int, n: int):
    """sum(a b^k / n^k) as one tf.function: k dependent n x n products (none can be merged)."""
    import tensorflow as tf

    @tf.function
    def chain(a, b):
        x = a
        for _ in range(k):
            x = tf.matmul(x, b) * (1.0 / n)
        return tf.reduce_sum(x)  # the whole product: a slice would let Grappler skip work

    return chain


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """float32 FLOP/s of an n x n matmul chain inside one tf.function (the machine's practical peak).

    Each product feeds the next (x <- x b / n), so every one of the ``k`` matmuls
    runs: ``k`` independent ``matmul(a, b)`` of the same inputs are one node after
    Grappler's common-subexpression elimination, which once made this "peak" k
    times too high. The scaling keeps the values in range and costs n^2, not n^3.
    """
    import tensorflow as tf

    a = tf.random.stateless_uniform((n, n), seed=(1, 2))
    b = tf.random.stateless_uniform((n, n), seed=(3, 4))
    k = 4
    chain = matmul_chain(k, n)
    chain(a, b).numpy()
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        chain(a, b).numpy()
        best = max(best, k * 2 * n ** 3 / (time.perf_counter() - t0))
    return best


def conv_forward_rate(batch: int = 128, repeats: int = 5) -> float:
    """FLOP/s of the MNIST CNN's largest layer alone (Conv2D 32 -> 64, 3x3, 26x26 input), forward only:
    what the convolution kernel itself reaches, the ceiling of a training step built from it."""
    import tensorflow as tf

    x = tf.random.stateless_uniform((batch, 26, 26, 32), seed=(5, 6))
    k = tf.random.stateless_uniform((3, 3, 32, 64), seed=(7, 8))
    conv = tf.function(lambda a: tf.reduce_sum(tf.nn.conv2d(a, k, 1, "VALID")))
    conv(x).numpy()
    flops = 2 * batch * 24 * 24 * 64 * 3 * 3 * 32
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(4):
            conv(x).numpy()
        best = max(best, 4 * flops / (time.perf_counter() - t0))
    return best


def bench_flops(rates: dict, *, device: str) -> list:
    peak = matmul_peak()
    conv = conv_forward_rate()
    rows = [row("flops/matmul_peak",
                "float32 chain of 4 dependent 2048x2048 matmuls in one tf.function (the measured peak)",
                peak / 1e9, float("nan"), "GFLOP/s", device=device),
            row("flops/conv2_forward_only", "the MNIST CNN's 32->64 3x3 convolution alone, forward, batch 128: "
                "achieved / matmul peak", conv / 1e9, peak / 1e9, "GFLOP/s", device=device,
                notes="the kernel's own ceiling for a training step made of such layers")]
    for name in ("mnist_cnn_b128", "vgg", "cnn_medium"):
        r = rates.get(name)
        if not r or not r["flops"]:
            continue
        for side in ("ours", "theirs"):
            achieved = r[side] * r["flops"]
            goal = 0.5 if name == "mnist_cnn_b128" and device == "CPU" else None
            rows.append(row(f"flops/{name}/{'workflow' if side == 'ours' else 'plain_fit'}",
                            f"training step, batch {r['batch']}, {r['flops'] / 1e6:.1f} MFLOP per image: achieved / "
                            "matmul peak", achieved / 1e9, peak / 1e9, "GFLOP/s", goal=goal, device=device))
    return rows
