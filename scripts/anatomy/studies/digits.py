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
imported lazily) -> one model's training -> pure numpy/pandas aggregation
(submissions, validator, ensemble, leaderboard, hardest, ladder, bootstrap).
Only the training function imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from anatomy.io import atomic_path, write_npz
from anatomy.training.init_weights import weights_fingerprint

N_CLASSES = 10
SIDE = 28

# The kernel's public-leaderboard scores (about a quarter of Kaggle's 28,000 test images).
PUBLISHED = {"simple": 0.964, "ensemble": 0.997}
PUBLISHED_GAIN = round(PUBLISHED["ensemble"] - PUBLISHED["simple"], 3)  # 0.033

# The ablation ladder: each rung adds one of step 2's changes to the one above.
LADDER = [
    ("step1", "step 1 as published (80/20 split, constant learning rate)"),
    ("epochs", "+ step 2's epochs"),
    ("lr_steps", "+ learning-rate steps"),
    ("augment", "+ affine augmentation (one model)"),
    ("ensemble", "+ k-fold ensemble (step 2 as published)"),
]
LADDER_ROWS = [name for name, _ in LADDER]


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
                       seed: int, threads: int, deterministic: bool, precision: str = "float32",
                       init_seed: int | None = None) -> dict:
    """Train CNNMedium once under the training contract and write its predictions.

    ``part`` is 'step1' (the 80/20 split; step 1 and the ladder rows) or
    'fold<k>'. ``init_weights`` is the file it starts from (shared by a seed's
    single models, its own for a fold model) and ``init_seed`` the seed that
    made it; both go to ``metrics.json['init']`` with the weights' fingerprint.
    ``params``: ``batch_size``, ``learning_rate``, ``epochs``,
    ``lr_drops``, ``lr_factor``, ``augmentation`` (dict or None) and ``tta``
    (copies, 0 = none). Validation each epoch is on this model's own held-out
    part. ``files['predictions']`` (npz): ``test`` probabilities (and
    ``test_tta``), and for every used training image (``images``, ``labels``)
    its probabilities, loss and whether this model trained on it (``seen``).
    """
    from anatomy.training.setup import configure_tensorflow

    device = configure_tensorflow(threads=threads, seed=seed, deterministic=deterministic, precision=precision)
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


def submission_frame(probs) -> pd.DataFrame:
    """Competition format: ImageId from 1, Label the argmax class."""
    labels = np.asarray(probs).argmax(1)
    return pd.DataFrame({"ImageId": np.arange(1, len(labels) + 1), "Label": labels.astype(np.int64)})


def write_submission(path, probs) -> pd.DataFrame:
    df = submission_frame(probs)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return df


class SubmissionError(ValueError):
    """A submission file Kaggle would refuse: the message names the file, the line and the column."""


def count_rows(csv_path) -> int:
    """Data rows of a CSV with a header (test.csv: one per test image)."""
    with open(csv_path, "rb") as f:
        return max(0, sum(1 for line in f if line.strip()) - 1)


def validate_submission(path, n_test: int) -> int:
    """Check a submission against the competition's format; return its row count.

    Header exactly ``ImageId,Label``; ``n_test`` rows (one per row of
    test.csv); ImageId 1..N in order; Label an integer 0-9. Any violation
    raises :class:`SubmissionError` naming the file, line (1 = header) and column.
    """
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: file not found")
    lines = path.read_text().splitlines()
    if not lines or lines[0].strip().lstrip("\ufeff") != "ImageId,Label":
        got = lines[0] if lines else "<empty file>"
        raise SubmissionError(f"{path}: line 1 (header) is {got!r}, expected 'ImageId,Label'")
    rows = lines[1:]
    while rows and not rows[-1].strip():  # a trailing newline is fine
        rows.pop()
    for n, line in enumerate(rows, start=2):
        fields = line.split(",")
        if not line.strip():
            raise SubmissionError(f"{path}: line {n} is blank (column 'ImageId' is empty)")
        if len(fields) != 2:
            raise SubmissionError(f"{path}: line {n} has {len(fields)} fields, expected 2 (ImageId,Label)")
        image_id, label = (s.strip() for s in fields)
        if not (image_id.isascii() and image_id.isdigit()) or int(image_id) != n - 1:
            raise SubmissionError(f"{path}: line {n}, column 'ImageId' is {image_id!r}, expected {n - 1} "
                                  "(ImageId must run 1..N in order)")
        if not (label.isascii() and label.isdigit() and len(label) == 1):
            raise SubmissionError(f"{path}: line {n}, column 'Label' is {label!r}, expected an integer 0-9")
    if len(rows) != n_test:
        raise SubmissionError(f"{path}: {len(rows)} rows, expected {n_test} (one per row of test.csv); "
                              f"line {len(rows) + 2 if len(rows) < n_test else n_test + 2}, column 'ImageId'"
                              f" {'missing' if len(rows) < n_test else 'is one too many'}")
    return len(rows)


