"""Benchmarks: every speed claim as a ratio of two sides measured in one run.

``python -m anatomy.bench`` writes ``results/bench/bench.csv`` and prints the
table. Each row runs both sides in this process (or, for the workflow rows,
both Snakemake runs in this run), on the same data, interleaved (A, B, A, B)
with the best of the repeats kept, so that a noisy neighbour hurts both sides
alike. Rows:

- ``pipeline/<model>``: training images/s through the workflow's data path
  (HDF5 / TFRecord file -> in-memory tensors -> tf.data -> ``fit``) vs plain
  ``model.fit`` on NumPy arrays (what the published notebooks did).
- ``augment/digits``, ``augment/cifar``: the batched affine transform and the
  batched pad-crop-flip vs per-image loops (scikit-image ``AffineTransform`` +
  ``warp``, NumPy pad/crop/flip); ``augment/digits_vs_training`` compares the
  augmentation's throughput with the training step it feeds.
- ``synthetic/ellipses``: pairs/s of the vectorised generator vs a per-image
  loop like the published one.
- ``flops/<model>``: achieved FLOP/s of a training step (FLOPs counted from the
  layer shapes) as a fraction of the float32 matmul peak measured in this run.
- ``workflow/dag_full``, ``workflow/noop_quick``: Snakemake's DAG build for
  ``config/full.yaml`` and a rerun with nothing to do.
- ``scaling/epoch``, ``scaling/cores``: seconds per epoch against the training
  set size (linear fit), and a small workflow with ``--cores 1`` vs ``--cores 2``.

Nothing here is a test: goals are printed beside the numbers, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["row", "what", "ours", "theirs", "unit", "ratio", "goal", "met", "device", "notes"]


# ---------------------------------------------------------------- timing helpers

def best_rate(fn: Callable[[], int], repeats: int) -> float:
    """Items per second of ``fn`` (which returns how many items it did): the best of ``repeats`` calls."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def side_by_side(ours: Callable[[], int], theirs: Callable[[], int], repeats: int = 2) -> tuple[float, float]:
    """Rates of both sides, interleaved ours, theirs, ours, theirs ...; best of each."""
    r_ours, r_theirs = 0.0, 0.0
    for _ in range(repeats):
        r_ours = max(r_ours, best_rate(ours, 1))
        r_theirs = max(r_theirs, best_rate(theirs, 1))
    return r_ours, r_theirs


def row(name, what, ours, theirs, unit, *, goal=None, higher_is_better=True, ratio=None, device="CPU", notes=""):
    if ratio is None:
        ratio = (ours / theirs) if (theirs and np.isfinite(theirs) and np.isfinite(ours)) else float("nan")
    met = ""
    if goal is not None and np.isfinite(ratio):
        met = "yes" if (ratio >= goal if higher_is_better else ratio <= goal) else "no"
    return {"row": name, "what": what, "ours": ours, "theirs": theirs, "unit": unit, "ratio": ratio,
            "goal": "" if goal is None else (f">= {goal:g}" if higher_is_better else f"<= {goal:g}"),
            "met": met, "device": device, "notes": notes}


# ---------------------------------------------------------------- FLOP counting

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


# ---------------------------------------------------------------- data

def build_data(folder: Path) -> dict:
    """The embedded samples as the workflow stores them: MNIST HDF5 and CIFAR-10 TFRecords."""
    from anatomy.data.cifar10 import build_cifar10
    from anatomy.data.mnist import build_mnist

    res = ROOT / "resources"
    build_mnist(folder / "mnist.h5", source="embedded", npz=res / "mnist_sample.npz")
    build_cifar10(folder / "cifar10", source="embedded", shards=2, npz=res / "cifar10_sample.npz")
    return {"mnist": folder / "mnist.h5", "cifar10": folder / "cifar10" / "manifest.json"}


# ---------------------------------------------------------------- 1. input pipeline

