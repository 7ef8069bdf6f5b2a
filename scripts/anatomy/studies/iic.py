"""Study 3 (iic): unsupervised MNIST clustering by Invariant Information Clustering.

After a post that implemented IIC (Ji, Henriques, Vedaldi 2019) in TensorFlow 2
and reported 85% (alpha 1) and 97.5% (alpha 10) on MNIST. Each image X gives
a pair of views: the post's (X, T(X)), or two independent transforms
(T1(X), T2(X)) as in Ji et al.'s own code (``iic.pair``); the network maximises
the mutual information between the cluster assignments of the two views.
Labels are used only to score: clusters are mapped to labels by the Hungarian
method, and the result we report is chosen by the IIC loss, never by the labels
(the post's 97.5% was the best accuracy seen during training, i.e. chosen with
the evaluation labels).

This module trains (pairs, transforms, the trainer and its per-epoch
evaluation) and holds the uniform-point analysis; the runs table, the
summary and the claims are :mod:`anatomy.studies.iic_results`.
"""

from __future__ import annotations

import numpy as np

from anatomy.training.setup import RunSettings

TRANSFORMS = ("rotate", "distort", "binarize", "noise")
# Colour images: the geometric transforms, a colour jitter and noise, each per channel (binarize is for ink on paper).
COLOUR_TRANSFORMS = ("rotate", "distort", "jitter", "noise")
PAIRS = ("image_and_twin", "two_twins")


def transform_names(transform_set: str) -> tuple:
    """'all' -> the four transforms; a single name -> itself."""
    if transform_set == "all":
        return TRANSFORMS
    if transform_set not in TRANSFORMS:
        raise ValueError(f"unknown transform set '{transform_set}' (use all or one of {', '.join(TRANSFORMS)})")
    return (transform_set,)


def make_twin(x, seed, names, p: dict):
    """T(x) for a float batch in [0, 1]: the chosen transforms, batched and stateless-seeded.

    rotate: uniform angle in +-rotation_deg; distort: shear in +-shear_deg and
    scale in [scale_min, scale_max] per axis (rotation and distortion fused in
    one affine warp); binarize: x > threshold; noise: + N(0, noise_std), clipped.
    """
    import tensorflow as tf

    from anatomy.training.augment import augment_batch

    seed = tf.cast(seed, tf.int64)
    out = x
    rot = p["rotation_deg"] if "rotate" in names else 0.0
    shear = p["shear_deg"] if "distort" in names else 0.0
    scale = (p["scale_min"], p["scale_max"]) if "distort" in names else (1.0, 1.0)
    if rot or shear or scale != (1.0, 1.0):
        aug = {"probability": 1.0, "scale": scale, "rotation_deg": rot, "shear_deg": shear, "translation_px": 0.0}
        out = augment_batch(out, tf.random.experimental.stateless_fold_in(seed, 1), aug)
    if "binarize" in names:
        out = tf.cast(out > p["binarize_threshold"], out.dtype)
    if "jitter" in names:
        shape = tf.stack([tf.shape(out)[0], 1, 1, tf.shape(out)[3]])
        gain, shift = (tf.random.stateless_uniform(shape, tf.random.experimental.stateless_fold_in(seed, k),
                                                   -p["jitter"] * w, p["jitter"] * w) for k, w in ((4, 1.0), (5, 0.5)))
        out = tf.clip_by_value(out * (1.0 + gain) + shift, 0.0, 1.0)
    if "noise" in names:
        noise = tf.random.stateless_normal(tf.shape(out), tf.random.experimental.stateless_fold_in(seed, 2),
                                           stddev=p["noise_std"])
        out = tf.clip_by_value(out + noise, 0.0, 1.0)
    return out