def read_submission_labels(path) -> np.ndarray:
    return pd.read_csv(path)["Label"].to_numpy(np.int64)


def leaderboard(entries: list[dict], y_test) -> pd.DataFrame:
    """Score every submission and every single model on the local test labels.

    ``entries``: dicts with ``entry``, ``kind`` ('submission' or 'single
    model'), ``members`` and ``labels`` (predicted classes); any other key is
    copied. Unknown labels (the competition's files): accuracy empty and a note.
    """
    rows = []
    for e in entries:
        row = {k: v for k, v in e.items() if k != "labels"}
        pred = np.asarray(e["labels"])
        row["n_test"] = len(pred)
        if y_test is None:
            row.update(test_accuracy=np.nan, test_errors=np.nan,
                       note="unknown: the competition keeps its test labels (submit to Kaggle to score)")
        else:
            row.update(test_accuracy=float((pred == y_test).mean()), test_errors=int((pred != y_test).sum()), note="")
        rows.append(row)
    return pd.DataFrame(rows)


def fold_validation(pred: dict, folds: pd.DataFrame, fold: int) -> dict:
    """A fold model's accuracy on its own held-out fold (clean) and on step 1's hold-out (what
    the kernel validated every fold on), with the share of that hold-out the model trained on."""
    labels, probs, seen = pred["labels"], pred["probs"], pred["seen"]
    f = folds.set_index("image").loc[pred["images"]]
    own = (f["fold"].to_numpy() == fold)
    step1 = f["step1"].to_numpy() == "validation"
    acc = lambda m: accuracy(probs[m], labels[m])  # noqa: E731
    if np.any(seen & own):
        raise ValueError(f"fold {fold}: the model trained on images of its own held-out fold")
    return {"own_fold_val_accuracy": acc(own), "step1_split_val_accuracy_leaked": acc(step1),
            "step1_split_seen_in_training": float(seen[step1].mean())}


def out_of_fold(preds: list[dict]) -> pd.DataFrame:
    """Each training image's loss from the one fold model that did not train on it.

    ``preds``: the fold models' prediction dicts (same ``images`` order).
    ``in_sample_mean_loss`` is the kernel's number: the loss averaged over all
    fold models, most of which trained on the image.
    """
    images = preds[0]["images"]
    for p in preds[1:]:
        if not np.array_equal(p["images"], images):
            raise ValueError("fold predictions cover different images")
    unseen = np.stack([~p["seen"] for p in preds])  # models x images
    per_image = unseen.sum(0)
    if not (per_image == 1).all():
        bad = int(np.argmax(per_image != 1))
        raise ValueError(f"image {images[bad]} is held out by {per_image[bad]} fold models, expected exactly 1")
    which = unseen.argmax(0)
    cols = np.arange(len(images))
    probs = np.stack([p["probs"] for p in preds])[which, cols]
    labels = preds[0]["labels"]
    losses = np.stack([p["losses"] for p in preds])
    return pd.DataFrame({
        "image": images, "label": labels, "oof_fold": which, "oof_prediction": probs.argmax(1),
        "oof_probability_of_label": probs[cols, labels], "oof_loss": losses[which, cols],
        "in_sample_mean_loss": losses.mean(0),
    })


def hardest(oof: pd.DataFrame, *, top: int) -> pd.DataFrame:
    """The ``top`` images by out-of-fold loss, with the kernel's in-sample ranking beside them."""
    ranked = oof.sort_values("oof_loss", ascending=False, kind="stable").reset_index(drop=True)
    kernel_rank = oof["in_sample_mean_loss"].rank(ascending=False, method="first").astype(int)
    out = ranked.head(top).copy()
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out["in_sample_rank"] = pd.Series(kernel_rank.to_numpy(), index=oof["image"]).loc[out["image"]].to_numpy()
    out["in_kernel_top"] = out["in_sample_rank"] <= top
    out["overlap_of_top_lists"] = int(out["in_kernel_top"].sum())
    return out


