"""Study 5 (digits): the Kaggle Digit Recognizer kernel, reproduced and measured.

The published kernel (Chainer, public leaderboard 0.99700) trained "CNNMedium"
(:mod:`anatomy.models.cnn_medium`) in two steps:

1. an 80/20 split, Adam, batch 16, 20 epochs, no augmentation
   -> ``submission_simple.csv`` (0.96400);
2. random affine augmentation with probability 0.5 (scale 0.95-1.05 per axis,
   rotation +-7 deg, shear +-3 deg, translation +-2 px), learning rate x0.1 at
   epochs 10 and 20, 30 epochs, one model per stratified fold (5 folds), the
   five models' probabilities averaged -> ``submission_ensemble.csv`` (0.99700).

What its code did beyond its text, and how it is measured here: every fold was
validated on step 1's hold-out (mostly inside that fold's own training data),
so each fold is validated on its own held-out part and the leaked number is
reported beside the clean one; step 2 changed four things at once, so an
ablation ladder adds them one at a time; the hardest examples were scored by
models that had trained on them, so each image's loss here comes from the
fold model that did not see it (the kernel's in-sample mean is kept beside
it); the public leaderboard scores about a quarter of the test set, so
quarter-size subsets are bootstrapped to show the noise of a public score.

Initial weights: the single models (step 1 and the ladder's rungs 2-4) of one
seed start from one shared file, so the rungs compare like for like; each fold
model starts from its own file, seeded by :func:`fold_init_seed` (seed, fold),
as the kernel initialised each fold independently (a shared start would make
the members more alike and understate the ensemble's gain). Every training
records its init (file, seed, fingerprint of the weights) in ``metrics.json``.

The published scores are typed claims (:func:`claims_evidence`) judged by
:mod:`anatomy.verdicts` on one test accuracy per trained model (the ladder's
seeds); the bootstrap over public-size subsets is the test-set noise of one
run, shown beside them and never counted as n.

Top-down: data splits -> augmentation and the learning-rate schedule (TF,
imported lazily) -> one model's training -> reading its predictions and the
ensemble. Fold validation, the out-of-fold hardest examples, the ladder and
the published claims are :mod:`anatomy.studies.digits_results`. The Kaggle side (submission files and their validator, the
local leaderboard, the public-leaderboard bootstrap) is
:mod:`anatomy.studies.kaggle`. Only the training function imports TensorFlow.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from anatomy.io import atomic_path, write_npz
from anatomy.training.init_weights import weights_fingerprint
from anatomy.training.setup import RunSettings

N_CLASSES = 10
SIDE = 28


# ------------------------------------------------------------------- data
def read_arrays(path):
    """``arrays.npz`` (the validated CSVs as uint8 arrays) -> ``(x_train, y_train, x_test)``."""
    with np.load(path) as f:
        return f["x_train"], f["y_train"], f["x_test"]


def write_arrays(path, train_csv, test_csv) -> dict:
    """Read and validate the competition CSVs once; every training job reads this npz instead
    (a validated CSV read costs seconds per job)."""
    from anatomy.data.digits import read_digits_csv

    x_train, y_train = read_digits_csv(train_csv, labelled=True)
    x_test, _ = read_digits_csv(test_csv, labelled=False)
    write_npz(path, x_train=x_train, y_train=y_train.astype(np.int64), x_test=x_test)
    return {"train": len(x_train), "test": len(x_test)}


def read_test_labels(path):
    """``test_labels.csv`` -> int array, or None when the labels are unknown (Kaggle's own files)."""
    df = pd.read_csv(path)
    if len(df) == 0:
        return None
    return df["Label"].to_numpy(np.int64)


def make_folds(y, *, n_folds: int, seed: int, validation_fraction: float, train_size=None) -> pd.DataFrame:
    """Which training images are used, step 1's 80/20 split and the stratified k folds.

    One row per used image: ``image`` (0-based row of train.csv), ``label``,
    ``step1`` ('train' or 'validation', a stratified seeded split as in the
    kernel's step 1) and ``fold`` (0..k-1 from ``StratifiedKFold(shuffle=True,
    random_state=seed)``: the fold in which the image is held out).
    ``train_size`` (None = all) keeps a stratified seeded subset first.
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    y = np.asarray(y)
    images = np.arange(len(y))
    if train_size is not None and train_size < len(y):
        images, _ = train_test_split(images, train_size=train_size, stratify=y, random_state=seed)
        images = np.sort(images)
    labels = y[images]
    tr, _ = train_test_split(np.arange(len(images)), test_size=validation_fraction, stratify=labels,
                             random_state=seed)
    step1 = np.full(len(images), "validation", dtype=object)
    step1[tr] = "train"
    fold = np.full(len(images), -1, np.int64)
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, held_out) in enumerate(skf.split(images, labels)):
        fold[held_out] = k
    return pd.DataFrame({"image": images, "label": labels, "step1": step1, "fold": fold})


def write_folds(path, folds: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        folds.to_csv(tmp, index=False)


def read_folds(path) -> pd.DataFrame:
    return pd.read_csv(path)


def split_of(folds: pd.DataFrame, part: str):
    """Rows of train.csv to train on and to validate on for ``part`` ('step1' or 'fold<k>')."""
    if part == "step1":
        held = folds["step1"].to_numpy() == "validation"
    elif part.startswith("fold"):
        held = folds["fold"].to_numpy() == int(part[4:])
    else:
        raise ValueError(f"unknown part '{part}' (use step1 or fold<k>)")
    images = folds["image"].to_numpy()
    return images[~held], images[held]


# Augmentation: the kernel's per-image scikit-image AffineTransform + warp becomes one
# fused batched transform, anatomy.training.augment.augment_batch (shared with iic).


def lr_at(epoch: int, *, base: float, drops, factor: float) -> float:
    """Learning rate of 0-based ``epoch``: ``base`` x ``factor`` per drop already passed.

    "x0.1 at epochs 10 and 20" means epochs 11-20 (1-based) run at 0.1 x base.
    """
    return float(base * factor ** sum(epoch >= d for d in drops))


def lr_callback(*, base: float, drops, factor: float):
    """The schedule as a Keras callback (a function of the epoch, so resume keeps it)."""
    import keras

    return keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr_at(epoch, base=base, drops=drops, factor=factor))


# ---------------------------------------------------------- initial weights
FOLD_INIT_KEY = "digits-fold"


def fold_init_seed(seed: int, fold: int) -> int:
    """The seed of fold ``fold``'s own initial weights: a stable function of (``seed``, ``fold``).

    The first 31 bits of sha256('digits-fold/<seed>/<fold>'): the same on every
    machine and Python/numpy version, different for every fold and seed, and
    (with overwhelming probability) different from the small integer seeds the
    single models' shared initial weights use.
    """
    if int(seed) != seed or int(fold) != fold or fold < 0:
        raise ValueError(f"fold_init_seed needs integer seed and fold >= 0, got {seed!r}, {fold!r}")
    digest = hashlib.sha256(f"{FOLD_INIT_KEY}/{int(seed)}/{int(fold)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF




def write_fold_initial_weights(paths, seeds, *, model: str = "cnn_medium") -> list[str]:
    """One initial-weights file per fold, ``paths[k]`` seeded by ``seeds[k]``; returns their fingerprints."""
    from anatomy.training.init_weights import write_initial_weights

    if len(paths) != len(seeds):
        raise ValueError(f"{len(paths)} fold weight files but {len(seeds)} seeds")
    prints = []
    for path, s in zip(paths, seeds):
        write_initial_weights(model, path, seed=int(s))  # keras.utils.set_random_seed: a pure function of s
        prints.append(file_fingerprint(path, model=model))
    return prints


def file_fingerprint(path, *, model: str = "cnn_medium") -> str:
    """The :func:`weights_fingerprint` of an initial-weights file (TensorFlow: only init and training jobs)."""
    import importlib

    from anatomy.training.init_weights import BUILDERS

    module, fn = BUILDERS[model].split(":")
    m = getattr(importlib.import_module(module), fn)()
    m.load_weights(path)
    return weights_fingerprint(m.get_weights())


# ------------------------------------------------------------ one model
def tta_probabilities(model, x, probs, *, aug: dict, copies: int, seed: int) -> np.ndarray:
    """Test-time augmentation: ``probs`` (the model's on ``x``, float images) averaged with its probabilities on
    ``copies`` augmented copies of ``x`` (``aug`` applied to every image, seeded by (seed, 1,000,000 + copy))."""
    import tensorflow as tf

    from anatomy.training.augment import augment_batch

    out = [probs]
    xt = tf.constant(x)
    for c in range(copies):
        xa = augment_batch(xt, tf.constant([seed, 1_000_000 + c], tf.int64), {**aug, "probability": 1.0})
        out.append(model.predict(xa, batch_size=1000, verbose=0))
    return np.mean(out, axis=0).astype(np.float32)


def train_digits_model(*, arrays, folds, init_weights, test_labels, files: dict, params: dict, part: str,
                       run_settings: RunSettings, init_seed: int | None = None) -> dict:
    """Train CNNMedium once under the training contract and write its predictions.

    ``part`` is 'step1' (the 80/20 split; step 1 and the ladder rows) or
    'fold<k>'. ``init_weights`` is the file it starts from (shared by a seed's
    single models, its own for a fold model) and ``init_seed`` the seed that
    made it; both go to ``metrics.json['init']`` with the weights' fingerprint.
    ``params``: ``batch_size``, ``learning_rate``, ``epochs``,
    ``lr_drops``, ``lr_factor``, ``augmentation`` (dict or None) and ``tta``
    (copies, 0 = none); ``run_settings`` the job's threads, seed, determinism and
    precision. Validation each epoch is on this model's own held-out
    part. ``files['predictions']`` (npz): ``test`` probabilities (and
    ``test_tta``), and for every used training image (``images``, ``labels``)
    its probabilities, loss and whether this model trained on it (``seen``).
    """
    from anatomy.training.setup import configure_tensorflow

    device = configure_tensorflow(run_settings)
    seed = run_settings.seed
    from anatomy.models.cnn_medium import cnn_medium, compile_cnn_medium
    from anatomy.training.augment import augment_batch
    from anatomy.training.contract import fit_with_contract
    from anatomy.training.pipeline import ArrayData

    x_all, y_all, x_test = read_arrays(arrays)
    split = read_folds(folds)
    tr, va = split_of(split, part)
    y_test = read_test_labels(test_labels)
    scale = lambda x: x.astype("float32") / 255.0  # noqa: E731
    aug = params["augmentation"]

    model = cnn_medium()
    model.load_weights(init_weights)
    init = {"file": str(init_weights), "seed": None if init_seed is None else int(init_seed),
            "shared": part == "step1", "fingerprint": weights_fingerprint(model.get_weights())}
    compile_cnn_medium(model, learning_rate=params["learning_rate"])
    data = ArrayData(x_all[tr], y_all[tr], batch_size=params["batch_size"], seed=seed,
                     augment=(lambda xb, s: augment_batch(xb, s, aug)) if aug else None)
    callbacks = []
    if params["lr_drops"]:
        callbacks.append(lr_callback(base=params["learning_rate"], drops=params["lr_drops"], factor=params["lr_factor"]))
    test_probs = {}

    def evaluate(m):
        test_probs["test"] = m.predict(scale(x_test), batch_size=1000, verbose=0)
        if y_test is None:
            return {"labels": "unknown (competition files)"}
        return score(test_probs["test"], y_test)

    def finish(m, metrics):
        if "test" not in test_probs:  # diverged: evaluate was skipped, predictions are still written
            test_probs["test"] = m.predict(scale(x_test), batch_size=1000, verbose=0)
        out = {"test": test_probs["test"].astype(np.float32)}
        if params.get("tta") and aug:
            out["test_tta"] = tta_probabilities(m, scale(x_test), out["test"], aug=aug, copies=params["tta"], seed=seed)
        images = split["image"].to_numpy()
        probs = m.predict(scale(x_all[images]), batch_size=1000, verbose=0).astype(np.float32)
        out.update(images=images, labels=y_all[images], probs=probs, losses=cross_entropy(probs, y_all[images]),
                   seen=np.isin(images, tr))
        write_npz(files["predictions"], **out)

    return fit_with_contract(
        model, data, epochs=params["epochs"], files=files, validation=(scale(x_all[va]), y_all[va]),
        callbacks=callbacks, evaluate=evaluate, finish=finish,
        info={"params": params, "seed": seed, "part": part, "init": init, "train_images": int(len(tr)),
              "validation": f"{len(va)} images held out ({'step 1 split' if part == 'step1' else part})",
              **device},
    )


# ------------------------------------------- aggregation: pure numpy / pandas
def cross_entropy(probs, labels) -> np.ndarray:
    p = np.asarray(probs, np.float64)[np.arange(len(labels)), np.asarray(labels)]
    return -np.log(np.clip(p, 1e-12, 1.0))


def accuracy(probs, labels) -> float:
    return float((np.asarray(probs).argmax(1) == np.asarray(labels)).mean())


def score(probs, labels) -> dict:
    return {"accuracy": accuracy(probs, labels), "loss": float(cross_entropy(probs, labels).mean())}


def read_predictions(path) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def ensemble(prob_list) -> np.ndarray:
    """The kernel's ensemble: the members' predicted probabilities averaged."""
    return np.mean(np.stack([np.asarray(p, np.float64) for p in prob_list]), axis=0)