def _fit_rates(model, data_fn, x_np, y_np, *, batch: int, steps: int, compare: Callable) -> tuple[float, float]:
    """Images/s of ``fit`` on the workflow's ArrayData vs on NumPy arrays, same model, batch, steps."""
    n = batch * steps

    def ours():
        model.fit(data_fn(n).dataset(0, 1), epochs=1, verbose=0)
        return n

    def theirs():
        model.fit(x_np[:n], y_np[:n], batch_size=batch, epochs=1, verbose=0, shuffle=True)
        return n

    return compare(ours, theirs)


def bench_pipeline(paths: dict, cfg: dict, *, scale: float, repeats: int, device: str,
                   ours_only: bool = False) -> tuple[list, dict]:
    """The training step of every study's model on the workflow's data path vs ``model.fit`` on arrays.

    ``ours_only`` (``anatomy.plan``): the workflow's side alone, for its speed; no comparison rows are kept.
    """
    import keras
    import tensorflow as tf

    from anatomy.data.cifar10 import read_cifar10
    from anatomy.io import read_dataset_h5
    from anatomy.models.cnn_medium import cnn_medium, compile_cnn_medium
    from anatomy.models.iic_net import IICTrainer, iic_net
    from anatomy.models.mnist_cnn import compile_mnist_cnn, mnist_cnn
    from anatomy.models.unet import compile_unet, residual_unet
    from anatomy.models.vgg import vgg_like
    from anatomy.studies.cifar import MEAN, STD
    from anatomy.studies.iic import make_pair, transform_names
    from anatomy.training.pipeline import ArrayData
    from anatomy.training.step import make_train_step

    rows, rates = [], {}
    steps = lambda s: max(2, int(round(s * scale)))  # noqa: E731

    def compare(ours, theirs):
        """Warm-up (tracing, allocation), then both sides interleaved; ours alone when planning."""
        if ours_only:
            ours()
            return best_rate(ours, repeats), float("nan")
        ours(), theirs()
        return side_by_side(ours, theirs, repeats)

    def add(name, model_name, batch, ours, theirs, flops=None):
        rates[name] = {"ours": ours, "theirs": theirs, "batch": batch, "flops": flops}
        rows.append(row(f"pipeline/{name}", f"{model_name} training, batch {batch}: workflow data path vs "
                        "model.fit on NumPy arrays", ours, theirs, "images/s", goal=0.95, device=device))

    # crops: the Keras MNIST CNN on the HDF5 file
    x, y = read_dataset_h5(paths["mnist"], "train")
    model = mnist_cnn()
    compile_mnist_cnn(model, learning_rate=1e-3, loss="binary_crossentropy")
    b = cfg["crops"]["baseline"]["batch_size"]
    data = lambda n: ArrayData(x[:n], y[:n], batch_size=b, seed=0, target=lambda t: keras.ops.one_hot(t, 10))  # noqa: E731
    xf, yh = x.astype("float32") / 255.0, np.eye(10, dtype="float32")[y]
    add("mnist_cnn", "crops MNIST CNN", b, *_fit_rates(model, data, xf, yh, batch=b, steps=steps(60), compare=compare),
        flops=training_flops(model))

    # the same CNN at batch 128: the compute-efficiency row
    if not ours_only:
        add("mnist_cnn_b128", "crops MNIST CNN", 128,
            *_fit_rates(model, lambda n: ArrayData(x[:n], y[:n], batch_size=128, seed=0,
                                                 target=lambda t: keras.ops.one_hot(t, 10)),
                        xf, yh, batch=128, steps=steps(45), compare=compare), flops=training_flops(model))

    # digits: CNNMedium (no augmentation on either side; augmentation has its own rows)
    b = cfg["digits"]["batch_size"]
    model = cnn_medium()
    compile_cnn_medium(model, learning_rate=1e-3)
    add("cnn_medium", "digits CNNMedium", b,
        *_fit_rates(model, lambda n: ArrayData(x[:n], y[:n], batch_size=b, seed=0), xf, y, batch=b, steps=steps(150),
                    compare=compare), flops=training_flops(model))

    # cifar: the VGG-like net (config widths) on the TFRecord shards
    c = cfg["cifar"]
    _, xc, yc = read_cifar10(paths["cifar10"], "train")
    mean, std = tf.constant(MEAN), tf.constant(STD)
    prep = lambda t: (tf.cast(t, tf.float32) / 255.0 - mean) / std  # noqa: E731
    model = vgg_like(widths=tuple(c["model"]["widths"]), convs_per_block=c["model"]["convs_per_block"],
                     dense=c["model"]["dense"], batchnorm=True, weight_decay=c["weight_decay"])
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    b = c["batch_size"]
    add("vgg", f"cifar VGG-like {c['model']['widths']}", b,
        *_fit_rates(model, lambda n: ArrayData(xc[:n], yc[:n], batch_size=b, seed=0, preprocess=prep), np.asarray(prep(xc)), yc,
                    batch=b, steps=steps(80), compare=compare), flops=training_flops(model))

    # iic: twins made on the fly in tf.data (ours) vs twins made once up front in NumPy (theirs)
    p = cfg["iic"]
    names = transform_names("all")
    net = iic_net(clusters=p["clusters"], overclusters=p["overclusters"], widths=tuple(p["widths"]))
    trainer = IICTrainer(net, alpha=1.0, alpha_over=1.0)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    trainer.build((None, 28, 28, 1))
    b = p["batch_size"]
    n = b * steps(50)
    xi = xf[:n]
    views = [np.asarray(v) for v in make_pair(tf.constant(xi), tf.constant([0, 1], tf.int64), names, p["transforms"],
                                              p["pair"])]
    pair = lambda t, s: make_pair(t, s, names, p["transforms"], p["pair"])  # noqa: E731

    def iic_ours():
        trainer.fit(ArrayData(x[:n], np.zeros(n, np.int64), batch_size=b, seed=0, augment=pair).dataset(0, 1),
                    epochs=1, verbose=0)
        return n

    def iic_theirs():
        trainer.fit(tuple(views), np.zeros(n, "float32"), batch_size=b, epochs=1, verbose=0)
        return n

    add("iic_net", "IIC net (twins made in the pipeline vs precomputed)", b, *compare(iic_ours, iic_theirs),
        flops=2 * training_flops(net))

    # coreset: the U-Net (config size) trained batch by batch from the HDF5 arrays, as the selection does
    from anatomy.data.ellipses import make_ellipses

    cs = cfg["coreset"]
    section = cfg["data"]["ellipses"]
    model = residual_unet(section["image_size"], **{k: cs["model"][k] for k in ("start_neurons", "depth", "dropout")},
                          batch_norm_momentum=cs["model"]["batch_norm_momentum"])
    compile_unet(model, learning_rate=1e-3)
    b = cs["batch_size"]
    n = b * steps(24)
    xe, ye = make_ellipses(n, section, np.random.default_rng(0))[:2]
    xef, yef = xe.astype("float32") / 255.0, ye.astype("float32")

    unet_step = make_train_step(model)

    def unet_ours():  # the selection's loop: the compiled step on slices of the in-memory arrays
        for s in range(0, n, b):
            unet_step(xe[s:s + b].astype("float32") / 255.0, ye[s:s + b].astype("float32"))
        return n

    def unet_theirs():
        model.fit(xef, yef, batch_size=b, epochs=1, verbose=0)
        return n

    add("unet", f"coreset residual U-Net {section['image_size']} px (the selection's compiled step vs fit)", b,
        *compare(unet_ours, unet_theirs), flops=training_flops(model))
    return rows, rates


