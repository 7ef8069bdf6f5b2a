"""Study 4 (coreset): how few synthetic "ship" images carry all the information.

After a follow-up post to Kaggle's Airbus Ship Detection: on synthetic ellipses
(:mod:`anatomy.data.ellipses`) a residual U-Net is trained on the first 11
pairs until its score on them exceeds 0.85; the rest is scanned in order, and
the first pair scoring below 0.85 x 0.95 joins the selected set, on which the
net is trained until it again exceeds 0.85. The post kept 271 of 10,000 pairs
(408 with the order shuffled) and scored 0.9928 on a fresh test set.

Measured here rather than copied: every selection run starts from the same
fresh initial-weights file and adds exactly the pair that failed (indices are
dataset indices in both orders); the test score is reported thresholded (as
selection scores pairs) and soft (the raw sigmoid, as the post's test score
was computed); controls of the same size chosen at random and the full set are
trained to the same stopping rule; and the post's "every pair now passes" is
re-checked with each final model.

The metric (:func:`pair_scores`) is the mean over IoU thresholds 0.5, 0.55,
..., 0.95 of [IoU > t] per image, an empty mask with an empty prediction
scoring 1 - what the post's ``floor(max(0, (IoU - 0.45) x 20)) / 10`` stands
for (that formula gives 1.1 at IoU = 1).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

BACKUP_SECONDS = 20.0  # the selection saves its state after an addition at most this often
PREDICT_BATCH = 64  # inference batch for scoring sets; the scan itself goes scan_batch pairs at a time
THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)
PUBLISHED = {"selected_in_order": 271, "selected_shuffled": 408, "train_size": 10_000, "test_score": 0.9928,
             "pass_score": 0.85 * 0.95}


# ---------------------------------------------------------------- the metric (NumPy)

def iou_per_image(masks, probs, threshold: float = 0.5) -> np.ndarray:
    """IoU of ``probs > threshold`` with the mask, per image; empty mask and empty prediction -> 1."""
    t = np.asarray(masks).reshape(len(masks), -1) > 0.5
    p = np.asarray(probs).reshape(len(probs), -1) > threshold
    inter = (t & p).sum(1)
    union = (t | p).sum(1)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def soft_iou_per_image(masks, probs) -> np.ndarray:
    """IoU computed on the raw sigmoid output (no threshold), as the post's test score was.

    sum(t p) / (sum(t) + sum(p) - sum(t p)); 1 when both are empty.
    """
    t = np.asarray(masks, np.float64).reshape(len(masks), -1)
    p = np.asarray(probs, np.float64).reshape(len(probs), -1)
    inter = (t * p).sum(1)
    union = t.sum(1) + p.sum(1) - inter
    return np.where(union <= 0, 1.0, inter / np.where(union <= 0, 1.0, union))


def threshold_score(iou) -> np.ndarray:
    """Mean over thresholds 0.5..0.95 of [IoU > t], per image."""
    iou = np.asarray(iou, np.float64)
    return (iou[..., None] > THRESHOLDS).mean(-1)


def pair_scores(masks, probs) -> np.ndarray:
    """The study's metric per pair: thresholded prediction (0.5), IoU, mean over IoU thresholds."""
    return threshold_score(iou_per_image(masks, probs))


def soft_scores_as_published(masks, probs) -> np.ndarray:
    """The post's test score per pair: the same threshold average, of the soft IoU of the raw sigmoid."""
    return threshold_score(soft_iou_per_image(masks, probs))


def score_keras(y_true, y_pred):
    """:func:`pair_scores` in Keras ops, averaged over the batch (a training metric)."""
    from keras import ops

    n = ops.shape(y_true)[0]
    t = ops.reshape(ops.cast(y_true > 0.5, "float32"), (n, -1))
    p = ops.reshape(ops.cast(y_pred > 0.5, "float32"), (n, -1))
    inter = ops.sum(t * p, axis=1)
    union = ops.sum(ops.maximum(t, p), axis=1)
    iou = ops.where(union > 0, inter / ops.maximum(union, 1.0), 1.0)
    hits = ops.cast(ops.expand_dims(iou, 1) > ops.convert_to_tensor(THRESHOLDS[None, :], "float32"), "float32")
    return ops.mean(hits)


