"""Study 2 (cifar): what a VGG-like net learns from CIFAR-10, after "CIFAR10 and many graphs".

Sub-experiments: BatchNorm vs none over learning rates (plain SGD, constant
rate, L2 1e-4), noisy BN (Santurkar et al. 2018), augmentation, corrupted
labels and corrupted pixels (Zhang et al. 2017). Every variant is a file that
stores only what differs from the TFRecords, keyed by the records' ``index``.
"""

from __future__ import annotations

import numpy as np

# CIFAR-10 per-channel statistics of the training set (pixel / 255).
MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], np.float32)

PIXEL_KINDS = ("fixed_permutation", "per_image_permutation", "gaussian_per_image", "gaussian_dataset")


# ---------------------------------------------------------------- variants (numpy only)

def corrupt_labels(y, p: float, seed: int, num_classes: int = 10) -> dict:
    """Zhang et al.: each label is redrawn with probability p uniformly from all classes.

    A redrawn label stays right one time in ten, so about 0.9 p of labels change;
    both rates are recorded.
    """
    rng = np.random.default_rng([seed, int(round(p * 1000))])
    redrawn = rng.random(len(y)) < p
    new = np.where(redrawn, rng.integers(0, num_classes, len(y)), y)
    return {"labels": new.astype(np.int64), "redrawn": redrawn, "changed": new != y}


def fixed_permutation(seed: int, pixels: int = 1024) -> np.ndarray:
    return np.random.default_rng([seed, 1]).permutation(pixels)


def permute_pixels(x, perm) -> np.ndarray:
    """Move pixel positions (channels stay together) by ``perm`` (one per image when 2-D)."""
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    if perm.ndim == 1:
        return flat[:, perm].reshape(x.shape)
    return np.take_along_axis(flat, perm[:, :, None], axis=1).reshape(x.shape)


def per_image_permutations(n: int, seed: int, pixels: int = 1024) -> np.ndarray:
    rng = np.random.default_rng([seed, 2])
    return np.argsort(rng.random((n, pixels)), axis=1)


def gaussian_images(x, seed: int, *, per_image: bool) -> np.ndarray:
    """Independent Gaussian pixels with each image's own mean and sd (the notebook),
    or with one mean and sd for the whole dataset (Zhang et al.); rounded and clipped to uint8."""
    rng = np.random.default_rng([seed, 3 if per_image else 4])
    xf = x.astype(np.float32)
    if per_image:
        mean = xf.mean(axis=(1, 2, 3), keepdims=True)
        sd = xf.std(axis=(1, 2, 3), keepdims=True)
    else:
        mean, sd = xf.mean(), xf.std()
    g = rng.standard_normal(x.shape, dtype=np.float32) * sd + mean
    return np.clip(np.rint(g), 0, 255).astype(np.uint8)


def make_pixel_variant(kind: str, x_train, x_test, seed: int) -> dict:
    """Arrays that override the TFRecords: ``train_images`` (and ``test_images`` when test changes too)."""
    if kind == "fixed_permutation":
        perm = fixed_permutation(seed)
        return {"train_images": permute_pixels(x_train, perm), "test_images": permute_pixels(x_test, perm),
                "permutation": perm}
    if kind == "per_image_permutation":
        return {"train_images": permute_pixels(x_train, per_image_permutations(len(x_train), seed))}
    if kind == "gaussian_per_image":
        return {"train_images": gaussian_images(x_train, seed, per_image=True)}
    if kind == "gaussian_dataset":
        return {"train_images": gaussian_images(x_train, seed, per_image=False)}
    raise ValueError(f"unknown pixel corruption '{kind}' (use {', '.join(PIXEL_KINDS)})")


def apply_variant(index, x, y, variant: dict | None, split: str):
    """Override images/labels by position ``index`` with a variant file's arrays."""
    if not variant:
        return x, y
    if f"{split}_index" in variant:
        if not np.array_equal(variant[f"{split}_index"], index):
            raise ValueError(f"variant does not match the {split} records (index mismatch); rebuild it")
    if split == "train" and "labels" in variant:
        y = variant["labels"]
    if f"{split}_images" in variant:
        x = variant[f"{split}_images"]
    return x, y