def bench_selection(cfg: dict, *, n_pairs: int, device: str) -> dict:
    """The coreset selection from fresh weights, tracing included: the compiled step vs ``train_on_batch``.

    Both start from the same weights and dropout seeds and must select the same
    pairs (the notes say whether they did). The compiled step runs first, so any
    warm cache in this process favours the old loop.
    """
    import keras

    from anatomy.data.ellipses import make_ellipses
    from anatomy.models.unet import compile_unet, residual_unet
    from anatomy.studies.coreset import select_in_memory, unet_kwargs
    from anatomy.training.step import make_train_step

    cs, section = cfg["coreset"], cfg["data"]["ellipses"]
    x, y = make_ellipses(n_pairs, section, np.random.default_rng(1))[:2]
    params = {**cs, "image_size": section["image_size"]}

    def selection(compiled: bool):
        keras.utils.set_random_seed(0)
        model = compile_unet(residual_unet(**unet_kwargs(params)), learning_rate=cs["learning_rate"])
        t0 = time.perf_counter()
        state = select_in_memory(model, x, y, params, seed=0,
                                 train_batch=make_train_step(model) if compiled else model.train_on_batch)
        return time.perf_counter() - t0, state.selected

    t_new, new = selection(True)
    t_old, old = selection(False)
    return row("pipeline/coreset_selection", f"coreset selection of {n_pairs} pairs from fresh weights, tracing "
               "included: compiled step vs train_on_batch", n_pairs / t_new, n_pairs / t_old, "pairs/s", goal=2,
               device=device, notes=f"{t_new:.1f} s vs {t_old:.1f} s; {len(new)} pairs selected; the same pairs: "
               + ("yes" if new == old else "NO"))