# ---------------------------------------------------------------- the selection loop (framework-free)

@dataclass
class Selection:
    """Where a selection run stands; saved with every backup so a rerun continues.

    ``order``: dataset indices in scan order; ``selected``: dataset indices in
    the order they joined; ``position``: next position in ``order`` to scan;
    ``rows``: the (scanned, selected, train metric) history.
    """

    order: list
    selected: list = field(default_factory=list)
    position: int = 0
    rows: list = field(default_factory=list)
    name: str = "coreset_selection"

    def get_state(self) -> dict:
        return {"order": list(map(int, self.order)), "selected": list(map(int, self.selected)),
                "position": int(self.position)}

    def set_state(self, state: dict) -> None:
        if list(state["order"]) != list(map(int, self.order)):
            raise ValueError("the backup was written for another scan order; delete the backup folder and rerun")
        self.selected, self.position = list(state["selected"]), int(state["position"])


def scan_order(n: int, shuffle_seed: int | None) -> np.ndarray:
    """0..n-1 in order, or a seeded permutation (the post's shuffled run)."""
    if shuffle_seed is None:
        return np.arange(n)
    return np.random.default_rng(shuffle_seed).permutation(n)


def select_coreset(state: Selection, *, score_pairs: Callable, train_on: Callable, initial: int,
                   pass_score: float, scan_batch: int, on_step: Callable | None = None) -> Selection:
    """Run (or continue) the post's selection.

    ``score_pairs(indices)`` returns the current model's score of those dataset
    pairs; ``train_on(indices)`` trains on the selected pairs until the stopping
    rule holds and returns ``(train_metric, epochs)``. After the first ``initial``
    pairs, the scan goes on in chunks of ``scan_batch``; the first pair of a
    chunk that scores below ``pass_score`` joins (that very dataset index, in
    either order), the net is retrained, and the scan resumes after it.
    ``on_step(state)`` is called after each training phase (backups, test checkpoints).
    """
    order = np.asarray(state.order)
    n = len(order)

    def record(added, metric, epochs, t0):
        state.rows.append({"step": len(state.rows), "scanned": int(state.position), "selected": len(state.selected),
                           "added_index": -1 if added is None else int(added), "train_metric": float(metric),
                           "epochs": int(epochs), "seconds": round(time.perf_counter() - t0, 3)})
        if on_step is not None:
            on_step(state)

    if not state.selected:
        t0 = time.perf_counter()
        state.selected = [int(i) for i in order[:initial]]
        state.position = min(initial, n)
        metric, epochs = train_on(list(state.selected))
        record(None, metric, epochs, t0)
    while state.position < n:
        t0 = time.perf_counter()
        chunk = order[state.position:state.position + scan_batch]
        scores = np.asarray(score_pairs(chunk))
        failed = np.flatnonzero(scores < pass_score)
        if not len(failed):
            state.position += len(chunk)
            continue
        k = int(failed[0])
        state.selected.append(int(chunk[k]))
        state.position += k + 1
        metric, epochs = train_on(list(state.selected))
        record(chunk[k], metric, epochs, t0)
    return state


# ---------------------------------------------------------------- training (TensorFlow)

def _load(x, y):
    return x.astype("float32") / 255.0, y.astype("float32")


def make_predictor(model, batch_size: int):
    """Probabilities of the model in inference mode, in batches (one traced function)."""
    import tensorflow as tf

    fn = tf.function(lambda a: model(a, training=False), reduce_retracing=True)

    def predict(x_uint8):
        out = []
        for s in range(0, len(x_uint8), batch_size):
            out.append(fn(tf.constant(x_uint8[s:s + batch_size].astype("float32") / 255.0)).numpy())
        return np.concatenate(out) if out else np.zeros((0,) + tuple(model.output_shape[1:]), "float32")

    return predict


