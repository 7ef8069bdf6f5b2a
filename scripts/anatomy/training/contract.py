"""The training step contract (docs/design.md, "The training contract").

One call, :func:`fit_with_contract`, trains one model and writes the three
declared outputs - ``model.keras``, ``history.csv`` (one row per epoch) and
``metrics.json`` - while backing the training state up at the end of epochs to
a folder that is *not* a declared output (Snakemake deletes the outputs of a
failed job): after the first epoch, then whenever ``backup_seconds`` (default
:data:`BACKUP_SECONDS`) have passed since the last backup, and when training
ends. A killed, preempted (SIGTERM) or crashed job, rerun, resumes after its
last backed-up epoch (so at most about ``backup_seconds`` of training is
redone), and its history lists every epoch exactly once. Saving after every
epoch instead cost the coreset's 60-epoch controls about a minute each.

A loss that becomes NaN ends the run cleanly (``TerminateOnNaN``): the history
is kept and ``metrics.json`` says ``diverged: true``; the job succeeds, since a
diverging learning rate is a result, not an error.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import signal
import time
from pathlib import Path

import keras
import numpy as np

from anatomy.io import atomic_path, write_json
from anatomy.training.setup import TIMING_ENV

PREEMPTED_EXIT = 143  # 128 + SIGTERM, what a scheduler expects
BACKUP_SECONDS = 10.0  # at most this much training is redone after a kill (plus the epoch under way)


class Preempted(SystemExit):
    """Raised by the SIGTERM handler; the last backup is already on disk."""

    def __init__(self):
        super().__init__(PREEMPTED_EXIT)


def install_sigterm_handler():
    def handler(signum, frame):
        print("SIGTERM received: stopping; the last backup is kept for the rerun", flush=True)
        raise Preempted()

    signal.signal(signal.SIGTERM, handler)


class PublishedStopping(keras.callbacks.Callback):
    """The crops article's stopping rule, as a Keras callback whose state survives resume.

    Stops once validation accuracy has not improved for ``patience`` epochs AND
    training accuracy x ``ratio`` > validation accuracy (the article's rule; it
    ran with patience 15, ratio 0.995). The state is saved with each backup, so a
    resumed run stops where an uninterrupted one would.
    """

    name = "published_stopping"

    def __init__(self, patience: int, ratio: float, monitor: str = "val_accuracy", train_metric: str = "accuracy"):
        super().__init__()
        self.patience, self.ratio = patience, ratio
        self.monitor, self.train_metric = monitor, train_metric
        self.best = -math.inf
        self.best_epoch = -1
        self.wait = 0

    def get_state(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def set_state(self, state):
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        val, train = logs.get(self.monitor), logs.get(self.train_metric)
        if val is None or train is None:
            return
        if val > self.best:
            self.best, self.best_epoch, self.wait = float(val), epoch + 1, 0
        else:
            self.wait += 1
        if self.wait >= self.patience and train * self.ratio > val:
            self.model.stop_training = True


class EvaluateEachEpoch(keras.callbacks.Callback):
    """Score ``data = (x, y)`` after every epoch and add ``{prefix}{metric}`` to the epoch's logs.

    Place it before the callbacks that read the logs (stopping, history).
    """

    def __init__(self, data, prefix: str = "test_", batch_size: int = 1000):
        super().__init__()
        self.data, self.prefix, self.batch_size = data, prefix, batch_size

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        res = self.model.evaluate(*self.data, batch_size=self.batch_size, verbose=0, return_dict=True)
        logs.update({f"{self.prefix}{k}": float(v) for k, v in res.items()})


class EpochTimer(keras.callbacks.Callback):
    """When each epoch began and ended and each of its steps ended (``time.perf_counter``), for
    :func:`epoch_costs`. Placed last, so that an epoch's end includes every other callback's work."""

    def __init__(self):
        super().__init__()
        self.epochs: list = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append({"begin": time.perf_counter(), "steps": []})

    def on_train_batch_end(self, batch, logs=None):
        self.epochs[-1]["steps"].append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[-1]["end"] = time.perf_counter()


def epoch_costs(timer: EpochTimer) -> dict:
    """What one epoch costs, from two timed epochs of the same steps: ``step_seconds`` (the second epoch's
    steps after its first), ``epoch_end_seconds`` (from its last step to its end: validation, per-epoch
    evaluation, backups) and ``first_epoch_extra_seconds`` (the first epoch over the second: tracing)."""
    first, second = timer.epochs[:2]
    steps = second["steps"]
    walls = [e["end"] - e["begin"] for e in (first, second)]
    return {"step_seconds": (steps[-1] - steps[0]) / max(1, len(steps) - 1),
            "epoch_end_seconds": second["end"] - steps[-1], "first_epoch_extra_seconds": walls[0] - walls[1],
            "timed_steps": len(steps)}


def timing_request() -> tuple[int, Path] | None:
    """(steps, folder) when :data:`TIMING_ENV` asks this process to time its training, else None."""
    value = os.environ.get(TIMING_ENV)
    if not value:
        return None
    steps, folder = value.split(":", 1)
    return max(2, int(steps)), Path(folder)


class RecordEachEpoch(keras.callbacks.Callback):
    """A callback that keeps per-epoch records in the lists named by ``fields`` (each starts empty), backed up
    with the run under its ``name`` (:func:`fit_with_contract`), so a resumed run keeps the epochs before the kill."""

    name = "record"
    fields: tuple = ()

    def __init__(self):
        super().__init__()
        for f in self.fields:
            setattr(self, f, [])

    def get_state(self):
        return {f: getattr(self, f) for f in self.fields}

    def set_state(self, state):
        for f in self.fields:
            setattr(self, f, state.get(f, []))


class HistoryRecorder(keras.callbacks.Callback):
    """Appends one row per finished epoch to ``rows`` and prints one progress line (no carriage-return bars)."""

    def __init__(self, rows: list, epochs: int):
        super().__init__()
        self.rows, self.epochs = rows, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in logs.items() if np.ndim(v) == 0})
        row["lr"] = _current_lr(self.model)
        row["seconds"] = round(time.perf_counter() - self._t0, 3)
        self.rows.append(row)
        shown = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k not in ("epoch", "seconds"))
        print(f"epoch {epoch + 1}/{self.epochs} {shown} ({row['seconds']:.1f}s)", flush=True)


def _current_lr(model) -> float:
    opt = getattr(model, "optimizer", None)
    if opt is None:
        return float("nan")
    lr = opt.learning_rate
    try:
        return float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr))
    except (TypeError, ValueError):
        return float("nan")


class BackupSchedule:
    """When a backup is due: the first time asked, then once ``every_seconds`` have passed since the
    last one (0: every time). The one policy of the contract's epochs and the coreset selection's steps."""

    def __init__(self, every_seconds: float = BACKUP_SECONDS):
        self.every_seconds = every_seconds
        self.saved_at = None

    def due(self) -> bool:
        return self.saved_at is None or time.perf_counter() - self.saved_at >= self.every_seconds

    def saved(self) -> None:
        self.saved_at = time.perf_counter()


def _make_backup(backup_dir: Path, history_rows: list, stateful: list, fingerprint: str | None = None,
                 every_seconds: float = BACKUP_SECONDS, last_epoch: int | None = None):
    schedule = BackupSchedule(every_seconds)

    class _Backup(keras.callbacks.Callback):
        """Weights + optimizer + history + callback state in one folder, swapped in atomically: as
        :class:`BackupSchedule` says, and at the end (last epoch or a stop)."""

        def on_epoch_end(self, epoch, logs=None):
            if schedule.due() or self.model.stop_training or epoch + 1 == last_epoch:
                save_backup(self.model, backup_dir, epoch + 1, history_rows, stateful, fingerprint=fingerprint)
                schedule.saved()

    return _Backup()


def save_backup(model, backup_dir: Path, epochs_done: int, history_rows, stateful, stopped: bool | None = None,
                fingerprint: str | None = None):
    backup_dir.mkdir(parents=True, exist_ok=True)
    tmp = backup_dir / f".tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    model.save_weights(tmp / "state.weights.h5")  # Keras 3: includes the optimizer's variables
    # ...but not the dropout layers' random-number state: without it a resumed run
    # would redraw the masks of epoch 1 and drift from an uninterrupted one.
    np.savez(tmp / "rng.npz", *[v.numpy() for v in _rng_variables(model)])
    state = {
        "epochs_done": epochs_done,
        "history": history_rows,
        "callbacks": {cb.name: cb.get_state() for cb in stateful},
        "stopped": bool(model.stop_training if stopped is None else stopped),
        "fingerprint": fingerprint,
    }
    (tmp / "state.json").write_text(json.dumps(state))
    final = backup_dir / f"epoch-{epochs_done:05d}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in backup_dir.glob("epoch-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def _rng_variables(model):
    return [v for v in model.variables if "seed_generator_state" in v.path]


MACHINE_KEYS = ("device", "device_name", "cpu_count", "versions")  # may change between a kill and the rerun


def run_fingerprint(model, data, epochs: int, info: dict | None) -> str:
    """What a backup must have been made with to be resumed: the run's settings (``info``
    without the machine), the optimizer's config, the starting weights and the training data."""
    h = hashlib.sha256()
    settings = {k: v for k, v in (info or {}).items() if k not in MACHINE_KEYS}
    optimizer = model.optimizer.get_config() if getattr(model, "optimizer", None) is not None else None
    if optimizer:  # Keras numbers the names of later optimizers in one process (adam, adam_1): not a setting
        optimizer = {k: v for k, v in optimizer.items() if k != "name"}
    h.update(json.dumps([settings, optimizer, epochs, getattr(data, "batch_size", None),
                         getattr(data, "seed", None)], sort_keys=True, default=str).encode())
    for arr in [*model.get_weights(), getattr(data, "x", None), getattr(data, "y", None)]:
        if arr is not None:
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def load_backup(model, backup_dir: Path, fingerprint: str | None = None):
    """Restore the newest complete backup into ``model``; return its state or None.

    A backup whose ``fingerprint`` differs (made before the config, the data or
    the initial weights changed) is deleted, not resumed.
    """
    if not backup_dir.exists():
        return None
    for folder in sorted(backup_dir.glob("epoch-*"), reverse=True):
        try:
            state = json.loads((folder / "state.json").read_text())
            if fingerprint is not None and state.get("fingerprint") != fingerprint:
                print(f"backup {backup_dir} was made with a different configuration, data or initial weights; "
                      "starting afresh", flush=True)
                shutil.rmtree(backup_dir, ignore_errors=True)
                return None
            if model.optimizer is not None and not model.optimizer.built:  # its variables receive the backup's
                model.optimizer.build(model.trainable_variables)
            model.load_weights(folder / "state.weights.h5")
            with np.load(folder / "rng.npz") as rng:
                for k, v in enumerate(_rng_variables(model)):
                    v.assign(rng[f"arr_{k}"])
            return state
        except (OSError, ValueError, KeyError) as e:  # a damaged backup: try the one before
            print(f"backup {folder} unreadable ({e}); trying an older one", flush=True)
    return None


