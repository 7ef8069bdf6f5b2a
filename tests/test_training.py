"""The training contract: outputs, resume after SIGKILL, SIGTERM, divergence, the stopping rule."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT

TRAIN_SCRIPT = textwrap.dedent("""
    import sys, time, json
    from pathlib import Path
    sys.path.insert(0, {scripts!r})
    from anatomy.training.setup import RunSettings, configure_tensorflow
    configure_tensorflow(RunSettings(threads=1, seed=3, deterministic=True))
    import keras, numpy as np
    from anatomy.training.contract import fit_with_contract
    from anatomy.training.pipeline import ArrayData

    out = Path(sys.argv[1]); epochs = int(sys.argv[2]); pause_at = int(sys.argv[3]); lr = float(sys.argv[4])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (512, 8, 8, 1), dtype=np.uint8)
    y = (x.reshape(512, -1).mean(1) > 127).astype("int64")
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(lr, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])

    class Pause(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.params and pause_at >= 0 and self._epoch == pause_at and batch == 3:
                (out / "paused").write_text("1")
                time.sleep(600)
        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

    files = {{"model": out / "model.keras", "history": out / "history.csv", "metrics": out / "metrics.json",
             "backup": out / "backup"}}
    val = (x[:64].astype("float32") / 255.0, y[:64])
    fit_with_contract(model, ArrayData(x, y, batch_size=32, seed=3), epochs=epochs, files=files, validation=val,
                      callbacks=[Pause()], evaluate=lambda m: m.evaluate(*val, verbose=0, return_dict=True),
                      backup_seconds=0)
    np.save(out / "weights0.npy", model.get_weights()[0])
""")


def _start(out: Path, epochs: int, pause_at: int, lr: float = 0.05):
    script = out / "train.py"
    script.write_text(TRAIN_SCRIPT.format(scripts=str(ROOT / "scripts")))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, str(script), str(out), str(epochs), str(pause_at), str(lr)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)


def _wait_paused(out: Path, proc, timeout=120):
    t0 = time.time()
    while not (out / "paused").exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() - t0 < timeout, "training never reached the pause"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The 4-epoch reference run that both kill tests are compared with."""
    clean = tmp_path_factory.mktemp("clean")
    p = _start(clean, epochs=4, pause_at=-1)
    assert p.wait(timeout=120) == 0
    return clean


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_mid_epoch_resumes_after_last_finished_epoch(tmp_path, sig, uninterrupted):
    import numpy as np

    killed, clean = tmp_path / "killed", uninterrupted
    killed.mkdir()
    p = _start(killed, epochs=4, pause_at=2)  # dies inside the third epoch
    _wait_paused(killed, p)
    p.send_signal(sig)
    out = p.communicate(timeout=60)[0]
    if sig == signal.SIGTERM:
        assert p.returncode == 143, out  # preempted: non-zero, so a scheduler retries it
    assert not (killed / "metrics.json").exists()
    assert (killed / "backup" / "epoch-00002").exists()

    (killed / "paused").unlink()
    p = _start(killed, epochs=4, pause_at=-1)
    out = p.communicate(timeout=120)[0]
    assert p.returncode == 0, out
    assert "resuming from the backup after epoch 2" in out
    hist = pd.read_csv(killed / "history.csv")
    assert hist["epoch"].tolist() == [1, 2, 3, 4]
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == 2 and metrics["epochs_run"] == 4

    ref = pd.read_csv(clean / "history.csv")
    # Same batches, same dropout draws, same optimizer state: the resumed run matches.
    np.testing.assert_allclose(hist["loss"], ref["loss"], rtol=1e-5)
    np.testing.assert_allclose(np.load(killed / "weights0.npy"), np.load(clean / "weights0.npy"), rtol=1e-5, atol=1e-6)
    ref_metrics = json.loads((clean / "metrics.json").read_text())
    assert ref_metrics["resumed_from_epoch"] == 0 and ref_metrics["epochs_run"] == 4
    assert metrics["test"] == pytest.approx(ref_metrics["test"], rel=1e-5)  # the final metrics match too


def test_divergence_ends_cleanly_with_history_kept(tmp_path):
    p = _start(tmp_path, epochs=3, pause_at=-1, lr=1e12)
    out = p.communicate(timeout=120)[0]
    assert p.returncode == 0, out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["diverged"] is True and metrics["test"] == {}
    assert len(pd.read_csv(tmp_path / "history.csv")) >= 1


def test_published_stopping_rule_needs_both_conditions():
    from anatomy.training.contract import PublishedStopping

    class M:
        stop_training = False

    cb = PublishedStopping(patience=2, ratio=0.995)
    cb.set_model(M()) if hasattr(cb, "set_model") else None
    cb._model = cb.model if hasattr(cb, "model") else M()
    logs = [(0.90, 0.95), (0.95, 0.94), (0.96, 0.94)]  # val stalls for 2 epochs but train*0.995 > val only at 3rd
    for epoch, (train, val) in enumerate(logs):
        cb.on_epoch_end(epoch, {"accuracy": train, "val_accuracy": val})
    assert cb.wait == 2 and cb.model.stop_training is True
    cb2 = PublishedStopping(patience=2, ratio=0.995)
    cb2.set_model(M())
    for epoch, (train, val) in enumerate([(0.90, 0.95), (0.90, 0.94), (0.90, 0.94)]):
        cb2.on_epoch_end(epoch, {"accuracy": train, "val_accuracy": val})
    assert cb2.wait == 2 and cb2.model.stop_training is False  # train accuracy too low: keep going
    state = cb.get_state()
    cb3 = PublishedStopping(patience=2, ratio=0.995)
    cb3.set_state(state)
    assert cb3.get_state() == state


def test_a_backup_made_with_another_configuration_is_not_resumed(tmp_path, capsys):
    # Killed, then the config changes (Snakemake reruns the job since its params changed):
    # the old backup must not be resumed under the new settings. (Resuming is tested above.)
    from anatomy.training.setup import RunSettings, configure_tensorflow

    configure_tensorflow(RunSettings(threads=1, seed=0))
    import keras
    import numpy as np

    from anatomy.training.contract import fit_with_contract, run_fingerprint, save_backup
    from anatomy.training.pipeline import ArrayData

    x = np.random.default_rng(0).integers(0, 256, (64, 4, 4, 1), dtype=np.uint8)
    y = (x.reshape(64, -1).mean(1) > 127).astype("int64")
    data = ArrayData(x, y, batch_size=32, seed=0)

    def model(lr):  # the same initial weights: only the learning rate differs
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
        m.compile(keras.optimizers.SGD(lr), "sparse_categorical_crossentropy")
        return m

    files = {k: tmp_path / n for k, n in [("model", "model.keras"), ("history", "history.csv"),
                                          ("metrics", "metrics.json"), ("backup", "backup")]}
    old = model(0.05)
    save_backup(old, files["backup"], 1, [{"epoch": 1, "loss": 0.7, "lr": 0.05, "seconds": 0.1}], [],
                stopped=False, fingerprint=run_fingerprint(old, data, 3, None))
    assert (files["backup"] / "epoch-00001").exists()
    metrics = fit_with_contract(model(0.01), data, epochs=3, files=files)
    out = capsys.readouterr().out
    assert "resuming" not in out and "made with a different configuration" in out, out
    assert metrics["resumed_from_epoch"] == 0
    hist = pd.read_csv(files["history"])
    assert hist["epoch"].tolist() == [1, 2, 3] and (hist["lr"].round(6) == 0.01).all()


def test_tensorboard_logs_are_written_when_asked_and_their_folder_mirrors_the_backup(tmp_path):
    from anatomy.logs import tensorboard_dir

    assert tensorboard_dir("results/.resume/iic/all/a1_o1/seed0") == "results/tensorboard/iic/all/a1_o1/seed0"
    with pytest.raises(ValueError, match="not under a .resume folder"):
        tensorboard_dir("results/iic/seed0")

    from anatomy.training.setup import RunSettings, configure_tensorflow

    configure_tensorflow(RunSettings(threads=1, seed=0))
    import keras
    import numpy as np

    from anatomy.training.contract import fit_with_contract
    from anatomy.training.pipeline import ArrayData

    x = np.random.default_rng(0).integers(0, 256, (64, 4, 4, 1), dtype=np.uint8)
    y = (x.reshape(64, -1).mean(1) > 127).astype("int64")
    for logged in (False, True):
        out = tmp_path / str(logged)
        model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2, "softmax")])
        model.compile("sgd", "sparse_categorical_crossentropy")
        files = {"model": out / "model.keras", "history": out / "history.csv", "metrics": out / "metrics.json",
                 "backup": out / ".resume" / "run", **({"tensorboard": out / "tb"} if logged else {})}
        fit_with_contract(model, ArrayData(x, y, batch_size=32, seed=0), epochs=2, files=files)
        events = list((out / "tb").rglob("events.out.tfevents.*"))
        assert bool(events) == logged, events


