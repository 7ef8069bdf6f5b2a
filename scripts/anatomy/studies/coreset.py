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
was computed); controls of the same size chosen at random (one per seed) and
the full set are trained twice - to the same stopping rule ("stop at target")
and for exactly the in-order selection's number of gradient steps ("matched
gradient steps", the budget the verdict decides on, since the selection
retrains after each of its hundreds of additions); and the post's "every pair
now passes" is re-checked with each final model.

Scores here are always inference-mode (dropout off); the post's stopping rule
read Keras's training-mode metric during fit. The verdict states the difference.

The metric (:func:`pair_scores`) is the mean over IoU thresholds 0.5, 0.55,
..., 0.95 of [IoU > t] per image, an empty mask with an empty prediction
scoring 1 - what the post's ``floor(max(0, (IoU - 0.45) x 20)) / 10`` stands
for (that formula gives 1.1 at IoU = 1).

This module holds the metric and the selection with its training; the
controls are :mod:`anatomy.studies.coreset_controls`; the runs table, the
re-check histogram and the published claims are
:mod:`anatomy.studies.coreset_results`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from anatomy.training.setup import RunSettings

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
    while state.position < n and all(math.isfinite(r["train_metric"]) for r in state.rows[-1:]):
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
        if not math.isfinite(metric):  # diverged (the training contract's NaN guard): a result, not an error
            break
    return state


# ---------------------------------------------------------------- training (TensorFlow)

def _load(x, y):
    return x.astype("float32") / 255.0, y.astype("float32")


def make_predictor(model, batch_size: int):
    """Probabilities of the model in inference mode, in batches (one traced function)."""
    import tensorflow as tf

    # one trace for every batch size (the scan's chunks, the selected set, the test set)
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
    fn = tf.function(lambda a: model(a, training=False), input_signature=[spec])

    def predict(x_uint8):
        out = []
        for s in range(0, len(x_uint8), batch_size):
            out.append(fn(tf.constant(x_uint8[s:s + batch_size].astype("float32") / 255.0)).numpy())
        return np.concatenate(out) if out else np.zeros((0,) + tuple(model.output_shape[1:]), "float32")

    return predict


def train_until(train_batch, x, y, indices, *, target: float, max_epochs: int, batch_size: int, seed: int,
                phase: int, predict) -> tuple[float, int]:
    """Epochs over ``indices`` (at least one) until the inference-mode score on them exceeds ``target``.

    ``train_batch(x, y)`` makes one gradient step (:func:`anatomy.training.step.make_train_step`,
    or ``model.train_on_batch``: the same steps, traced twice as often). Batches
    come from a NumPy generator seeded by (seed, phase, epoch), so a resumed run
    trains exactly as an uninterrupted one.
    """
    idx = np.asarray(indices)
    metric = float("nan")
    for epoch in range(max_epochs):
        perm = np.random.default_rng([seed, phase, epoch]).permutation(idx)
        for s in range(0, len(perm), batch_size):
            b = np.sort(perm[s:s + batch_size])
            train_batch(*_load(x[b], y[b]))
        metric = float(pair_scores(y[idx], predict(x[idx])).mean())
        if metric > target or not math.isfinite(metric):
            return metric, epoch + 1
    return metric, max_epochs


def selection_trainer(train_batch, x, y, params: dict, *, seed: int, predict, state: Selection) -> Callable:
    """``train_on(indices)`` for :func:`select_coreset`: the first phase up to ``stopping.max_epochs``, each
    later one up to ``selection.max_epochs_per_addition``, batches seeded by the phase."""
    stop, sel = params["stopping"], params["selection"]

    def train_on(indices):
        return train_until(train_batch, x, y, indices, target=stop["target"], batch_size=params["batch_size"],
                           seed=seed, phase=len(state.rows), predict=predict,
                           max_epochs=stop["max_epochs"] if not state.rows else sel["max_epochs_per_addition"])

    return train_on


def select_in_memory(model, x, y, params: dict, *, train_batch, seed: int, shuffle_seed: int | None = None
                     ) -> Selection:
    """The selection on arrays, without files, backups or test checkpoints (the benchmark, the tests)."""
    sel, stop = params["selection"], params["stopping"]
    predict = make_predictor(model, max(PREDICT_BATCH, sel["scan_batch"]))
    state = Selection(order=scan_order(len(x), shuffle_seed).tolist())
    return select_coreset(state, score_pairs=lambda idx: pair_scores(y[idx], predict(x[idx])),
                          train_on=selection_trainer(train_batch, x, y, params, seed=seed, predict=predict, state=state),
                          initial=sel["initial"], pass_score=stop["target"] * stop["pass_factor"],
                          scan_batch=sel["scan_batch"])


def evaluate_model(predict, x_train, y_train, scanned, x_test, y_test, pass_score: float, keep: int) -> tuple[dict, dict]:
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


def setup_model(*, init_weights, params, run_settings: RunSettings):
    from anatomy.training.setup import configure_tensorflow

    device = configure_tensorflow(run_settings)
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