def train_until(model, x, y, indices, *, target: float, max_epochs: int, batch_size: int, seed: int, phase: int,
                predict) -> tuple[float, int]:
    """Epochs over ``indices`` (at least one) until the inference-mode score on them exceeds ``target``.

    Batches come from a NumPy generator seeded by (seed, phase, epoch), so a
    resumed run trains exactly as an uninterrupted one.
    """
    idx = np.asarray(indices)
    metric = float("nan")
    for epoch in range(max_epochs):
        perm = np.random.default_rng([seed, phase, epoch]).permutation(idx)
        for s in range(0, len(perm), batch_size):
            b = np.sort(perm[s:s + batch_size])
            model.train_on_batch(*_load(x[b], y[b]))
        metric = float(pair_scores(y[idx], predict(x[idx])).mean())
        if metric > target:
            return metric, epoch + 1
    return metric, max_epochs


def _evaluate(predict, x_train, y_train, scanned, x_test, y_test, pass_score: float, keep: int) -> tuple[dict, dict]:
    """Test metrics (thresholded, soft as published, mean IoU) and the re-check on the scanned pairs."""
    probs = predict(x_test)
    test_scores = pair_scores(y_test, probs)
    soft = soft_scores_as_published(y_test, probs)
    iou = iou_per_image(y_test, probs)
    recheck = pair_scores(y_train[scanned], predict(x_train[scanned]))
    metrics = {"score": float(test_scores.mean()), "score_soft_as_published": float(soft.mean()),
               "mean_iou": float(iou.mean()), "recheck_pass_fraction": float((recheck >= pass_score).mean()),
               "recheck_pairs": int(len(scanned))}
    arrays = {"test_scores": test_scores, "test_soft_scores": soft, "test_iou": iou, "recheck_scores": recheck,
              "recheck_indices": np.asarray(scanned), "test_probs": probs[:keep].astype("float16")}
    return metrics, arrays


def _setup(*, init_weights, params, threads, seed, deterministic, precision):
    from anatomy.training.setup import configure_tensorflow

    device = configure_tensorflow(threads=threads, seed=seed, deterministic=deterministic, precision=precision)
    from anatomy.models.unet import compile_unet, residual_unet

    model = residual_unet(**unet_kwargs(params))
    model.load_weights(init_weights)
    compile_unet(model, learning_rate=params["learning_rate"])
    return model, device


def unet_kwargs(params: dict) -> dict:
    """The builder's arguments from the config slice (also the initial-weights rule's)."""
    m = params["model"]
    return {"image_size": params["image_size"], "start_neurons": m["start_neurons"], "depth": m["depth"],
            "dropout": m["dropout"], "batch_norm_momentum": m["batch_norm_momentum"]}