def test_a_timed_run_trains_two_short_epochs_and_records_what_an_epoch_costs(tmp_path, monkeypatch):
    """Under ANATOMY_TIME_EPOCHS (anatomy.plan) the contract trains two epochs of the asked steps, with every
    callback's epoch-end work, and writes their costs beside the run's real steps and epochs."""
    from anatomy.training.setup import RunSettings, configure_tensorflow

    configure_tensorflow(RunSettings(threads=1, seed=0))
    import keras
    import numpy as np

    from anatomy.training.contract import EvaluateEachEpoch, fit_with_contract
    from anatomy.training.setup import TIMING_ENV
    from anatomy.training.pipeline import ArrayData

    x = np.random.default_rng(0).integers(0, 256, (320, 4, 4, 1), dtype=np.uint8)
    y = (x.reshape(320, -1).mean(1) > 127).astype("int64")

    class SlowEnd(keras.callbacks.Callback):  # an epoch's end that costs 0.3 s (an evaluation, say)
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.3)

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2, "softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    files = {"model": tmp_path / "model.keras", "history": tmp_path / "history.csv",
             "metrics": tmp_path / "metrics.json", "backup": tmp_path / "backup"}
    monkeypatch.setenv(TIMING_ENV, f"4:{tmp_path / 'timings'}")
    test = (x[:32].astype("float32") / 255.0, y[:32])
    fit_with_contract(model, ArrayData(x, y, batch_size=16, seed=0), epochs=30, files=files,
                      callbacks=[EvaluateEachEpoch(test), SlowEnd()])
    assert len(pd.read_csv(files["history"])) == 2
    (timing,) = [json.loads(f.read_text()) for f in (tmp_path / "timings").glob("*.json")]
    assert timing["metrics"] == str(files["metrics"])
    assert (timing["epochs"], timing["steps_per_epoch"], timing["timed_steps"]) == (30, 20, 4)
    assert 0.3 <= timing["epoch_end_seconds"] < 0.3 + timing["fit_seconds"]
    assert 0 < timing["step_seconds"] < 0.3
