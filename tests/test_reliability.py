"""Reliability: a killed workflow, parallel readers of one HDF5 file, determinism,
divergence inside the workflow, and nothing unpickled or loaded unsafely.

The training contract's own promises (SIGKILL / SIGTERM mid-epoch, NaN loss) are
tested in test_training.py, config validation in test_config.py and the data
files in test_sources.py, test_digits.py and test_cifar10.py; docs/reliability.md
lists the promises.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TINY, Workflow, parse_job_counts, tiny_config

# --------------------------------------------------------------------- helpers


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _snapshot(results: Path) -> dict:
    """path -> (mtime_ns, sha256) of every output under results/ (not logs, benchmarks, backups)."""
    out = {}
    for p in results.rglob("*"):
        rel = p.relative_to(results)
        if p.is_file() and rel.parts[0] not in ("logs", "benchmarks", ".resume"):
            out[str(rel)] = (p.stat().st_mtime_ns, _sha256(p))
    return out


def _without_timings(obj):
    """metrics.json minus the keys that measure time (``train_seconds``, ``wall_seconds_this_run``, ...)."""
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if not re.search(r"seconds|time", k)}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


def _group_alive(pgid: int) -> list[int]:
    """Processes of process group ``pgid`` that are not zombies."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _snakemake_popen(wf: Workflow, *args, log: Path) -> subprocess.Popen:
    """Snakemake in its own session, so the whole tree (it and its jobs) is one process group."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(wf.path),
           "--cores", "2", *args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _newest_backup_epoch(folder: Path) -> int:
    done = [int(p.parent.name.split("-")[1]) for p in folder.glob("epoch-*/state.json")]
    return max(done, default=0)


# --------------------------------------------------------------------- parallel readers of one HDF5 file


def _write_small_h5(path):
    from anatomy.io import write_dataset_h5

    rng = np.random.default_rng(0)
    write_dataset_h5(path, {"train": (rng.integers(0, 256, (20, 28, 28, 1), dtype=np.uint8), np.arange(20) % 10)},
                     source="t", sha256="0", classes=range(10))


def test_an_npz_write_that_fails_midway_leaves_neither_the_target_nor_a_temporary_file(tmp_path):
    """anatomy.io.write_npz, used for every predictions file: the old file survives a failed rewrite."""
    from anatomy.io import write_npz

    class Unsaveable:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("disk full")

    target = tmp_path / "predictions.npz"
    write_npz(target, a=np.arange(3))
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="disk full"):
        write_npz(target, a=np.arange(4), b=Unsaveable())  # "a" is written before "b" fails
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["predictions.npz"]
    write_npz(tmp_path / "c.npz", compressed=True, x=np.ones((50, 50)))
    with np.load(tmp_path / "c.npz") as z:
        assert z["x"].shape == (50, 50)
    assert (tmp_path / "c.npz").stat().st_size < 50 * 50 * 8 / 10  # compressed


def test_hdf5_readers_take_no_file_lock(tmp_path):
    """read_dataset_h5 opens read-only without HDF5's file lock: a lock held elsewhere
    (another job, or a file system that refuses locks) cannot make a reader fail."""
    import h5py

    from anatomy.io import read_dataset_h5

    path = tmp_path / "d.h5"
    _write_small_h5(path)
    before = _sha256(path)
    with open(path, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # the control: HDF5's default read-only open takes a lock and fails here
        with pytest.raises(OSError, match="lock"):
            h5py.File(path, "r", locking=True).close()
        x, y = read_dataset_h5(path, "train")
        assert x.shape == (20, 28, 28, 1) and len(y) == 20
    assert _sha256(path) == before


# --------------------------------------------------------------- killed trainings, a fresh run vs the fixture

DIVERGING_LR = 1e6  # plain SGD without BatchNorm: the loss is NaN within the first epoch


def _kill_when(wf: Workflow, targets: list, ready, log: Path, timeout: float = 300) -> None:
    """Run snakemake on ``targets`` and SIGKILL it *and its jobs* (its process group) once ``ready()``.

    The whole group is killed, as when a terminal, an SSH session or a node dies: killing only
    the snakemake process would leave its jobs running as orphans that race the rerun.
    """
    p = _snakemake_popen(wf, *targets, log=log)
    try:
        t0 = time.time()
        while not ready():
            assert p.poll() is None, log.read_text()[-3000:]
            assert time.time() - t0 < timeout, "the trainings never got going"
            time.sleep(0.05)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    t0 = time.time()
    while _group_alive(p.pid):
        assert time.time() - t0 < 30, f"jobs survived the kill: {_group_alive(p.pid)}"
        time.sleep(0.1)
    wf.run("--unlock")  # the killed snakemake could not remove its lock (docs/reliability.md says the same)


def _same_history(new: Path, ref: Path, rows: int | None = None) -> None:
    h_new, h_ref = (pd.read_csv(d / "history.csv").drop(columns="seconds") for d in (new, ref))
    rows = len(h_ref) if rows is None else rows
    pd.testing.assert_frame_equal(h_new.iloc[:rows], h_ref.iloc[:rows], check_exact=False, rtol=1e-5, obj=str(new))


CROPS_SEEDS = TINY["crops"]["baseline"]["seeds"]
CROPS_RUNS = [f"crops/baseline/seed{s}" for s in CROPS_SEEDS]
IIC_RUN, SELECTION = "iic/all/a1_o1/seed0", "coreset/select/in_order/seed0"
DIVERGING = f"cifar/runs/nobn_lr{DIVERGING_LR:g}/seed0"


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory):
    """A new folder in which trainings of three kinds, a submission and a diverging CIFAR run are built
    from scratch (with the data and initial weights the killed trainings below need)."""
    wf = Workflow(tmp_path_factory.mktemp("fresh"), tiny_config({"crops": {"stopping": {"max_epochs": 5}},
                                                                 "cifar": {"lr_grid": [0.05, DIVERGING_LR]}}))
    wf.run("results/digits/submissions/submission_simple.csv", "results/cifar/runs/bn_lr0.05/seed0/metrics.json",
           f"results/{DIVERGING}/metrics.json", "results/data/mnist.h5",
           *[f"results/crops/init/seed{s}.weights.h5" for s in CROPS_SEEDS], "results/coreset/init/seed0.weights.h5",
           "results/data/ellipses/train.h5", "results/data/ellipses/test.h5")
    return wf


@dataclass
class Killed:
    """What :func:`killed_and_rerun` saw: the runs it interrupted, their last backed-up epoch or step, the
    outputs before and after the rerun, the rerun's dry-run listing, and whether it held the data file's lock."""
    wf: Workflow
    interrupted: list
    resume_at: dict
    before: dict
    dry_run: str
    after: dict
    rerun_under_lock: bool


@pytest.fixture(scope="module")
def killed_and_rerun(fresh_run, tmp_path_factory):
    """In ``fresh_run``'s folder, three kinds of training killed mid-run with SIGKILL to snakemake and its
    jobs: the two crops baselines (the training contract), an IIC run (its own train step inside the
    contract) and the coreset selection (its own loop and state); then the same targets run again, the crops
    trainings reading mnist.h5 while this process holds an exclusive lock on it."""
    wf, logs = fresh_run, tmp_path_factory.mktemp("killed_logs")
    results, resume = wf.path / "results", wf.path / "results" / ".resume"

    def started(run):
        return _newest_backup_epoch(resume / run) >= 1 or (results / run / "metrics.json").exists()

    def mid_run(run):
        return _newest_backup_epoch(resume / run) >= 1 and not (results / run / "metrics.json").exists()

    # Three kills, one after the other: each when its training has backed up and is still running.
    _kill_when(wf, [f"results/{r}/metrics.json" for r in CROPS_RUNS],
               lambda: all(started(r) for r in CROPS_RUNS) and any(mid_run(r) for r in CROPS_RUNS),
               logs / "killed_crops.log")
    for run in (IIC_RUN, SELECTION):
        _kill_when(wf, [f"results/{run}/metrics.json"], lambda: mid_run(run), logs / "killed.log")
    interrupted = [r for r in [*CROPS_RUNS, IIC_RUN, SELECTION] if not (results / r / "metrics.json").exists()]
    resume_at = {r: _newest_backup_epoch(resume / r) for r in interrupted}
    before = _snapshot(results)
    targets = [f"results/{r}/metrics.json" for r in [*CROPS_RUNS, IIC_RUN, SELECTION]]
    dry = wf.run("-n", *targets)
    locked = False
    with open(results / "data" / "mnist.h5", "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        locked = True  # held until the rerun has ended
        wf.run(*targets)
    return Killed(wf, interrupted, resume_at, before, dry.stdout + dry.stderr, _snapshot(results), locked)


@pytest.mark.workflow
def test_a_fresh_run_reproduces_the_tiny_workflow(fresh_run, tiny_workflow):
    """Trainings of three kinds and a submission, rebuilt from scratch in a new folder, equal the session's
    tiny run: metrics.json apart from timings, history.csv apart from the seconds column, the submission
    byte for byte."""
    results = fresh_run.path / "results"
    for r in ("digits/step1/seed0", "cifar/runs/bn_lr0.05/seed0"):
        new, ref = results / r, tiny_workflow.path / "results" / r
        assert _without_timings(json.loads((new / "metrics.json").read_text())) == \
            _without_timings(json.loads((ref / "metrics.json").read_text())), r
        h_new, h_ref = (pd.read_csv(d / "history.csv", dtype=str).drop(columns="seconds") for d in (new, ref))
        pd.testing.assert_frame_equal(h_new, h_ref, obj=r)
    sub = "digits/submissions/submission_simple.csv"
    assert (results / sub).read_bytes() == (tiny_workflow.path / "results" / sub).read_bytes()


@pytest.mark.workflow
def test_a_diverging_run_ends_cleanly_inside_the_workflow(fresh_run):
    run = fresh_run.path / "results" / DIVERGING
    m = json.loads((run / "metrics.json").read_text())
    assert m["diverged"] is True and m["test"] == {} and m["stopped_early"] is False
    hist = pd.read_csv(run / "history.csv")
    assert len(hist) >= 1 and not np.isfinite(hist["loss"].iloc[-1])
    assert (run / "model.keras").exists()


@pytest.mark.workflow
def test_a_killed_training_leaves_none_of_its_outputs_and_the_rerun_runs_only_it(killed_and_rerun):
    k = killed_and_rerun
    assert k.interrupted[-2:] == [IIC_RUN, SELECTION] and len(k.interrupted) > 2, k.interrupted
    for r in k.interrupted:  # a killed training leaves none of its declared outputs (every write is atomic)
        assert not any(key.startswith(f"{r}/") for key in k.before), r
    assert "rerun-incomplete" not in k.dry_run  # every output complete or absent
    assert parse_job_counts(k.dry_run) == {"crops_train": len(k.interrupted) - 2, "iic_train": 1,
                                           "coreset_train": 1}


@pytest.mark.workflow
def test_the_rerun_after_a_kill_leaves_every_finished_output_untouched(killed_and_rerun):
    k = killed_and_rerun
    for key, stamp in k.before.items():
        assert k.after[key] == stamp, f"{key} was rebuilt or changed"
    targets = [f"results/{r}/metrics.json" for r in [*CROPS_RUNS, IIC_RUN, SELECTION]]
    assert k.wf.dry_run_jobs(*targets) == {}


@pytest.mark.workflow
def test_killed_contract_trainings_resume_after_their_last_backup(killed_and_rerun, tiny_workflow):
    """The crops baselines and the IIC run continue after their last backed-up epoch, list every epoch once,
    leave no backup behind, and equal the uninterrupted runs epoch for epoch."""
    k = killed_and_rerun
    results, logs = k.wf.path / "results", k.wf.path / "results" / "logs"
    for r in k.interrupted[:-2]:
        m = json.loads((results / r / "metrics.json").read_text())
        assert m["resumed_from_epoch"] == k.resume_at[r] and m["epochs_run"] == 5
        assert pd.read_csv(results / r / "history.csv")["epoch"].tolist() == list(range(1, 6))  # each epoch once
        _same_history(results / r, tiny_workflow.path / "results" / r)  # its first epochs equal the 2-epoch run's
    m = json.loads((results / IIC_RUN / "metrics.json").read_text())
    assert m["resumed_from_epoch"] == k.resume_at[IIC_RUN] >= 1
    assert f"resuming from the backup after epoch {k.resume_at[IIC_RUN]}" in \
        (logs / "iic" / "all_a1_o1_seed0.log").read_text()
    _same_history(results / IIC_RUN, tiny_workflow.path / "results" / IIC_RUN)  # losses, MI, accuracy per epoch
    for r in k.interrupted[:-1]:
        assert not (results / ".resume" / r).exists()


@pytest.mark.workflow
def test_a_killed_coreset_selection_resumes_after_its_last_backed_up_step(killed_and_rerun, tiny_workflow):
    """The selection, a loop of its own, continues after its last backup and selects exactly the pairs of
    the uninterrupted run, with the same history."""
    k = killed_and_rerun
    results = k.wf.path / "results"
    log = (results / "logs" / f"{SELECTION}.log").read_text()
    assert f"resuming after step {k.resume_at[SELECTION]}" in log
    ref = tiny_workflow.path / "results" / SELECTION
    assert (results / SELECTION / "selected.csv").read_text() == (ref / "selected.csv").read_text()
    _same_history(results / SELECTION, ref)  # one row per step, each once, as uninterrupted
    assert not (results / ".resume" / SELECTION).exists()


@pytest.mark.workflow
def test_resumed_trainings_read_the_data_file_while_another_process_locks_it(killed_and_rerun):
    """The rerun's crops trainings read mnist.h5 while the test held an exclusive lock on it (readers take
    no HDF5 file lock), and finished."""
    k = killed_and_rerun
    assert k.rerun_under_lock
    for r in k.interrupted[:-2]:
        assert (k.wf.path / "results" / r / "metrics.json").exists(), r


# --------------------------------------------------------------------- nothing unpickled, safe loading

UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
UNSAFE_CALLS = {"read_pickle", "unsafe_load", "full_load", "enable_unsafe_deserialization", "eval", "exec"}


def unsafe_loading(source: str, name: str = "<source>") -> list[str]:
    """Every place in ``source`` that could unpickle or deserialise code."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            problems += [f"{name}:{node.lineno} imports {m}" for m in mods if m.split(".")[0] in UNSAFE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        owner = node.func.value if isinstance(node.func, ast.Attribute) else None
        if func in UNSAFE_CALLS:
            problems.append(f"{name}:{node.lineno} calls {func}")
        if func == "load" and isinstance(owner, ast.Name) and owner.id == "yaml":
            problems.append(f"{name}:{node.lineno} calls yaml.load (use yaml.safe_load)")
        for kw in node.keywords:
            value = kw.value.value if isinstance(kw.value, ast.Constant) else kw.value
            if kw.arg == "allow_pickle" and value is not False:
                problems.append(f"{name}:{node.lineno} {func}(allow_pickle={ast.unparse(kw.value)})")
            if kw.arg == "safe_mode" and value is not True:
                problems.append(f"{name}:{node.lineno} {func}(safe_mode={ast.unparse(kw.value)})")
            if kw.arg is None:  # **kwargs could carry allow_pickle / safe_mode
                if func in ("load", "load_model"):
                    problems.append(f"{name}:{node.lineno} {func}(**...)")
    return problems