def make_pair(x, seed, names, p: dict, pair: str):
    """The two views of a batch: ``image_and_twin`` = (x, T(x)), the post's pair; ``two_twins`` =
    (T1(x), T2(x)), two independent draws of the same transforms (the twin is the one the post's pair has)."""
    import tensorflow as tf

    if pair not in PAIRS:
        raise ValueError(f"iic.pair: unknown pair '{pair}' (use {' or '.join(PAIRS)})")
    twin = make_twin(x, seed, names, p)
    if pair == "image_and_twin":
        return x, twin
    return make_twin(x, tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 3), names, p), twin


def hungarian_accuracy(labels, clusters, k: int | None = None) -> tuple[float, dict]:
    """Best one-to-one cluster -> label mapping (scipy's linear_sum_assignment) and its accuracy."""
    from scipy.optimize import linear_sum_assignment

    labels, clusters = np.asarray(labels), np.asarray(clusters)
    k = k or int(max(labels.max(), clusters.max()) + 1)
    c = contingency(clusters, labels, k, k)
    rows, cols = linear_sum_assignment(-c)
    return float(c[rows, cols].sum() / len(labels)), dict(zip(rows.tolist(), cols.tolist()))


def contingency(clusters, labels, n_clusters: int, n_labels: int) -> np.ndarray:
    c = np.zeros((n_clusters, n_labels), dtype=np.int64)
    np.add.at(c, (np.asarray(clusters), np.asarray(labels)), 1)
    return c


def purity(labels, clusters, n_clusters: int, n_labels: int = 10) -> float:
    """Overclustering score: each cluster votes for its majority label."""
    c = contingency(clusters, labels, n_clusters, n_labels)
    return float(c.max(axis=1).sum() / max(1, len(labels)))


def evaluation_callback(net, x_eval, y_eval, x_eval_a, x_eval_b, *, alpha: float, alpha_over: float, clusters: int,
                        overclusters: int, n_labels: int = 10, keep_assignments: bool = False):
    """The per-epoch evaluation of an IIC run on held-out images ``x_eval`` and their fixed pair
    (``x_eval_a``, ``x_eval_b``; ``x_eval_a is x_eval`` for the post's pair): the IIC loss of the pair
    (``eval_loss``, label-free: the model-selection criterion), the Hungarian accuracy of the ``clusters``-way
    head and the purity of the ``overclusters``-way head against ``y_eval`` (labels 0..n_labels-1, used only to
    score), the joint matrix P of the main head and, with ``keep_assignments``, each image's cluster and
    overcluster (``assignments``: per epoch, for a confusion table at the loss-selected epoch). A Keras callback
    whose record is backed up with the run."""
    import tensorflow as tf

    from anatomy.models.iic_net import iic_loss, joint_distribution
    from anatomy.training.contract import RecordEachEpoch

    net_out = lambda x: net.predict(x, batch_size=1000, verbose=0)  # noqa: E731

    class Evaluate(RecordEachEpoch):
        name, fields = "iic_evaluate", ("p_history", "assignments")

        def on_epoch_end(self, epoch, logs=None):
            z, z_over = net_out(x_eval)  # the clusters of the images themselves: what is scored with labels
            za, za_over = (z, z_over) if x_eval_a is x_eval else net_out(x_eval_a)  # no second pass over x
            zt, zt_over = net_out(x_eval_b)
            # the pair loss of the outputs above (inference mode: the same as one pass over both views)
            lz, lo = (float(iic_loss(tf.constant(a), tf.constant(b), w))
                      for a, b, w in ((za, zt, alpha), (za_over, zt_over, alpha_over)))
            loss = (lz + lo) / 2.0
            acc, _ = hungarian_accuracy(y_eval, z.argmax(1), max(clusters, n_labels))
            logs.update({"eval_loss": float(loss), "eval_loss_z": float(lz), "eval_loss_z_over": float(lo),
                         "test_accuracy": acc,
                         "test_over_purity": purity(y_eval, z_over.argmax(1), overclusters, n_labels)})
            self.p_history.append(np.asarray(joint_distribution(tf.constant(za), tf.constant(zt))).round(6).tolist())
            if keep_assignments:
                self.assignments.append([z.argmax(1).tolist(), z_over.argmax(1).tolist()])

    return Evaluate()


