"""Rows ``augment/*``: the batched affine transform and pad-crop-flip vs the per-image loops they replace."""

from __future__ import annotations

import numpy as np

from anatomy.bench.common import row, side_by_side


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
