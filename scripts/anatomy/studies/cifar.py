"""Study 2 (cifar): what a VGG-like net learns from CIFAR-10, after "CIFAR10 and many graphs".

Sub-experiments: BatchNorm vs none over learning rates (plain SGD, constant
rate, L2 1e-4), noisy BN (Santurkar et al. 2018), augmentation, corrupted
labels and corrupted pixels (Zhang et al. 2017). Every variant is a file that
stores only what differs from the TFRecords, keyed by the records' ``index``.

Noisy BN at test time: the noise layer is the identity at test, so every
BatchNorm after it normalises with moving statistics gathered under noise
(E[s] = 1.5 at scale_max 2). The noisy run therefore reports three test
accuracies (:func:`noisy_bn_test_accuracies`): (a) noise off, as trained (the
artefact), (b) noise on, over seeded draws (the net under the noise it was
trained with) and (c) noise off after re-estimating every BN's moving mean and
variance on the clean training images (:func:`reestimate_bn_statistics`; the
network itself, the number that answers Santurkar et al.).

This module holds the variants, the training step and the noisy-BN
evaluations; the tables, the figures' groups and the published claims are
:mod:`anatomy.studies.cifar_results`.
"""

from __future__ import annotations

import numpy as np

from anatomy.training.setup import RunSettings

# CIFAR-10 per-channel statistics of the training set (pixel / 255).
MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], np.float32)


def normalize(x):
    """uint8 images -> float32 standardised per channel by the CIFAR-10 training set's MEAN and STD (TensorFlow
    ops: the input pipeline's ``preprocess``; the study, its benchmarks)."""
    import tensorflow as tf

    return (tf.cast(x, tf.float32) / 255.0 - tf.constant(MEAN)) / tf.constant(STD)

# Training images (the first ones, un-augmented) whose statistics replace the BN moving statistics
# when a run's test accuracy is re-estimated (noisy BN, and the BN run it is compared with).
REESTIMATE_IMAGES = 10_000

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

def start_from(model, init_weights, model_cfg: dict) -> dict:
    """Set ``model``'s conv and dense weights from a seed's initial-weights file (the net of ``model_cfg``
    without BN): every setting of that seed, BN or not, noisy or not, starts from the same kernels;
    BN's own weights keep their constant start. Returns the record metrics.json keeps."""
    from anatomy.models.vgg import vgg_like
    from anatomy.training.init_weights import weights_fingerprint

    ref = vgg_like(**model_cfg, batchnorm=False, weight_decay=0.0)
    ref.load_weights(init_weights)
    src, dst = _weighted(ref), _weighted(model)
    if [a.kernel.shape for a in src] != [b.kernel.shape for b in dst]:
        raise ValueError(f"{init_weights} does not match {model.name}'s conv and dense layers")
    for a, b in zip(src, dst):
        b.kernel.assign(a.kernel)
        if b.bias is not None:
            b.bias.assign(a.bias)
    return {"file": str(init_weights), "fingerprint": weights_fingerprint(ref.get_weights())}


def _weighted(model) -> list:
    """The conv and dense layers of ``model``, in order."""
    from keras import layers

    return [layer for layer in model.layers if isinstance(layer, (layers.Conv2D, layers.Dense))]