def iic_trainer(x_train, params: dict, *, names, alpha: float, alpha_over: float, seed: int):
    """The IIC network for ``x_train``'s image shape, its compiled :class:`IICTrainer` and the pairs it trains on.

    ``params``: ``clusters``, ``overclusters``, ``widths``, ``head``, ``batch_size``, ``learning_rate``,
    ``alpha_warmup_epochs``, ``pair`` and ``transforms`` (the parameters of ``names``). Returns
    ``(net, trainer, data, warmup_steps)``; ``data`` is an :class:`ArrayData` of (pair, unused label) batches.
    """
    import keras

    from anatomy.models.iic_net import IICTrainer, iic_net
    from anatomy.training.pipeline import ArrayData

    net = iic_net(input_shape=tuple(x_train.shape[1:]), clusters=params["clusters"],
                  overclusters=params["overclusters"], widths=tuple(params["widths"]),
                  head=params["head"])
    pair = lambda x, s: make_pair(x, s, names, params["transforms"], params["pair"])  # noqa: E731
    data = ArrayData(x_train, np.zeros(len(x_train), np.int64), batch_size=params["batch_size"], seed=seed,
                     augment=pair)
    warmup_steps = round(params["alpha_warmup_epochs"] * data.steps_per_epoch)
    trainer = IICTrainer(net, alpha=alpha, alpha_over=alpha_over, alpha_warmup_steps=warmup_steps)
    trainer.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]))
    trainer.build((None, *x_train.shape[1:]))
    return net, trainer, data, warmup_steps


def fit_iic(x_train, x_test, y_test, params: dict, *, names, alpha: float, alpha_over: float, seed: int, epochs: int,
            files: dict, evaluation: dict, predictions, info: dict) -> dict:
    """An IIC run on ``x_train`` (never its labels) under the training contract, scored each epoch on
    ``x_test`` and a fixed pair of it (:func:`evaluation_callback` with ``evaluation``); predictions.npz holds
    both heads' outputs on ``x_test``, ``y_test`` and ``predictions(x_eval, callback)``'s arrays.
    The shared skeleton of the study's runs and the own-dataset clustering part."""
    import tensorflow as tf

    from anatomy.io import write_npz
    from anatomy.training.contract import fit_with_contract

    x_eval = tf.constant(x_test.astype("float32") / 255.0)
    # the label-free selection criterion scores the same kind of pair the model trains on (fixed seeds)
    x_eval_a, x_eval_b = make_pair(x_eval, tf.constant([seed, 999_999], tf.int64), names, params["transforms"],
                                   params["pair"])
    net, trainer, data, warmup_steps = iic_trainer(x_train, params, names=names, alpha=alpha, alpha_over=alpha_over,
                                                   seed=seed)
    evaluate_cb = evaluation_callback(net, x_eval, y_test, x_eval_a, x_eval_b, **evaluation)

    def finish(m, metrics):
        z, z_over = net.predict(x_eval, batch_size=1000, verbose=0)
        write_npz(files["predictions"], z=z, z_over=z_over, labels=y_test, **predictions(x_eval, evaluate_cb))

    return fit_with_contract(trainer, data, epochs=epochs, files=files, callbacks=[evaluate_cb], export_model=net,
                             finish=finish, info={**info, "alpha_warmup_steps": warmup_steps})