# ---------------------------------------------------------------- 2. augmentation

def skimage_affine_loop(images: np.ndarray, aug: dict, seed: int) -> np.ndarray:
    """The Kaggle kernel's way: one scikit-image AffineTransform + warp per image, with probability p."""
    from skimage.transform import AffineTransform, warp

    rng = np.random.default_rng(seed)
    out = images.copy()
    side = images.shape[1]
    centre = (side - 1) / 2.0
    to_centre = AffineTransform(translation=(-centre, -centre))
    back = AffineTransform(translation=(centre, centre))
    for k in range(len(images)):
        if rng.random() >= aug["probability"]:
            continue
        t = AffineTransform(scale=tuple(rng.uniform(*aug["scale"], 2)),
                            rotation=np.deg2rad(rng.uniform(-aug["rotation_deg"], aug["rotation_deg"])),
                            shear=np.deg2rad(rng.uniform(-aug["shear_deg"], aug["shear_deg"])),
                            translation=tuple(rng.uniform(-aug["translation_px"], aug["translation_px"], 2)))
        full = to_centre + t + back
        out[k, ..., 0] = warp(images[k, ..., 0], full.inverse, order=1, mode="constant", cval=0.0)
    return out


def numpy_crop_flip_loop(images: np.ndarray, seed: int, pad: int = 4) -> np.ndarray:
    """Per-image reflect-pad, random crop and horizontal flip (the notebook-style loop)."""
    rng = np.random.default_rng(seed)
    n, h, w, _ = images.shape
    out = np.empty_like(images)
    for k in range(n):
        p = np.pad(images[k], ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        r, c = rng.integers(0, 2 * pad + 1, 2)
        crop = p[r:r + h, c:c + w]
        out[k] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return out


def bench_augment(paths: dict, cfg: dict, rates: dict, *, scale: float, repeats: int, device: str) -> list:
    import tensorflow as tf

    from anatomy.data.cifar10 import read_cifar10
    from anatomy.io import read_dataset_h5
    from anatomy.training.augment import augment_batch, pad_crop_flip

    rows = []
    aug = cfg["digits"]["augmentation"]
    b = cfg["digits"]["batch_size"]
    x, _ = read_dataset_h5(paths["mnist"], "train")
    n = max(b * 4, int(round(4000 * scale)) // b * b)
    xf = x[:n].astype("float32") / 255.0

    def pipeline_rate(fn, images, batch):
        ds = tf.data.Dataset.from_tensor_slices(images).batch(batch).enumerate()
        ds = ds.map(lambda i, t: fn(t, tf.stack([tf.constant(0, tf.int64), i])),
                    num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

        def run():
            for _ in ds:
                pass
            return len(images)
        run()
        return run

    ours = pipeline_rate(lambda t, s: augment_batch(t, s, aug), xf, b)
    theirs = lambda: len(skimage_affine_loop(xf[: n // 4], aug, seed=0))  # noqa: E731  (a quarter: it is slow)
    r_ours, r_theirs = side_by_side(ours, theirs, repeats)
    rows.append(row("augment/digits", f"affine augmentation of 28x28 digits, batch {b} in tf.data vs per-image "
                    "skimage AffineTransform + warp", r_ours, r_theirs, "images/s", device=device))
    # the same transform on one large batch inside a tf.function: its ceiling without per-batch overhead
    fused = tf.function(lambda t, s: augment_batch(t, s, aug))
    big = [tf.constant(xf[s:s + 1024]) for s in range(0, len(xf) - 1023, 1024)] or [tf.constant(xf)]
    seed = tf.constant([0, 1], tf.int64)

    def fused_run():
        for t in big:
            fused(t, seed).numpy()
        return sum(len(t) for t in big)

    fused_run()
    r_big, r_theirs2 = side_by_side(fused_run, theirs, repeats)
    rows.append(row("augment/digits_fused_1024", "the same affine transform on batches of 1024 in one tf.function "
                    "vs per-image skimage", r_big, r_theirs2, "images/s", device=device))
    train = rates.get("cnn_medium", {}).get("ours")
    if train:
        rows.append(row("augment/digits_vs_training", "augmentation throughput / CNNMedium training throughput "
                        f"(batch {b}); the goal: at least 10x the step it feeds", r_ours, train, "images/s", goal=10,
                        device=device))

    _, xc, _ = read_cifar10(paths["cifar10"], "train")
    bc = cfg["cifar"]["batch_size"]
    xcf = xc.astype("float32") / 255.0
    ours = pipeline_rate(lambda t, s: pad_crop_flip(t, s, pad=4, flip_probability=0.5), xcf, bc)
    theirs = lambda: len(numpy_crop_flip_loop(xcf, seed=0))  # noqa: E731
    r_ours, r_theirs = side_by_side(ours, theirs, repeats)
    rows.append(row("augment/cifar", f"reflect-pad 4, crop, flip of 32x32x3, batch {bc} in tf.data vs per-image "
                    "NumPy loop", r_ours, r_theirs, "images/s", device=device))
    train = rates.get("vgg", {}).get("ours")
    if train:
        rows.append(row("augment/cifar_vs_training", "crop-flip throughput / VGG-like training throughput; the goal: "
                        "at least 10x the step it feeds", r_ours, train, "images/s", goal=10, device=device))
    return rows


# ---------------------------------------------------------------- 3. synthetic data

def published_ellipses_loop(n: int, size: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A straightforward per-image generator like the post's: two full noise images per pair,
    skimage draw.ellipse / draw.polygon, overlap tested with Python sets, redrawn until disjoint."""
    from skimage import draw

    rng = np.random.default_rng(seed)
    s = size / 128.0
    r_min, r_max = 10 * s, 20 * s
    w_min, w_max = int(round(10 * s)), int(round(40 * s))
    xs = np.empty((n, size, size, 3), np.float32)
    ys = np.zeros((n, size, size, 1), np.uint8)
    for k in range(n):
        low = rng.uniform(0.0, 0.75, (size, size, 3))
        high = rng.uniform(0.25, 1.0, (size, size, 3))
        sea, boat = (low, high) if rng.random() < 0.5 else (high, low)
        cy, cx = rng.integers(int(np.ceil(r_max)), int(size - 1 - r_max) + 1, 2)
        rr, cc = draw.ellipse(cy, cx, rng.uniform(r_min, r_max), rng.uniform(r_min, r_max), shape=(size, size),
                              rotation=rng.uniform(0, np.pi))
        ship = set(zip(rr.tolist(), cc.tolist()))
        while True:
            h, w = rng.integers(w_min, w_max + 1, 2)
            r0, c0 = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
            pr, pc = draw.polygon([r0, r0, r0 + h, r0 + h], [c0, c0 + w, c0 + w, c0], shape=(size, size))
            if not ship & set(zip(pr.tolist(), pc.tolist())):
                break
        img = sea.copy()
        img[rr, cc] = boat[rr, cc]
        img[pr, pc] = boat[pr, pc]
        xs[k] = img
        ys[k, rr, cc, 0] = 1
    return xs, ys


def bench_synthetic(*, scale: float, repeats: int) -> list:
    from anatomy.data.ellipses import make_ellipses

    section = {"image_size": 128, "radius": [10, 20], "rectangle": [10, 40]}
    n = max(50, int(round(1000 * scale)))
    ours = lambda: len(make_ellipses(n, section, np.random.default_rng(0))[0])  # noqa: E731
    theirs = lambda: len(published_ellipses_loop(max(20, n // 4)))  # noqa: E731
    ours(), theirs()
    r_ours, r_theirs = side_by_side(ours, theirs, repeats)
    rng = np.random.default_rng(1)
    floor = best_rate(lambda: len(rng.integers(0, 192, (n, 128, 128, 3), dtype=np.uint8)), repeats)
    return [row("synthetic/ellipses", "ship images + masks at 128 px: vectorised generator vs per-image loop",
                r_ours, r_theirs, "pairs/s", goal=5),
            row("synthetic/ellipses_vs_floor", "vectorised generator vs drawing one uint8 noise image per pair "
                "(the floor)", r_ours, floor, "pairs/s", notes="ratio < 1; 1 would be the floor")]


# ---------------------------------------------------------------- 4. compute efficiency

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


# ---------------------------------------------------------------- 5./6. workflow

def _snakemake(args: list, cwd: Path, timeout: float = 1800) -> tuple[float, str]:
    # the folder's own Snakefile when it is a checkout: input paths such as resources/ then match its last run
    snakefile = Path(cwd) / "Snakefile" if (Path(cwd) / "Snakefile").exists() else ROOT / "Snakefile"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), *args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed in {cwd}:\n{p.stderr[-3000:]}")
    return dt, p.stdout + p.stderr


def job_total(text: str) -> int | None:
    m = re.search(r"^\s*total\s+(\d+)\s*$", text, re.M)
    return int(m.group(1)) if m else None


QUICK_BUDGET_SECONDS = 15 * 60


def last_run_seconds(workdir: Path) -> tuple[float, str] | None:
    """Wall time of the newest finished Snakemake run in ``workdir`` (its log's first to last timestamp)."""
    import datetime

    logs = sorted((Path(workdir) / ".snakemake" / "log").glob("*.snakemake.log"))
    for log in reversed(logs):
        text = log.read_text(errors="replace")
        if "(100%) done" not in text:
            continue
        stamps = [datetime.datetime.strptime(" ".join(m.split()), "%a %b %d %H:%M:%S %Y")
                  for m in re.findall(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", text, re.M)]
        if len(stamps) >= 2:
            return (stamps[-1] - stamps[0]).total_seconds(), log.name
    return None


def bench_workflow(workdir: Path) -> list:
    dt, out = _snakemake(["-n", "--quiet", "rules", "--configfile", str(ROOT / "config" / "full.yaml")], workdir)
    rows = [row("workflow/dag_full", f"DAG of config/full.yaml built and listed (dry run), {job_total(out)} jobs",
                dt, 10.0, "s", goal=1.0, higher_is_better=False, ratio=dt / 10.0,
                notes="ratio = seconds / 10 s budget")]
    dt_n, out = _snakemake(["-n", "--quiet", "rules"], workdir)
    todo = job_total(out)
    if todo:
        rows.append(row("workflow/noop_quick", "rerun of the finished quick study", float("nan"), 10.0, "s",
                        goal=1.0, higher_is_better=False, ratio=float("nan"),
                        notes=f"not measured: the quick study is not finished in {workdir} ({todo} jobs to do); "
                        "run `snakemake --cores all` first"))
    else:
        dt, _ = _snakemake(["--cores", "all"], workdir)
        rows.append(row("workflow/noop_quick", "rerun of the finished quick study (nothing to do)", dt, 10.0, "s",
                        goal=1.0, higher_is_better=False, ratio=dt / 10.0, notes="ratio = seconds / 10 s budget"))
    last = last_run_seconds(workdir)
    if last is not None:
        seconds, log = last
        rows.append(row("workflow/quick_study", "the last finished `snakemake --cores all` in the folder: wall time "
                        "(first to last timestamp of its log) / the quick study's 15-minute budget", seconds,
                        QUICK_BUDGET_SECONDS, "s", goal=1.0, higher_is_better=False,
                        notes=f"{log}; measured by the run itself, not repeated here"))
    return rows


def bench_epoch_scaling(paths: dict, cfg: dict, *, scale: float, device: str) -> list:
    import keras

    from anatomy.io import read_dataset_h5
    from anatomy.models.mnist_cnn import compile_mnist_cnn, mnist_cnn
    from anatomy.training.pipeline import ArrayData

    x, y = read_dataset_h5(paths["mnist"], "train")
    n_all = max(400, int(round(len(x) * scale)))
    b = cfg["crops"]["baseline"]["batch_size"]
    model = mnist_cnn()
    compile_mnist_cnn(model, learning_rate=1e-3, loss="binary_crossentropy")
    onehot = lambda t: keras.ops.one_hot(t, 10)  # noqa: E731
    model.fit(ArrayData(x[:b * 4], y[:b * 4], batch_size=b, seed=0, target=onehot).dataset(0, 1), verbose=0)
    sizes = [n_all // 4, n_all // 2, n_all]
    secs = []
    for n in sizes:
        t0 = time.perf_counter()
        model.fit(ArrayData(x[:n], y[:n], batch_size=b, seed=0, target=onehot).dataset(0, 1), verbose=0)
        secs.append(time.perf_counter() - t0)
    slope, intercept = np.polyfit(sizes, secs, 1)
    pred = np.polyval([slope, intercept], sizes)
    r2 = 1 - np.sum((np.array(secs) - pred) ** 2) / max(np.sum((np.array(secs) - np.mean(secs)) ** 2), 1e-12)
    return [row("scaling/epoch", f"MNIST CNN epoch (batch {b}) at {sizes} images: seconds "
                + ", ".join(f"{s:.2f}" for s in secs), slope * 1000, intercept, "s per 1000 images", ratio=r2,
                device=device, notes="theirs = intercept (s); ratio = R^2 of the linear fit")]


def scaling_config(cfg: dict) -> dict:
    """A small crops workflow: enough independent trainings for two cores to share."""
    import copy

    small = copy.deepcopy(cfg)
    small["scale"] = "custom"
    small["crops"].update({"train_size": 1000, "validation_size": 200,
                           "stopping": {"max_epochs": 1, "patience": 15, "ratio": 0.995},
                           "baseline": {"batch_size": 100, "seeds": [1, 2]},
                           "grids": {"window": {"rows": [0, 12], "cols": [7, 14]}, "as_published": {"rows": [0],
                                                                                                    "cols": [14]}}})
    small["coreset"]["enabled"] = False
    return small


def bench_cores(cfg: dict, *, full_quick: bool) -> list:
    import yaml

    rows = []
    target = [] if full_quick else ["results/crops/windows.csv"]
    times = {}
    for cores in (1, 2):
        with tempfile.TemporaryDirectory(prefix="bench-cores-") as d:
            d = Path(d)
            (d / "config").mkdir()
            conf = cfg if full_quick else scaling_config(cfg)
            (d / "config" / "config.yaml").write_text(yaml.safe_dump(conf, sort_keys=False))
            # the data step is shared: build it first, untimed, so both runs time the trainings alone
            _snakemake(["--cores", "2", "results/data/mnist.h5"], d)
            times[cores], out = _snakemake(["--cores", str(cores), *target], d, timeout=4 * 3600)
    what = "the quick study" if full_quick else "a small crops workflow (2 baselines, 5 windows, tables)"
    rows.append(row("scaling/cores", f"{what}: wall time with --cores 1 / with --cores 2", times[1], times[2], "s",
                    notes="ratio = parallel speedup (2 = perfect)"))
    return rows


# ---------------------------------------------------------------- main

def versions() -> str:
    import tensorflow as tf

    import snakemake

    return (f"python {platform.python_version()}, tensorflow {tf.__version__}, numpy {np.__version__}, "
            f"snakemake {snakemake.__version__}, {os.cpu_count()} CPUs, {platform.machine()}")


def bench_startup(*, repeats: int) -> list:
    """A training job's Keras import, as ``configure_tensorflow`` does it (without the extras no job uses)
    against a plain ``import keras``: each in a fresh interpreter, the best of ``repeats``."""
    code = {"ours": "from anatomy.training.setup import import_keras; import_keras()", "theirs": "import keras"}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT / "scripts")}
    best = {}
    for k, c in code.items():
        times = []
        for _ in range(max(1, repeats)):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", c], check=True, env=env, capture_output=True)
            times.append(time.perf_counter() - t)
        best[k] = min(times)
    return [row("startup/keras_import", "a fresh interpreter importing Keras and TensorFlow: without its optional "
                "scikit-learn and IPython extras (as every training job) vs plain `import keras`", best["ours"],
                best["theirs"], "s", goal=0.9, higher_is_better=False)]


PARTS = ("pipeline", "augment", "synthetic", "flops", "workflow", "scaling", "startup")


def run(*, out: Path, parts=PARTS, scale: float = 1.0, repeats: int = 3, workdir: Path = Path("."),
        configfile: Path | None = None, full_quick: bool = False, threads: int | None = None):
    import pandas as pd
    import yaml

    from anatomy.io import atomic_path
    from anatomy.training.setup import configure_tensorflow, device_info

    warnings.filterwarnings("ignore", message=".*ran out of data.*")  # one finite epoch per fit, on purpose
    warnings.filterwarnings("ignore", message=".*shuffle=True.*")
    cfg = yaml.safe_load(Path(configfile or ROOT / "config" / "config.yaml").read_text())
    try:
        info = configure_tensorflow(threads=threads or os.cpu_count() or 1, seed=0)
    except RuntimeError:  # TensorFlow already running in this process (tests): keep its threads
        info = device_info()
    device = info["device"] + (f" ({info['device_name']})" if info["device"] == "GPU" else "")
    rows, rates = [], {}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-data-") as d:
        paths = build_data(Path(d))
        needs_rates = {"pipeline", "augment", "flops"} & set(parts)
        if needs_rates:
            r, rates = bench_pipeline(paths, cfg, scale=scale, repeats=repeats, device=device)
            if "pipeline" in parts:
                rows += r + [bench_selection(cfg, n_pairs=max(12, int(round(40 * scale))), device=device)]
        if "augment" in parts:
            rows += bench_augment(paths, cfg, rates, scale=scale, repeats=repeats, device=device)
        if "synthetic" in parts:
            rows += bench_synthetic(scale=scale, repeats=repeats)
        if "flops" in parts:
            rows += bench_flops(rates, device=device)
        if "workflow" in parts:
            rows += bench_workflow(Path(workdir))
        if "scaling" in parts:
            rows += bench_epoch_scaling(paths, cfg, scale=scale, device=device)
            rows += bench_cores(cfg, full_quick=full_quick)
        if "startup" in parts:
            rows += bench_startup(repeats=repeats)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["versions"] = versions()
    table["seconds_total"] = round(time.perf_counter() - t_start, 1)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    return table


def format_table(table) -> str:
    def fmt(v):
        if isinstance(v, float):
            return "" if not np.isfinite(v) else (f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}")
        return str(v)

    cols = ["row", "ours", "theirs", "unit", "ratio", "goal", "met", "device"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        lines.append("| " + " | ".join(fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m anatomy.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results/bench/bench.csv"))
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every step/image count (0.1: smoke run)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats per side (best kept)")
    ap.add_argument("--configfile", type=Path, default=None, help="config whose models and batches are measured "
                    "(default: config/config.yaml)")
    ap.add_argument("--workdir", type=Path, default=Path("."), help="folder of the finished quick study (no-op row)")
    ap.add_argument("--full-quick", action="store_true", help="time the whole quick study with --cores 1 and 2 "
                    "(about an hour on 2 CPU cores) instead of a small crops workflow")
    ap.add_argument("--threads", type=int, default=None, help="TensorFlow threads (default: all CPUs)")
    a = ap.parse_args(argv)
    parts = tuple(p.strip() for p in a.parts.split(",") if p.strip())
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"--parts: unknown {sorted(unknown)}; choose from {', '.join(PARTS)}")
    table = run(out=a.out, parts=parts, scale=a.scale, repeats=a.repeats, workdir=a.workdir,
                configfile=a.configfile, full_quick=a.full_quick, threads=a.threads)
    print(format_table(table))
    print(f"\n{table['versions'].iloc[0]}; {table['seconds_total'].iloc[0]} s; written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