def run_selection(*, train_h5, test_h5, init_weights, files: dict, params: dict, shuffle_seed: int | None,
                  run_settings: RunSettings, backup_seconds: float | None = None) -> dict:
    """The selection as one training step; writes model, history (one row per addition), selected, metrics.

    Resumable: the model, optimizer, dropout RNG and the :class:`Selection`
    state are backed up after the first phase and then after an addition once
    ``backup_seconds`` (default: the contract's ``BACKUP_SECONDS``) have passed
    (saving after each of hundreds of short additions cost more than the
    additions), with the training contract's ``BackupSchedule`` and
    ``save_backup`` to ``files["backup"]`` (not a declared output). A rerun repeats the steps
    after the backup exactly: batches are seeded by (seed, phase, epoch).
    """
    import shutil
    from types import SimpleNamespace

    from anatomy.io import read_dataset_h5, write_json, write_npz
    from anatomy.training.contract import BACKUP_SECONDS, BackupSchedule, install_sigterm_handler, load_backup, \
        run_fingerprint, run_metrics, save_backup, save_model, write_history_csv
    from anatomy.training.step import make_train_step

    t_start = time.time()
    model, device = setup_model(init_weights=init_weights, params=params, run_settings=run_settings)
    seed = run_settings.seed
    x, y = read_dataset_h5(train_h5, "train")
    x_test, y_test = read_dataset_h5(test_h5, "test")
    sel, stop = params["selection"], params["stopping"]
    pass_score = stop["target"] * stop["pass_factor"]
    predict = make_predictor(model, max(PREDICT_BATCH, sel["scan_batch"]))
    train_batch = make_train_step(model)
    state = Selection(order=scan_order(len(x), shuffle_seed).tolist())
    backup = Path(files["backup"])
    fingerprint = run_fingerprint(model, SimpleNamespace(x=x, y=y), 0, {"params": params, "seed": seed,
                                  "shuffle_seed": shuffle_seed, "precision": run_settings.precision})
    saved = load_backup(model, backup, fingerprint)
    resumed_from = 0 if saved is None else int(saved["epochs_done"])
    if saved is not None:
        state.set_state(saved["callbacks"][state.name])
        state.rows = list(saved["history"])
        print(f"resuming after step {saved['epochs_done']}: {len(state.selected)} selected, "
              f"{state.position} scanned ({backup})", flush=True)
    install_sigterm_handler()
    checkpoints = list(np.linspace(0, len(x), sel["test_checkpoints"] + 1)[1:].round().astype(int))

    train_on = selection_trainer(train_batch, x, y, params, seed=seed, predict=predict, state=state)
    schedule = BackupSchedule(BACKUP_SECONDS if backup_seconds is None else backup_seconds)

    def on_step(s):
        row = s.rows[-1]
        before = s.rows[-2]["scanned"] if len(s.rows) > 1 else 0
        crossed = any(before < c <= s.position for c in checkpoints)  # test-score curve, a few points
        row["test_score"] = float(pair_scores(y_test, predict(x_test)).mean()) if crossed else float("nan")
        print(f"step {row['step']}: scanned {row['scanned']}/{len(x)}, selected {row['selected']}, "
              f"train metric {row['train_metric']:.3f} after {row['epochs']} epochs ({row['seconds']:.1f}s)",
              flush=True)
        if schedule.due():  # after the first phase, then every backup_seconds: a kill loses at most that much
            save_backup(model, backup, len(s.rows), s.rows, [s], stopped=False, fingerprint=fingerprint)
            schedule.saved()

    select_coreset(state, score_pairs=lambda idx: pair_scores(y[idx], predict(x[idx])), train_on=train_on,
                   initial=sel["initial"], pass_score=pass_score, scan_batch=sel["scan_batch"], on_step=on_step)
    final_train = float(pair_scores(y[state.selected], predict(x[state.selected])).mean())
    state.rows.append({"step": len(state.rows), "scanned": len(x), "selected": len(state.selected), "added_index": -1,
                       "train_metric": final_train, "epochs": 0, "seconds": 0.0,
                       "test_score": float(pair_scores(y_test, predict(x_test)).mean())})
    test, arrays = evaluate_model(predict, x, y, np.arange(len(x)), x_test, y_test, pass_score, params["keep_predictions"])
    diverged = not all(math.isfinite(r["train_metric"]) for r in state.rows)
    # the contract's keys; "epochs" and "resumed from" count the selection's steps (one per addition)
    metrics = {"test": test, **run_metrics(state.rows, diverged=diverged, max_epochs=None, t_start=t_start,
                                           resumed_from=resumed_from,
                                           epochs_run=sum(r["epochs"] for r in state.rows)),
               "run": "shuffled" if shuffle_seed is not None else "in_order",
               "init_weights": Path(init_weights).name, "shuffle_seed": shuffle_seed, "pairs_used": len(state.selected), "train_pairs": int(len(x)),
               "pass_score": pass_score, "train_metric_final": final_train,
               "gradient_steps": int(sum(r["epochs"] * math.ceil(r["selected"] / params["batch_size"])
                                         for r in state.rows)),
               "params": params, "seed": seed, **device}
    save_model(model, files["model"])
    write_history_csv(files["history"], state.rows)
    write_selected(files["selected"], state.selected)
    write_npz(files["predictions"], compressed=True, **arrays)
    write_json(files["metrics"], metrics)
    shutil.rmtree(backup, ignore_errors=True)
    return metrics


def write_selected(path, indices) -> None:
    """selected.csv: the training pairs a run used (``index``), in the order it took them (``order``)."""
    import pandas as pd

    from anatomy.io import atomic_path

    with atomic_path(path) as tmp:
        pd.DataFrame({"order": range(len(indices)), "index": list(map(int, indices))}).to_csv(tmp, index=False)