def ladder_from_runs(runs, seeds, folds: int, test_labels) -> pd.DataFrame:
    """The ladder from its prediction files: ``runs`` maps '<row>_seed<s>' (step1, epochs, lr_steps,
    augment) and 'fold<k>_seed<s>' (k = 0..folds-1, as the fold folders) to predictions.npz paths; ``test_labels`` may be None."""
    test_acc, holdout_acc = {}, {}
    for s in seeds:
        for row in ("step1", "epochs", "lr_steps", "augment"):
            p = read_predictions(runs[f"{row}_seed{s}"])
            held = ~p["seen"]
            holdout_acc[(row, s)] = accuracy(p["probs"][held], p["labels"][held])
            test_acc[(row, s)] = np.nan if test_labels is None else accuracy(p["test"], test_labels)
        preds = [read_predictions(runs[f"fold{k}_seed{s}"]) for k in range(folds)]
        oof = out_of_fold(preds)
        holdout_acc[("ensemble", s)] = float((oof["oof_prediction"] == oof["label"]).mean())
        test_acc[("ensemble", s)] = (np.nan if test_labels is None
                                     else accuracy(ensemble([p["test"] for p in preds]), test_labels))
    return ladder(test_acc, holdout_acc, seeds)


def ladder(test_acc: dict, holdout_acc: dict, seeds) -> pd.DataFrame:
    """The ablation ladder: one row per rung, accuracy per seed, mean, spread and what each rung bought.

    ``test_acc[(row, seed)]`` (NaN when the test labels are unknown) and
    ``holdout_acc[(row, seed)]``: step 1's hold-out for the single models, the
    out-of-fold accuracy of the fold models for the ensemble rung.
    """
    rows, prev = [], None
    for name, text in LADDER:
        t = np.array([test_acc[(name, s)] for s in seeds], float)
        h = np.array([holdout_acc[(name, s)] for s in seeds], float)
        row = {"rung": len(rows) + 1, "row": name, "change": text, "seeds": len(seeds),
               "test_accuracy_mean": t.mean(), "test_accuracy_sd": t.std(ddof=1) if len(t) > 1 else 0.0}
        row.update({f"test_accuracy_seed{s}": v for s, v in zip(seeds, t)})
        row["holdout_accuracy_mean"] = h.mean()
        row["holdout"] = "out-of-fold (each image by the model that did not see it)" if name == "ensemble" \
            else "step 1's 20% hold-out"
        row["gain_over_previous"] = t.mean() - prev if prev is not None else np.nan
        rows.append(row)
        prev = t.mean()
    df = pd.DataFrame(rows)
    df["gain_over_step1"] = df["test_accuracy_mean"] - df["test_accuracy_mean"].iloc[0]
    return df


def public_subsets(n: int, *, subsets: int, fraction: float, seed: int) -> np.ndarray:
    """``subsets`` x m test indices, m = round(fraction x n), each row drawn without replacement
    (Kaggle's public leaderboard is one fixed, unknown quarter of the test set)."""
    m = int(round(fraction * n))
    if not 0 < m <= n:
        raise ValueError(f"digits.bootstrap.fraction={fraction} of {n} test images gives an empty subset")
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(n, m, replace=False) for _ in range(subsets)])


def bootstrap_public(preds: dict, y_test, *, subsets: int, fraction: float, seed: int):
    """Public-style scores of each submission on the same seeded quarter-size subsets.

    Returns ``(summary, scores)``: per submission (and per difference to the
    first one) the full-test accuracy, mean, sd and the 2.5 / 97.5 % points;
    and the per-subset scores (long table) for the figure.
    """
    names = list(preds)
    if y_test is None:
        summary = pd.DataFrame({"submission": names, "note": "unknown: the competition keeps its test labels"})
        return summary, pd.DataFrame(columns=["subset", "submission", "accuracy"])
    idx = public_subsets(len(y_test), subsets=subsets, fraction=fraction, seed=seed)
    correct = {k: (np.asarray(v) == y_test).astype(float) for k, v in preds.items()}
    per = {k: c[idx].mean(1) for k, c in correct.items()}
    rows = []

    def stats(name, full, s):
        return {"submission": name, "full_test_accuracy": full, "subsets": subsets, "subset_size": idx.shape[1],
                "public_mean": s.mean(), "public_sd": s.std(ddof=1), "public_q025": np.quantile(s, 0.025),
                "public_q975": np.quantile(s, 0.975), "note": ""}

    for k in names:
        rows.append(stats(k, correct[k].mean(), per[k]))
    for k in names[1:]:
        d = per[k] - per[names[0]]
        r = stats(f"{k} - {names[0]}", correct[k].mean() - correct[names[0]].mean(), d)
        r["note"] = f"difference on the same subsets; {(d <= 0).mean():.1%} of subsets do not rank {k} above {names[0]}"
        rows.append(r)
    scores = pd.DataFrame([{"subset": b, "submission": k, "accuracy": per[k][b]}
                           for k in names for b in range(subsets)])
    return pd.DataFrame(rows), scores


# --------------------------------------------------------------- published claims (verdicts: anatomy.verdicts)