def _workflow_python():
    """Every Python source of the workflow: the package, the rule scripts, and the rules' `run:` blocks."""
    for p in sorted((ROOT / "scripts").rglob("*.py")):
        if "egg-info" not in str(p):
            yield p.relative_to(ROOT), p.read_text()
    for p in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        # Snakemake syntax is not Python; check it line by line for the same names.
        yield p.relative_to(ROOT), None


def test_no_source_unpickles_or_loads_models_unsafely():
    problems = []
    for rel, text in _workflow_python():
        if text is not None:
            problems += unsafe_loading(text, str(rel))
        else:
            for k, line in enumerate((ROOT / rel).read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if re.search(r"\bimport\s+(c?pickle|dill|cloudpickle|joblib|shelve|marshal)\b|allow_pickle\s*=\s*True|"
                             r"safe_mode\s*=\s*False|read_pickle|unsafe_deserialization|yaml\.(unsafe_|full_)?load\(",
                             code):
                    problems.append(f"{rel}:{k}: {line.strip()}")
    assert problems == []


@pytest.mark.parametrize("snippet", [
    "import pickle", "from joblib import load", "np.load(p, allow_pickle=True)", "np.load(p, allow_pickle=flag)",
    "keras.saving.load_model(p, safe_mode=False)", "keras.config.enable_unsafe_deserialization()",
    "yaml.load(f, Loader=yaml.Loader)", "pd.read_pickle(p)", "np.load(p, **kw)",
])
def test_the_unsafe_loading_check_catches(snippet):
    assert unsafe_loading(snippet) != []


def test_the_unsafe_loading_check_accepts_safe_calls():
    assert unsafe_loading("np.load(p)\nnp.load(p, allow_pickle=False)\nyaml.safe_load(f)\n"
                          "keras.saving.load_model(p)\nkeras.saving.load_model(p, safe_mode=True)") == []


@pytest.mark.workflow
def test_every_kind_of_saved_model_loads_in_keras_safe_mode(tiny_workflow):
    """model.keras of each study loads with safe_mode=True (no Lambda layers, no pickled code),
    custom layers included once the package is imported, and predicts."""
    import keras

    import anatomy.models.vgg  # noqa: F401  registers NoisyBN

    r = tiny_workflow.path / "results"
    for run, shape in [("crops/baseline/seed1", (2, 28, 28, 1)), ("digits/step1/seed0", (2, 28, 28, 1)),
                       ("cifar/runs/noisybn_lr0.05/seed0", (2, 32, 32, 3)),
                       ("cifar/runs/nobn_lr0.05/seed0", (2, 32, 32, 3)),
                       ("iic/all/a1_o1/seed0", (2, 28, 28, 1)), ("coreset/control/full/seed0", None)]:
        model = keras.saving.load_model(r / run / "model.keras", safe_mode=True, compile=False)
        x = np.zeros(shape or (2, *model.input_shape[1:]), "float32")
        out = model.predict(x, verbose=0)
        assert all(np.isfinite(o).all() for o in (out if isinstance(out, (list, tuple)) else [out])), run