# ---------------------------------------------------------------- training

def train_cifar_run(*, manifest, files, spec: dict, model_cfg: dict, train_cfg: dict, variant=None, threads: int,
                    seed: int, deterministic: bool, precision: str = "float32") -> dict:
    """Train one VGG-like run under the training contract; test accuracy recorded every epoch."""
    from anatomy.training.setup import configure_tensorflow

    device = configure_tensorflow(threads=threads, seed=seed, deterministic=deterministic, precision=precision)
    import keras
    import tensorflow as tf

    from anatomy.data.cifar10 import read_cifar10
    from anatomy.models.vgg import vgg_like
    from anatomy.training.augment import pad_crop_flip
    from anatomy.training.contract import EvaluateEachEpoch, fit_with_contract
    from anatomy.training.pipeline import ArrayData

    idx_tr, x_tr, y_tr = read_cifar10(manifest, "train")
    idx_te, x_te, y_te = read_cifar10(manifest, "test")
    x_tr, y_tr = apply_variant(idx_tr, x_tr, y_tr, variant, "train")
    x_te, y_te = apply_variant(idx_te, x_te, y_te, variant, "test")
    n = train_cfg["train_size"] or len(x_tr)
    x_tr, y_tr = x_tr[:n], y_tr[:n]
    mean, std = tf.constant(MEAN), tf.constant(STD)
    prep = lambda x: (tf.cast(x, tf.float32) / 255.0 - mean) / std  # noqa: E731
    augment = None
    if spec.get("augment"):
        augment = lambda xb, s: pad_crop_flip(xb, s, pad=4, flip_probability=0.5)  # noqa: E731
    model = vgg_like(widths=tuple(model_cfg["widths"]), convs_per_block=model_cfg["convs_per_block"],
                     dense=model_cfg["dense"], batchnorm=spec["batchnorm"], noise=spec.get("noise"),
                     weight_decay=train_cfg["weight_decay"])
    model.compile(optimizer=keras.optimizers.SGD(spec["learning_rate"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    data = ArrayData(x_tr, y_tr, batch_size=train_cfg["batch_size"], seed=seed, preprocess=prep, augment=augment)
    test = (np.asarray(prep(x_te)), y_te)

    def evaluate(m):
        return m.evaluate(*test, batch_size=500, verbose=0, return_dict=True)

    return fit_with_contract(
        model, data, epochs=train_cfg["epochs"], files=files, callbacks=[EvaluateEachEpoch(test, prefix="test_",
                                                                                           batch_size=500)],
        evaluate=evaluate,
        info={"spec": spec, "model": model_cfg, "train": train_cfg, "seed": seed, "train_images": int(n),
              "variant": variant.get("description") if variant else None,
              "noise_at_test_time": False, **device},
    )


# ---------------------------------------------------------------- aggregation (no TensorFlow)

def epochs_to(history, column: str, level: float):
    """First epoch whose ``column`` reaches ``level`` (NaN if never)."""
    hit = history.index[history[column] >= level]
    return float(history.loc[hit[0], "epoch"]) if len(hit) else float("nan")


def run_summary(name: str, history, metrics: dict) -> dict:
    h = history
    finite = h[np.isfinite(h["loss"])]
    return {
        "run": name,
        "final_test_accuracy": float(finite["test_accuracy"].iloc[-1]) if len(finite) else float("nan"),
        "best_test_accuracy": float(finite["test_accuracy"].max()) if len(finite) else float("nan"),
        "final_train_accuracy": float(finite["accuracy"].iloc[-1]) if len(finite) else float("nan"),
        "epochs_to_90pct_train_accuracy": epochs_to(finite, "accuracy", 0.9),
        "epochs_run": int(len(h)),
        "diverged": bool(metrics.get("diverged")),
        "converged": bool(len(finite) and finite["accuracy"].iloc[-1] > 0.2 and not metrics.get("diverged")),
    }