SOURCE = "Kaggle kernel (Chainer CNNMedium), public leaderboard (about a quarter of the test set)"
PUBLIC_IMAGES = 7_000  # a quarter of the 28,000 test images
# One of our runs per rung on the laptop: the run-to-run sd of a small MNIST CNN, named for n = 1 (the crops
# baseline's three seeds give 0.0012 at laptop scale; rounded up). A difference of two runs: x sqrt(2).
SEED_SD = 0.002
SEED_SD_SOURCE = "seed-to-seed sd of a small MNIST CNN's test accuracy, 0.0012 over the crops baseline's 3 seeds, "\
                 "rounded up to 0.002"


def _public_se(p: float) -> float:
    return float(np.sqrt(p * (1 - p) / PUBLIC_IMAGES))


def claims():
    from anatomy.verdicts import Claim

    s, e = PUBLISHED["simple"], PUBLISHED["ensemble"]
    return {c.key: c for c in (
        Claim("simple", "digits", "single model, 80/20 split, 20 epochs (submission_simple.csv) scores 0.964",
              "point", s, SOURCE, published_se=_public_se(s), external_sd=SEED_SD, external_sd_source=SEED_SD_SOURCE,
              figure="ladder.png", why="one published score on a public quarter: a two-sided prediction interval"),
        Claim("ensemble", "digits", "5-fold ensemble with augmentation (submission_ensemble.csv) scores 0.997",
              "point", e, SOURCE, published_se=_public_se(e), external_sd=SEED_SD, external_sd_source=SEED_SD_SOURCE,
              figure="ensemble_vs_single.png", why="one published score on a public quarter"),
        Claim("gain", "digits", "step 2 gains 3.3 points over step 1 (ensemble rung - step 1 rung, paired by seed)",
              "effect", PUBLISHED_GAIN, SOURCE, shown=f"+{PUBLISHED_GAIN:g}",
              published_se=float(np.hypot(_public_se(s), _public_se(e))), external_sd=SEED_SD * math.sqrt(2),
              external_sd_source="a difference of two runs: 0.002 x sqrt(2)", figure="ladder.png",
              why="a gain of a stated size"),
    )}


def _ladder_seeds(ladder: pd.DataFrame | None, row: str) -> list:
    """One test accuracy per training seed of a ladder rung (``ladder.csv``: ``test_accuracy_seed<k>``)."""
    if ladder is None or "row" not in ladder.columns or row not in set(ladder["row"]):
        return []
    t = ladder.set_index("row")
    return [float(t.loc[row, c]) for c in t.columns if c.startswith("test_accuracy_seed")]


def bootstrap_basis(bootstrap: pd.DataFrame | None, submission: str) -> str:
    """The test-set noise of one public-size score (``bootstrap.csv``), in words: resamples, not models."""
    if bootstrap is None or "subset_size" not in bootstrap.columns or submission not in set(bootstrap["submission"]):
        return "no bootstrap (test labels unknown)"
    r = bootstrap.set_index("submission").loc[submission]
    return (f"test-set noise of one run on a public-size subset: sd {r['public_sd']:.4f}, 95% "
            f"[{r['public_q025']:.4f}, {r['public_q975']:.4f}] over {int(r['subsets'])} resamples of "
            f"{int(r['subset_size'])} local test images (resamples, not trained models)")


def claims_evidence(leaderboard: pd.DataFrame, bootstrap: pd.DataFrame | None = None,
                    ladder: pd.DataFrame | None = None) -> list:
    """(claim, evidence, comparisons) for the digits claims: each rung's test accuracy per training seed from
    ``ladder.csv`` (the leaderboard's submission where the ladder lacks the rung), the gain paired by seed."""
    from anatomy.verdicts import Evidence

    cl, out = claims(), []
    lb = leaderboard.set_index("entry")["test_accuracy"]
    for key, row in (("simple", "step1"), ("ensemble", "ensemble")):
        v = _ladder_seeds(ladder, row) or [float(lb.get(f"submission_{key}", float("nan")))]
        v = [x for x in v if math.isfinite(x)]
        out.append((cl[key], Evidence(v, ours=f"{np.mean(v):.4f}" if v else "test labels unknown",
                                          details=bootstrap_basis(bootstrap, key)), 1))
    top, base = _ladder_seeds(ladder, "ensemble"), _ladder_seeds(ladder, "step1")
    if not (top and base):
        top = [float(lb.get("submission_ensemble", float("nan")))]
        base = [float(lb.get("submission_simple", float("nan")))]
    d = [a - b for a, b in zip(top, base) if math.isfinite(a - b)]
    out.append((cl["gain"], Evidence(d, ours=f"{np.mean(d):+.4f}" if d else "test labels unknown",
                                         unit="seed pairs", details=bootstrap_basis(bootstrap, "ensemble - simple")),
                1))
    return out