def train_iic_run(*, mnist_h5, files, params: dict, transform_set: str, alpha: float, alpha_over: float,
                  run_settings: RunSettings) -> dict:
    """Train one IIC model under the training contract (:func:`fit_iic`); writes predictions.npz beside it.

    Per epoch, on the test set (a fixed seed for its twins): the IIC loss
    (``eval_loss``, label-free: the model-selection criterion), the Hungarian
    accuracy of the 10-way head and the purity of the 50-way head (labels used
    only to score), and the joint matrix P of the 10-way head (for the GIF).
    """
    from anatomy.training.setup import configure_tensorflow

    device = configure_tensorflow(run_settings)
    seed = run_settings.seed
    import tensorflow as tf

    from anatomy.io import read_dataset_h5

    names = transform_names(transform_set)
    x_train, _ = read_dataset_h5(mnist_h5, "train")  # labels of the training set are never read
    x_train = x_train[: params["train_size"]]
    x_test, y_test = read_dataset_h5(mnist_h5, "test")

    def predictions(x_eval, evaluate_cb):
        twins = np.stack([np.asarray(make_twin(x_eval[:6], tf.constant([seed, k], tf.int64), names,
                                               params["transforms"]))[..., 0] for k in range(3)])
        return {"p_history": np.asarray(evaluate_cb.p_history), "examples": x_test[:6, ..., 0], "twins": twins}

    return fit_iic(
        x_train, x_test, y_test, params, names=names, alpha=alpha, alpha_over=alpha_over, seed=seed,
        epochs=params["epochs"], files=files, predictions=predictions,
        evaluation={"alpha": alpha, "alpha_over": alpha_over, "clusters": params["clusters"],
                    "overclusters": params["overclusters"]},
        info={"params": params, "seed": seed, "transform_set": transform_set, "transforms": list(names),
              "alpha": alpha, "alpha_over": alpha_over, "train_images": int(len(x_train)),
              "evaluation": "MNIST test set; labels used only for Hungarian accuracy", **device})


# ---------------------------------------------------------------- the uniform point (no TensorFlow)

def expected_batch_losses(alpha: float, k: int, batch: int) -> tuple[float, float]:
    """The IIC loss of one head, in expectation over batches of ``batch`` images, at two points:
    perfect clusters (each image one-hot in one of ``k`` equally likely clusters, both views agreeing)
    and uniform outputs (every image 1/k everywhere: 2 (alpha - 1) ln(1/k), exactly, in any batch).

    With perfect clusters the batch's P is diagonal with multinomial counts, so the loss is
    (1 - 2 alpha) H(counts / batch), and E[H] is below ln k by about (k - 1) / (2 batch).
    """
    from scipy.stats import binom

    c = np.arange(1, batch + 1)
    expected_h = -k * float((binom.pmf(c, batch, 1.0 / k) * (c / batch) * np.log(c / batch)).sum())
    return (1.0 - 2.0 * alpha) * expected_h, 2.0 * (alpha - 1.0) * float(np.log(1.0 / k))


def uniform_beats_clusters(alpha: float, k: int, batch: int) -> bool:
    """True when uniform outputs score a lower expected batch loss than perfect clusters: then the
    objective itself, not the optimiser, drives a head to the uniform point (e.g. alpha 10, k 50, batch 100)."""
    perfect, uniform = expected_batch_losses(alpha, k, batch)
    return uniform < perfect


# The uniform point is defined by the outputs, not by the loss value: every image's output 1/k, so the mean
# per-image entropy is ln k. Measured on the embedded sample (alpha 10, 1,200 images, batch 100, seeds 0-4, on
# an Intel Xeon): after 120 steps the post's constant alpha ends 0.001-0.008 nats below ln 10, a run with a
# 60-step warm-up 0.50-1.38 below it after 240 (1.15 on an AMD EPYC at seed 0); at half those steps 0.002-0.011
# and 0.20-0.81. "At the uniform point" is within 0.05 nats, a factor of 4 or more from both.
UNIFORM_TOLERANCE = 0.05


def mean_entropy(z) -> float:
    """Mean per-image entropy (nats) of a head's outputs ``z`` (images x clusters)."""
    z = np.asarray(z, dtype=np.float64)
    return float(-(z * np.log(np.clip(z, 1e-12, 1.0))).sum(axis=1).mean())


def at_uniform_point(z, tolerance: float = UNIFORM_TOLERANCE) -> bool:
    """True when the head's mean per-image entropy is within ``tolerance`` nats of ln k (k = its clusters)."""
    return mean_entropy(z) > np.log(np.shape(z)[1]) - tolerance