def write_history_csv(path, rows) -> None:
    cols = ["epoch"]
    for r in rows:
        cols += [k for k in r if k not in cols]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            for r in rows:
                w.writerow(r)


def save_model(model, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def run_metrics(history_rows: list, *, diverged: bool, max_epochs: int | None, t_start: float, resumed_from: int,
                epochs_run: int | None = None) -> dict:
    """The keys every training's ``metrics.json`` has, whatever its loop: whether it diverged, the epochs
    run (``epochs_run``, default one per history row) against ``max_epochs``, whether it stopped early, its
    training and wall seconds and the epoch (or step) a rerun resumed from."""
    run = len(history_rows) if epochs_run is None else epochs_run
    return {"diverged": bool(diverged), "epochs_run": int(run), "max_epochs": max_epochs,
            "stopped_early": bool(max_epochs is not None and run < max_epochs and not diverged),
            "train_seconds": round(sum(r["seconds"] for r in history_rows), 3),
            "wall_seconds_this_run": round(time.time() - t_start, 3), "resumed_from_epoch": int(resumed_from)}


def fit_with_contract(model, data, *, epochs: int, files: dict, validation=None, callbacks=(),
                      evaluate=None, info: dict | None = None, validation_batch_size: int = 1000,
                      export_model=None, backup_seconds: float = BACKUP_SECONDS, finish=None) -> dict:
    """Train ``model`` (compiled) on ``data`` and write the contract's outputs.

    ``data`` provides ``dataset(start_epoch, epochs)`` and ``steps_per_epoch``
    (:class:`anatomy.training.pipeline.ArrayData`). ``files`` holds the paths
    ``model``, ``history``, ``metrics`` and ``backup`` (the last not a declared
    output), and optionally ``tensorboard``: a folder for Keras' TensorBoard logs.
    ``evaluate(model)`` returns the final test metrics. ``export_model`` is saved
    as ``model.keras`` in place of ``model`` (e.g. the plain network inside a
    custom training wrapper). Callbacks with ``get_state``/``set_state`` and a
    ``name`` have their state backed up.
    ``backup_seconds``: the least time between two backups (0: after every epoch).
    ``finish(model, metrics)`` writes a study's extra outputs (predictions, ...)
    and may return more metrics; it runs after training and evaluation and
    before ``metrics.json``, and the backup is deleted last, so a job killed
    while it runs loses only that step: the rerun resumes from the final backup.
    """
    t_start = time.time()
    if model.optimizer is not None and not model.optimizer.built:
        # Built before fit traces its step: Keras otherwise creates the optimizer's variables inside the
        # first trace, and TensorFlow then traces the step twice (the U-Net's first epoch: 13 s -> 7 s).
        model.optimizer.build(model.trainable_variables)
    backup_dir = Path(files["backup"])
    stateful = [cb for cb in callbacks if hasattr(cb, "get_state")]
    history_rows: list = []
    fingerprint = run_fingerprint(model, data, epochs, info)
    state = load_backup(model, backup_dir, fingerprint)
    start = 0
    stopped = False
    if state is not None:
        start = state["epochs_done"]
        history_rows.extend(state["history"][:start])
        for cb in stateful:
            if cb.name in state["callbacks"]:
                cb.set_state(state["callbacks"][cb.name])
        stopped = state["stopped"]
        print(f"resuming from the backup after epoch {start} ({backup_dir})", flush=True)
    install_sigterm_handler()
    timing, timer = timing_request(), EpochTimer()
    # timed (anatomy.plan): two epochs of a few steps each, with everything the run does at an epoch's end
    run_epochs, steps = (min(2, epochs), min(timing[0], data.steps_per_epoch)) if timing else \
        (epochs, data.steps_per_epoch)
    fit_start = time.perf_counter()
    if start < epochs and not stopped:
        model.stop_training = False
        cbs = [keras.callbacks.TerminateOnNaN(), *callbacks, HistoryRecorder(history_rows, epochs),
               _make_backup(backup_dir, history_rows, stateful, fingerprint, backup_seconds, epochs)]
        if files.get("tensorboard"):  # opt-in (config `tensorboard: true`); a resumed run appends to the same folder
            cbs.append(keras.callbacks.TensorBoard(log_dir=str(files["tensorboard"]), write_graph=False,
                                                   profile_batch=0))
        model.fit(data.dataset(start, epochs), epochs=run_epochs, initial_epoch=start, steps_per_epoch=steps,
                  validation_data=validation,
                  validation_batch_size=validation_batch_size if isinstance(validation, tuple) else None,
                  callbacks=[*cbs, timer] if timing else cbs, shuffle=False, verbose=0)
    fit_end = time.perf_counter()
    diverged = any(not math.isfinite(r.get("loss", 0.0)) for r in history_rows)
    test = evaluate(model) if (evaluate is not None and not diverged) else {}
    metrics = {"test": test, **run_metrics(history_rows, diverged=diverged, max_epochs=epochs, t_start=t_start,
                                           resumed_from=start)}
    metrics.update(info or {})
    if finish is not None:
        metrics.update(finish(model, metrics) or {})
    save_model(model if export_model is None else export_model, files["model"])
    write_history_csv(files["history"], history_rows)
    write_json(files["metrics"], metrics)  # last: the job is complete once it exists
    shutil.rmtree(backup_dir, ignore_errors=True)
    if timing and len(timer.epochs) == 2:
        write_json(timing[1] / f"{hashlib.sha256(str(files['metrics']).encode()).hexdigest()[:16]}.json",
                   {"metrics": str(files["metrics"]), "fit_seconds": fit_end - fit_start, **epoch_costs(timer),
                    "steps_per_epoch": data.steps_per_epoch, "epochs": epochs})
    return metrics