def _save_arrays(path, arrays: dict) -> None:
    from anatomy.io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def run_selection(*, train_h5, test_h5, init_weights, files: dict, params: dict, shuffle_seed: int | None,
                  threads: int, seed: int, deterministic: bool, precision: str = "float32") -> dict:
    """The selection as one training step; writes model, history (one row per addition), selected, metrics.

    Resumable: the model, optimizer, dropout RNG and the :class:`Selection`
    state are backed up after the first phase and then after an addition at most
    every ``BACKUP_SECONDS`` (saving after each of hundreds of short additions
    cost more than the additions), with the training contract's ``save_backup``
    to ``files["backup"]`` (not a declared output). A rerun repeats the steps
    after the backup exactly: batches are seeded by (seed, phase, epoch).
    """
    from pathlib import Path
    import shutil
    from types import SimpleNamespace

    import pandas as pd

    from anatomy.io import atomic_path, read_dataset_h5, write_json
    from anatomy.training.contract import install_sigterm_handler, load_backup, run_fingerprint, save_backup, \
        save_model, write_history_csv

    t_start = time.time()
    model, device = _setup(init_weights=init_weights, params=params, threads=threads, seed=seed,
                           deterministic=deterministic, precision=precision)
    x, y = read_dataset_h5(train_h5, "train")
    x_test, y_test = read_dataset_h5(test_h5, "test")
    sel, stop = params["selection"], params["stopping"]
    pass_score = stop["target"] * stop["pass_factor"]
    predict = make_predictor(model, max(PREDICT_BATCH, sel["scan_batch"]))
    state = Selection(order=scan_order(len(x), shuffle_seed).tolist())
    backup = Path(files["backup"])
    fingerprint = run_fingerprint(model, SimpleNamespace(x=x, y=y), 0, {"params": params, "seed": seed,
                                  "shuffle_seed": shuffle_seed, "precision": precision})
    saved = load_backup(model, backup, fingerprint)
    if saved is not None:
        state.set_state(saved["callbacks"][state.name])
        state.rows = list(saved["history"])
        print(f"resuming after step {saved['epochs_done']}: {len(state.selected)} selected, "
              f"{state.position} scanned ({backup})", flush=True)
    install_sigterm_handler()
    checkpoints = list(np.linspace(0, len(x), sel["test_checkpoints"] + 1)[1:].round().astype(int))

    def train_on(indices):
        return train_until(model, x, y, indices, target=stop["target"], batch_size=params["batch_size"], seed=seed,
                           phase=len(state.rows), predict=predict,
                           max_epochs=stop["max_epochs"] if not state.rows else sel["max_epochs_per_addition"])

    last_backup = [time.perf_counter()]

    def on_step(s):
        row = s.rows[-1]
        before = s.rows[-2]["scanned"] if len(s.rows) > 1 else 0
        crossed = any(before < c <= s.position for c in checkpoints)  # test-score curve, a few points
        row["test_score"] = float(pair_scores(y_test, predict(x_test)).mean()) if crossed else float("nan")
        print(f"step {row['step']}: scanned {row['scanned']}/{len(x)}, selected {row['selected']}, "
              f"train metric {row['train_metric']:.3f} after {row['epochs']} epochs ({row['seconds']:.1f}s)",
              flush=True)
        # a backup at most every BACKUP_SECONDS (and after the first phase): a kill loses at most that much
        if len(s.rows) == 1 or time.perf_counter() - last_backup[0] >= BACKUP_SECONDS:
            save_backup(model, backup, len(s.rows), s.rows, [s], stopped=False, fingerprint=fingerprint)
            last_backup[0] = time.perf_counter()

    select_coreset(state, score_pairs=lambda idx: pair_scores(y[idx], predict(x[idx])), train_on=train_on,
                   initial=sel["initial"], pass_score=pass_score, scan_batch=sel["scan_batch"], on_step=on_step)
    final_train = float(pair_scores(y[state.selected], predict(x[state.selected])).mean())
    state.rows.append({"step": len(state.rows), "scanned": len(x), "selected": len(state.selected), "added_index": -1,
                       "train_metric": final_train, "epochs": 0, "seconds": 0.0,
                       "test_score": float(pair_scores(y_test, predict(x_test)).mean())})
    test, arrays = _evaluate(predict, x, y, np.arange(len(x)), x_test, y_test, pass_score, params["keep_predictions"])
    metrics = {"test": test, "run": "shuffled" if shuffle_seed is not None else "in_order",
               "shuffle_seed": shuffle_seed, "pairs_used": len(state.selected), "train_pairs": int(len(x)),
               "pass_score": pass_score, "train_metric_final": final_train,
               "epochs_run": int(sum(r["epochs"] for r in state.rows)),
               "gradient_steps": int(sum(r["epochs"] * math.ceil(r["selected"] / params["batch_size"])
                                         for r in state.rows)),
               "wall_seconds_this_run": round(time.time() - t_start, 3), "params": params, "seed": seed, **device}
    save_model(model, files["model"])
    write_history_csv(files["history"], state.rows)
    with atomic_path(files["selected"]) as tmp:
        pd.DataFrame({"order": range(len(state.selected)), "index": state.selected}).to_csv(tmp, index=False)
    _save_arrays(files["predictions"], arrays)
    write_json(files["metrics"], metrics)
    shutil.rmtree(backup, ignore_errors=True)
    return metrics