def train_cifar_run(*, manifest, files, spec: dict, model_cfg: dict, train_cfg: dict, init_weights, variant=None,
                    run_settings: RunSettings) -> dict:
    """Train one VGG-like run under the training contract, from its seed's initial weights and in its
    seed's data order; test accuracy recorded every epoch."""
    from anatomy.training.setup import configure_tensorflow

    device = configure_tensorflow(run_settings)
    seed = run_settings.seed
    import keras

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
    prep = normalize
    augment = None
    if spec.get("augment"):
        augment = lambda xb, s: pad_crop_flip(xb, s, pad=4, flip_probability=0.5)  # noqa: E731
    model = vgg_like(widths=tuple(model_cfg["widths"]), convs_per_block=model_cfg["convs_per_block"],
                     dense=model_cfg["dense"], batchnorm=spec["batchnorm"], noise=spec.get("noise"),
                     weight_decay=train_cfg["weight_decay"])
    init = start_from(model, init_weights, model_cfg)
    model.compile(optimizer=keras.optimizers.SGD(spec["learning_rate"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    data = ArrayData(x_tr, y_tr, batch_size=train_cfg["batch_size"], seed=seed, preprocess=prep, augment=augment)
    test = (np.asarray(prep(x_te)), y_te)

    noise_draws = int(spec.get("noise_test_draws", 5))
    x_clean = x_tr[:REESTIMATE_IMAGES]  # un-augmented training images for re-estimating BN statistics

    def evaluate(m):
        res = m.evaluate(*test, batch_size=500, verbose=0, return_dict=True)
        # The saved model keeps its trained statistics: both helpers restore them.
        if spec.get("noise"):  # the three noisy-BN test accuracies
            res.update(noisy_bn_test_accuracies(m, test[0], y_te, x_clean, draws=noise_draws, seed=seed,
                                                train_preprocess=lambda xb: np.asarray(prep(xb))))
        elif spec.get("reestimate_bn"):  # the BN run the noisy one is compared with, like for like
            res.update(reestimated_test_accuracy(m, test[0], y_te, x_clean,
                                                 train_preprocess=lambda xb: np.asarray(prep(xb))))
        return res

    return fit_with_contract(
        model, data, epochs=train_cfg["epochs"], files=files, callbacks=[EvaluateEachEpoch(test, prefix="test_",
                                                                                           batch_size=500)],
        evaluate=evaluate,
        info={"spec": spec, "model": model_cfg, "train": train_cfg, "seed": seed, "init": init,
              "train_images": int(n), "test_images": int(len(y_te)),
              "variant": variant.get("description") if variant else None,
              "noise_at_test_time": False, **device},
    )


# ---------------------------------------------------------------- noisy BN at test time (TensorFlow, lazily)

def _chain(model) -> list:
    """The layers of a one-input, one-path functional model in order (the input layer left out)."""
    layers = [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"]
    prev = model.inputs[0]
    for layer in layers:
        if layer.input is not prev:
            raise ValueError(f"{model.name} is not a chain of layers at '{layer.name}'")
        prev = layer.output
    return layers


def _noise_layers(layers) -> list:
    from anatomy.models.vgg import NoisyBN

    return [layer for layer in layers if isinstance(layer, NoisyBN)]


def _run(layers, x, noise=None):
    """``x`` through ``layers`` in inference mode (BN on moving statistics, no dropout); each NoisyBN
    is the identity, or ``x * s + m`` with ``noise[layer.name] = (s, m)`` (one value per channel)."""
    from keras import ops

    from anatomy.models.vgg import NoisyBN

    for layer in layers:
        if isinstance(layer, NoisyBN):
            if noise is not None:
                s, m = noise[layer.name]
                x = x * ops.cast(s, x.dtype) + ops.cast(m, x.dtype)
        else:
            x = layer(x, training=False)
    return x


def _batches(x, batch_size: int, preprocess=None):
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        yield preprocess(xb) if preprocess is not None else xb


def predict_classes(model, x, *, noise=None, batch_size: int = 500, preprocess=None) -> np.ndarray:
    """Arg-max class of every image, in inference mode, with the noise layers off or set by ``noise``."""
    layers = _chain(model)
    out = [np.argmax(np.asarray(_run(layers, xb, noise)), axis=-1)
           for xb in _batches(x, batch_size, preprocess)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def draw_noise(model, rng: np.random.Generator) -> dict:
    """One noise draw for every NoisyBN layer, as one training step draws it:
    per channel s ~ U(1, scale_max) and m ~ U(-shift, shift), shared by every image."""
    draw = {}
    for layer in _noise_layers(_chain(model)):
        c = int(layer.output.shape[-1])
        s = rng.uniform(1.0, layer.scale_max, c).astype(np.float32)
        m = rng.uniform(-layer.shift, layer.shift, c).astype(np.float32)
        draw[layer.name] = (s, m)
    return draw


def reestimate_bn_statistics(model, x, *, batch_size: int = 500, preprocess=None) -> list[dict]:
    """Set every BatchNorm's moving mean and variance to the exact mean and (biased) variance of its
    input over the images ``x``, with every noise layer off and every layer in inference mode.

    Layer by layer in order, so each layer's input is computed with the earlier
    layers' new statistics (what a BN sees at test time). Only the moving
    statistics change: kernels, gamma and beta, and the optimizer stay as they
    are. Returns, per BN layer, the mean absolute change of its mean and the
    mean ratio of new to old variance.
    """
    from keras import layers as klayers, ops

    chain = _chain(model)
    changes = []
    for k, bn in enumerate(chain):
        if not isinstance(bn, klayers.BatchNormalization):
            continue
        rank = len(bn.input.shape)
        if bn.axis not in (-1, rank - 1):
            raise ValueError(f"{bn.name}: only channels-last BatchNormalization is supported")
        s1 = s2 = 0.0
        count = 0
        for xb in _batches(x, batch_size, preprocess):
            # each batch's moments in float32, combined exactly in float64
            h = ops.cast(_run(chain[:k], xb), "float32")
            axes = list(range(rank - 1))
            mean_b, var_b = (np.asarray(v, np.float64) for v in ops.moments(h, axes))
            w = int(np.prod(h.shape[:-1]))
            s1, s2, count = s1 + w * mean_b, s2 + w * (var_b + np.square(mean_b)), count + w
        mean = s1 / count
        var = np.maximum(s2 / count - np.square(mean), 0.0)
        old_mean, old_var = np.asarray(bn.moving_mean), np.asarray(bn.moving_variance)
        bn.moving_mean.assign(mean.astype(old_mean.dtype))
        bn.moving_variance.assign(var.astype(old_var.dtype))
        changes.append({"layer": bn.name, "mean_abs_change_of_mean": float(np.abs(mean - old_mean).mean()),
                        "mean_variance_ratio": float(np.mean(var / np.maximum(old_var, 1e-12)))})
    return changes


def noisy_bn_test_accuracies(model, x_test, y_test, x_train, *, draws: int, seed: int, batch_size: int = 500,
                             train_preprocess=None) -> dict:
    """The three test accuracies of a noisy-BN net, side by side.

    - ``accuracy_noise_off``: noise off, BN on the moving statistics gathered under
      noise (what ``evaluate`` reports; the evaluation artefact);
    - ``accuracy_noise_on_mean`` / ``_sd`` / ``_draws``: noise on, ``draws`` seeded
      draws (one s, m per channel and layer for the whole test set, as one training
      step draws them for its batch): the net under the noise it was trained with;
    - ``accuracy_bn_reestimated``: noise off after :func:`reestimate_bn_statistics`
      on the clean training images ``x_train`` (preprocessed by ``train_preprocess``):
      the network itself.

    ``model`` is left as it came: its moving statistics are restored afterwards.
    """
    y = np.asarray(y_test).reshape(-1)

    def accuracy(noise=None) -> float:
        return float((predict_classes(model, x_test, noise=noise, batch_size=batch_size) == y).mean())

    off = accuracy()
    on = [accuracy(draw_noise(model, np.random.default_rng([seed, 16, k]))) for k in range(draws)]
    return {
        "accuracy_noise_off": off,
        "accuracy_noise_on_mean": float(np.mean(on)) if on else float("nan"),
        "accuracy_noise_on_sd": float(np.std(on, ddof=1)) if len(on) > 1 else float("nan"),
        "accuracy_noise_on_draws": on,
        **reestimated_test_accuracy(model, x_test, y, x_train, batch_size=batch_size,
                                    train_preprocess=train_preprocess),
    }


def reestimated_test_accuracy(model, x_test, y_test, x_train, *, batch_size: int = 500,
                              train_preprocess=None) -> dict:
    """Test accuracy (noise off) after :func:`reestimate_bn_statistics` on ``x_train``; the model's own
    moving statistics are restored afterwards. Also applied to the plain BN run the noisy one is
    compared with, so that both are scored with exact statistics (a short run's moving averages
    still lag: momentum 0.99 over a few hundred steps)."""
    from keras import layers as klayers

    y = np.asarray(y_test).reshape(-1)
    bns = [layer for layer in _chain(model) if isinstance(layer, klayers.BatchNormalization)]
    saved = [(np.asarray(bn.moving_mean).copy(), np.asarray(bn.moving_variance).copy()) for bn in bns]
    try:
        changes = reestimate_bn_statistics(model, x_train, batch_size=batch_size, preprocess=train_preprocess)
        pred = predict_classes(model, x_test, batch_size=batch_size)
    finally:
        for bn, (mean, var) in zip(bns, saved):
            bn.moving_mean.assign(mean)
            bn.moving_variance.assign(var)
    return {
        "accuracy_bn_reestimated": float((pred == y).mean()),
        "bn_reestimation": {"images": int(len(x_train)), "method": "exact mean and variance of each BN's input, "
                            "layer by layer, inference mode, noise off; weights unchanged", "layers": changes},
    }
