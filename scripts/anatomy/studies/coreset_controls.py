"""Study 4 (coreset), its controls: the full set and a random subset of the in-order selection's size,
each trained from that seed's initial weights under the training contract, with one of two budgets
(stop at target, or exactly that seed's in-order selection's gradient steps); their run names and budgets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from anatomy.studies.coreset import PREDICT_BATCH, evaluate_model, make_predictor, pair_scores, setup_model, \
    write_selected
from anatomy.training.setup import RunSettings


def control_indices(kind: str, n_train: int, *, size: int | None = None, seed: int | None = None) -> np.ndarray:
    """``random``: a seeded subset of ``size`` pairs (the run's seed); ``full``: every pair."""
    if kind == "full":
        return np.arange(n_train)
    if kind == "random":
        if size is None or seed is None:
            raise ValueError("a random control needs size and seed")
        if not 0 < size <= n_train:
            raise ValueError(f"random control of size={size} from {n_train} training pairs")
        return np.sort(np.random.default_rng(seed).choice(n_train, size, replace=False))
    raise ValueError(f"unknown control kind '{kind}' (use random or full)")


STOP_AT_TARGET = "stop at target"
MATCHED_STEPS = "matched gradient steps"
MATCHED_SUFFIX = "_matched_steps"


CONTROL_KINDS = ("full", "random")


def control_run_name(kind: str, matched: bool = False) -> str:
    """``full`` / ``random`` (stop at target), with ``_matched_steps`` for the budget-matched version
    (the run table's names, under control/ and above seed<s>/: rules/coreset.smk)."""
    if kind not in CONTROL_KINDS:
        raise ValueError(f"unknown control kind '{kind}' (use random or full)")
    return kind + (MATCHED_SUFFIX if matched else "")


def parse_control(name: str) -> dict:
    """Inverse of :func:`control_run_name`: kind and budget of a control's run name."""
    matched = name.endswith(MATCHED_SUFFIX)
    kind = name[:-len(MATCHED_SUFFIX)] if matched else name
    if kind not in CONTROL_KINDS:
        raise ValueError(f"'{name}' is not a control run (full or random, optionally {MATCHED_SUFFIX})")
    return {"kind": kind, "budget": MATCHED_STEPS if matched else STOP_AT_TARGET}


def budget_steps(selection_metrics_json) -> int:
    """The in-order selection's gradient steps, from its metrics.json: the matched controls' budget."""
    from anatomy.io import read_json

    steps = read_json(selection_metrics_json).get("gradient_steps")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{selection_metrics_json}: gradient_steps is {steps!r}, not a positive integer")
    return steps


def selected_size(selected_csv) -> int:
    """How many pairs a selection kept (its selected.csv): the random controls' size."""
    import pandas as pd

    return int(len(pd.read_csv(selected_csv)))


def matched_schedule(budget_steps: int, steps_per_epoch: int) -> tuple[int, int]:
    """(epochs, steps in the last epoch) that make exactly ``budget_steps`` gradient steps."""
    if budget_steps < 1 or steps_per_epoch < 1:
        raise ValueError(f"budget_steps={budget_steps}, steps_per_epoch={steps_per_epoch}: both must be >= 1")
    epochs = math.ceil(budget_steps / steps_per_epoch)
    return epochs, budget_steps - (epochs - 1) * steps_per_epoch


def stop_at_steps(budget_steps: int, steps_per_epoch: int):
    """A Keras callback that stops training after exactly ``budget_steps`` gradient steps (train for
    :func:`matched_schedule`'s epochs) and logs ``gradient_steps`` each epoch; the count follows from the epoch,
    so it survives resume."""
    import keras

    class StopAtSteps(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch * steps_per_epoch + batch + 1 >= budget_steps:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["gradient_steps"] = min(budget_steps, (epoch + 1) * steps_per_epoch)

    return StopAtSteps()


def run_control(*, train_h5, test_h5, init_weights, files: dict, params: dict, kind: str, size: int | None,
                run_settings: RunSettings, budget_steps: int | None = None) -> dict:
    """Train on a fixed subset under the training contract, with one of two budgets.

    ``budget_steps=None`` (stop at target): the selection's stopping rule - stop
    at the end of the first epoch whose inference-mode score on its own training
    pairs exceeds the target (never past ``stopping.max_epochs``).
    ``budget_steps=G`` (matched gradient steps): exactly G optimizer steps, the
    in-order selection's count, whatever the score on the training pairs (the
    last epoch is cut after the step that completes G); no per-epoch scoring.
    Both start from the same initial weights, with the same batch size, optimizer
    and learning rate as the selection of their seed; a random subset is drawn with that seed.
    """
    model, device = setup_model(init_weights=init_weights, params=params, run_settings=run_settings)
    seed = run_settings.seed
    import keras

    from anatomy.io import read_dataset_h5, write_npz
    from anatomy.training.contract import fit_with_contract
    from anatomy.training.pipeline import ArrayData

    x, y = read_dataset_h5(train_h5, "train")
    x_test, y_test = read_dataset_h5(test_h5, "test")
    stop = params["stopping"]
    pass_score = stop["target"] * stop["pass_factor"]
    idx = control_indices(kind, len(x), size=size, seed=seed if kind == "random" else None)
    predict = make_predictor(model, max(PREDICT_BATCH, params["selection"]["scan_batch"]))
    data = ArrayData(x[idx], y[idx], batch_size=params["batch_size"], seed=seed,
                     target=lambda b: keras.ops.cast(b, "float32"))
    steps_per_epoch = data.steps_per_epoch

    class StopAtTarget(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            metric = float(pair_scores(y[idx], predict(x[idx])).mean())
            if logs is not None:
                logs["train_metric"] = metric
            if metric > stop["target"]:
                self.model.stop_training = True

    if budget_steps is None:
        epochs, callbacks, budget = stop["max_epochs"], [StopAtTarget()], STOP_AT_TARGET
    else:
        epochs, _ = matched_schedule(int(budget_steps), steps_per_epoch)
        callbacks, budget = [stop_at_steps(int(budget_steps), steps_per_epoch)], MATCHED_STEPS
    arrays = {}

    def evaluate(m):
        test, a = evaluate_model(predict, x, y, np.arange(len(x)), x_test, y_test, pass_score, params["keep_predictions"])
        arrays.update(a)
        return test

    def finish(m, metrics):
        steps = metrics["epochs_run"] * steps_per_epoch
        arrays["indices"] = idx
        write_npz(files["predictions"], compressed=True, **arrays)
        write_selected(files["selected"], idx)
        return {"gradient_steps": int(steps if budget_steps is None else min(steps, int(budget_steps))),
                "train_metric_final": float(pair_scores(y[idx], predict(x[idx])).mean())}

    return fit_with_contract(
        model, data, epochs=epochs, files=files, callbacks=callbacks, evaluate=evaluate, finish=finish,
        info={"run": control_run_name(kind, matched=budget_steps is not None), "budget": budget,
              "init_weights": Path(init_weights).name,
              "budget_steps": None if budget_steps is None else int(budget_steps), "pairs_used": int(len(idx)),
              "train_pairs": int(len(x)), "pass_score": pass_score,
              "params": params, "seed": seed, **device},
    )