def control_indices(kind: str, n_train: int, *, size: int | None = None, seed: int | None = None) -> np.ndarray:
    """(a)/(d) ``random``: a seeded subset of ``size`` pairs; (b) ``full``: every pair."""
    if kind == "full":
        return np.arange(n_train)
    if kind == "random":
        if size is None or seed is None:
            raise ValueError("a random control needs size and seed")
        if not 0 < size <= n_train:
            raise ValueError(f"random control of size={size} from {n_train} training pairs")
        return np.sort(np.random.default_rng(seed).choice(n_train, size, replace=False))
    raise ValueError(f"unknown control kind '{kind}' (use random or full)")


def run_control(*, train_h5, test_h5, init_weights, files: dict, params: dict, kind: str, size: int | None,
                subset_seed: int | None, threads: int, seed: int, deterministic: bool,
                precision: str = "float32") -> dict:
    """Train on a fixed subset under the training contract, to the same stopping rule as selection.

    Stops at the end of the first epoch whose inference-mode score on its own
    training pairs exceeds the target (never past ``stopping.max_epochs``).
    """
    model, device = _setup(init_weights=init_weights, params=params, threads=threads, seed=seed,
                           deterministic=deterministic, precision=precision)
    import keras

    from anatomy.io import read_dataset_h5
    from anatomy.training.contract import fit_with_contract
    from anatomy.training.pipeline import ArrayData

    x, y = read_dataset_h5(train_h5, "train")
    x_test, y_test = read_dataset_h5(test_h5, "test")
    stop = params["stopping"]
    pass_score = stop["target"] * stop["pass_factor"]
    idx = control_indices(kind, len(x), size=size, seed=subset_seed)
    predict = make_predictor(model, max(PREDICT_BATCH, params["selection"]["scan_batch"]))

    class StopAtTarget(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            metric = float(pair_scores(y[idx], predict(x[idx])).mean())
            if logs is not None:
                logs["train_metric"] = metric
            if metric > stop["target"]:
                self.model.stop_training = True

    data = ArrayData(x[idx], y[idx], batch_size=params["batch_size"], seed=seed,
                     target=lambda b: keras.ops.cast(b, "float32"))
    arrays = {}

    def evaluate(m):
        test, a = _evaluate(predict, x, y, np.arange(len(x)), x_test, y_test, pass_score, params["keep_predictions"])
        arrays.update(a)
        return test

    metrics = fit_with_contract(
        model, data, epochs=stop["max_epochs"], files=files, callbacks=[StopAtTarget()], evaluate=evaluate,
        info={"run": kind if kind == "full" else f"random_seed{subset_seed}", "pairs_used": int(len(idx)),
              "train_pairs": int(len(x)), "subset_seed": subset_seed, "pass_score": pass_score,
              "gradient_steps": None, "params": params, "seed": seed, **device},
    )
    metrics["gradient_steps"] = int(metrics["epochs_run"] * data.steps_per_epoch)
    arrays["indices"] = idx
    _save_arrays(files["predictions"], arrays)
    from anatomy.io import write_json

    write_json(files["metrics"], metrics)
    return metrics


# ---------------------------------------------------------------- aggregation (no TensorFlow)

RUN_LABELS = {"in_order": "selection, in order", "shuffled": "selection, shuffled order", "full": "full training set"}


def run_label(run: str) -> str:
    if run.startswith("random_seed"):
        return f"random subset (seed {run[len('random_seed'):]})"
    return RUN_LABELS.get(run, run)


def runs_table(metrics: dict) -> "pd.DataFrame":
    """One row per run from its metrics.json: the study's table (results/coreset/runs.csv)."""
    import pandas as pd

    rows = []
    for run, m in metrics.items():
        t = m["test"]
        rows.append({"run": run, "description": run_label(run), "pairs_used": m["pairs_used"],
                     "train_pairs": m["train_pairs"], "test_score_thresholded": t["score"],
                     "test_score_soft_as_published": t["score_soft_as_published"], "test_mean_iou": t["mean_iou"],
                     "recheck_pass_fraction": t["recheck_pass_fraction"], "epochs_run": m["epochs_run"],
                     "gradient_steps": m["gradient_steps"]})
    return pd.DataFrame(rows)


def recheck_histogram(scores: dict, bins: int = 10) -> "pd.DataFrame":
    """Counts of re-check scores per run in ``bins`` equal bins over [0, 1] (the metric takes 11 values)."""
    import pandas as pd

    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for run, s in scores.items():
        counts, _ = np.histogram(np.asarray(s), bins=edges)
        for lo, hi, c in zip(edges[:-1], edges[1:], counts):
            rows.append({"run": run, "bin_low": lo, "bin_high": hi, "pairs": int(c)})
    return pd.DataFrame(rows)


def verdict(runs: "pd.DataFrame", *, pass_score: float) -> "pd.DataFrame":
    """The study's answer to the post's 271 / 408 / 0.9928 and its two implicit claims."""
    import pandas as pd

    r = runs.set_index("run")
    n = int(r["train_pairs"].iloc[0])
    inord, shuf = r.loc["in_order"], r.loc["shuffled"]
    rand = r[[k.startswith("random_seed") for k in r.index]]
    full = r.loc["full"]
    pub_n = PUBLISHED["train_size"]
    gap = float(inord["test_score_thresholded"] - rand["test_score_thresholded"].mean())
    spread = float(rand["test_score_thresholded"].max() - rand["test_score_thresholded"].min())
    rows = [
        {"claim": "pairs selected in order", "published": f"271 of {pub_n:,} (2.7%)",
         "measured": f"{int(inord['pairs_used'])} of {n:,} ({inord['pairs_used'] / n:.1%})",
         "verdict": "the selected fraction at this scale; the count depends on image size and stopping rule"},
        {"claim": "pairs selected, shuffled order", "published": f"408 of {pub_n:,} (4.1%), run on the first "
                                                               "run's weights, scoring one pair and adding another",
         "measured": f"{int(shuf['pairs_used'])} of {n:,} ({shuf['pairs_used'] / n:.1%}) from fresh weights",
         "verdict": ("order matters little" if abs(shuf["pairs_used"] - inord["pairs_used"])
                     <= 0.25 * inord["pairs_used"] else "the count depends on the scan order")},
        {"claim": "test score of the selected model", "published": "0.9928 (soft sigmoid; a model trained on up "
                                                                 "to 271 + 408 pairs)",
         "measured": f"{inord['test_score_thresholded']:.4f} thresholded, {inord['test_score_soft_as_published']:.4f} "
                     f"soft as published, mean IoU {inord['test_mean_iou']:.3f}",
         "verdict": ("the soft score flatters the model" if inord["test_score_soft_as_published"]
                     > inord["test_score_thresholded"] else "the soft score does not flatter the model")},
        {"claim": "selection beats a random subset of the same size", "published": "not tested",
         "measured": f"selected {inord['test_score_thresholded']:.4f} vs random {rand['test_score_thresholded'].mean():.4f}"
                     f" (seeds differ by {spread:.4f}); full set {full['test_score_thresholded']:.4f}",
         "verdict": ("selection beats mere size" if gap > max(spread, 0.01)
                     else "random subsets of the same size do as well: size, not selection" if gap > -max(spread, 0.01)
                     else "random subsets of the same size do better")},
        {"claim": f"every training pair now scores >= {pass_score:.4f}", "published": "asserted, never checked",
         "measured": f"{inord['recheck_pass_fraction']:.1%} (in order), {shuf['recheck_pass_fraction']:.1%} (shuffled)",
         "verdict": "holds" if min(inord["recheck_pass_fraction"], shuf["recheck_pass_fraction"]) >= 1.0
         else "does not hold: the final models fail pairs the scan had passed"},
    ]
    return pd.DataFrame(rows)
