"""Issue 11 (reliability): a killed workflow, parallel readers of one HDF5 file, determinism,
divergence inside the workflow, and nothing unpickled or loaded unsafely.

The training contract's own promises (SIGKILL / SIGTERM mid-epoch, NaN loss) are
tested in test_training.py, config validation in test_config.py and the data
files in test_sources.py, test_digits.py and test_cifar10.py; the README's
"Reliability" section lists which test covers which promise.
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
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, Workflow, parse_job_counts, tiny_config

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


# --------------------------------------------------------------------- item 2: killed workflow


@pytest.mark.workflow
def test_killed_workflow_reruns_only_the_incomplete_jobs(tmp_path):
    """SIGKILL to snakemake *and its jobs* (its process group) while two trainings run.

    The whole group is killed, as when a terminal, an SSH session or a node dies:
    killing only the snakemake process would leave its jobs running as orphans that
    finish (or not) on their own, racing the rerun. The next `snakemake` must run
    only the jobs whose outputs are missing, resume the trainings from their
    backups, and leave every finished output untouched.
    """
    wf = Workflow(tmp_path, tiny_config({"crops": {"stopping": {"max_epochs": 5}}}))
    results = wf.path / "results"
    seeds = (0, 1)
    targets = [f"results/crops/baseline/seed{s}/metrics.json" for s in seeds]
    backups = [results / ".resume" / "crops" / "baseline" / f"seed{s}" for s in seeds]
    p = _snakemake_popen(wf, *targets, log=tmp_path / "killed.log")
    try:
        t0 = time.time()
        metrics = [results / t.removeprefix("results/") for t in targets]
        started = lambda: [_newest_backup_epoch(b) >= 1 or m.exists() for b, m in zip(backups, metrics)]  # noqa: E731
        mid_run = lambda: any(_newest_backup_epoch(b) >= 1 and not m.exists() for b, m in zip(backups, metrics))  # noqa: E731
        # both trainings have started (so every upstream job has finished) and one is mid-run
        while not (all(started()) and mid_run()):
            assert p.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.time() - t0 < 300, "the trainings never got going"
            time.sleep(0.05)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    t0 = time.time()
    while _group_alive(p.pid):
        assert time.time() - t0 < 30, f"jobs survived the kill: {_group_alive(p.pid)}"
        time.sleep(0.1)

    unfinished = [s for s in seeds if not (results / "crops" / "baseline" / f"seed{s}" / "metrics.json").exists()]
    assert unfinished, "both trainings finished before the kill; nothing was interrupted"
    resume_at = {s: _newest_backup_epoch(backups[s]) for s in unfinished}
    before = _snapshot(results)
    assert {"data/mnist.h5", "crops/init/seed0.weights.h5", "crops/init/seed1.weights.h5"} <= set(before)
    # a killed training leaves none of its declared outputs (every write is atomic)
    for s in unfinished:
        assert not any(k.startswith(f"crops/baseline/seed{s}/") for k in before), before

    # The next run: the same command. Every output is either complete or absent (atomic
    # writes), so Snakemake finds nothing incomplete and does not ask for --rerun-incomplete.
    dry = wf.run("-n", *targets, check=False)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert "rerun-incomplete" not in dry.stdout + dry.stderr
    assert parse_job_counts(dry.stdout + dry.stderr) == {"crops_baseline": len(unfinished)}
    rerun = wf.run(*targets, check=False)
    if rerun.returncode != 0:
        # The killed snakemake could not remove its lock: the rerun refuses to start,
        # touches nothing and says how to remove it (the README says the same).
        assert "--unlock" in rerun.stdout + rerun.stderr, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        assert _snapshot(results) == before
        wf.run("--unlock")
        wf.run(*targets)

    after = _snapshot(results)
    for key, stamp in before.items():
        assert after[key] == stamp, f"{key} was rebuilt or changed"
    for s in unfinished:
        run = results / "crops" / "baseline" / f"seed{s}"
        m = json.loads((run / "metrics.json").read_text())
        assert m["resumed_from_epoch"] == resume_at[s] and m["epochs_run"] == 5
        assert pd.read_csv(run / "history.csv")["epoch"].tolist() == list(range(1, 6))  # each epoch once
        if resume_at[s]:
            assert f"resuming from the backup after epoch {resume_at[s]}" in \
                (results / "logs" / "crops" / f"baseline_seed{s}.log").read_text()
        assert not backups[s].exists()
    assert wf.dry_run_jobs(*targets) == {}


# --------------------------------------------------------------------- item 4: parallel readers of one HDF5 file


def _write_small_h5(path):
    from anatomy.io import write_dataset_h5

    rng = np.random.default_rng(0)
    write_dataset_h5(path, {"train": (rng.integers(0, 256, (20, 28, 28, 1), dtype=np.uint8), np.arange(20) % 10)},
                     source="t", sha256="0", classes=range(10))


def test_hdf5_readers_take_no_file_lock(tmp_path):
    """read_dataset_h5 opens read-only without HDF5's file lock: a lock held elsewhere
    (another job, or a file system that refuses locks) cannot make a reader fail."""
    import h5py

    from anatomy.io import read_dataset_h5, read_h5_attrs

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
        assert read_h5_attrs(path)["source"] == "t"
    assert _sha256(path) == before


# --------------------------------------------------------------------- items 4, 5, 10: a fresh run vs the fixture

DIVERGING_LR = 1e6  # plain SGD without BatchNorm: the loss is NaN within the first epoch


@pytest.mark.workflow
def test_fresh_run_reproduces_the_tiny_workflow_and_survives_divergence(tiny_workflow, tmp_path):
    """Item 10: trainings of three kinds and a submission, rebuilt from scratch in a new folder,
    equal the session's tiny run (metrics.json apart from timings, history.csv apart from the
    seconds column, the submission byte for byte). Item 4: the two crops baselines run side by
    side on --cores 2, both reading mnist.h5 while this test holds an exclusive lock on it.
    Item 5: a diverging run ends cleanly inside the workflow."""
    diverging = f"nobn_lr{DIVERGING_LR:g}"
    wf = Workflow(tmp_path, tiny_config({"cifar": {"lr_grid": [0.05, DIVERGING_LR]}}))
    seeds = wf.config["crops"]["baseline"]["seeds"]
    runs = [*[f"crops/baseline/seed{s}" for s in seeds[:2]], "digits/step1/seed0", "cifar/runs/bn_lr0.05"]
    wf.run("results/digits/submissions/submission_simple.csv", "results/cifar/runs/bn_lr0.05/metrics.json",
           f"results/cifar/runs/{diverging}/metrics.json",
           *[f"results/crops/init/seed{s}.weights.h5" for s in seeds[:2]])
    # only the two baselines are left to run: on 2 cores they start together
    with open(wf.path / "results" / "data" / "mnist.h5", "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert wf.dry_run_jobs(*[f"results/{r}/metrics.json" for r in runs[:2]]) == {"crops_baseline": 2}
        wf.run(*[f"results/{r}/metrics.json" for r in runs[:2]])
    spans = []
    for r in runs[:2]:
        path = wf.path / "results" / r / "metrics.json"
        end = path.stat().st_mtime
        spans.append((end - json.loads(path.read_text())["wall_seconds_this_run"], end))
    assert max(s for s, _ in spans) < min(e for _, e in spans), f"the two trainings did not overlap: {spans}"

    for r in runs:
        new, ref = wf.path / "results" / r, tiny_workflow.path / "results" / r
        assert _without_timings(json.loads((new / "metrics.json").read_text())) == \
            _without_timings(json.loads((ref / "metrics.json").read_text())), r
        h_new, h_ref = (pd.read_csv(d / "history.csv", dtype=str).drop(columns="seconds") for d in (new, ref))
        pd.testing.assert_frame_equal(h_new, h_ref, obj=r)
    sub = "digits/submissions/submission_simple.csv"
    assert (wf.path / "results" / sub).read_bytes() == (tiny_workflow.path / "results" / sub).read_bytes()

    run = wf.path / "results" / "cifar" / "runs" / diverging
    m = json.loads((run / "metrics.json").read_text())
    assert m["diverged"] is True and m["test"] == {} and m["stopped_early"] is False
    hist = pd.read_csv(run / "history.csv")
    assert len(hist) >= 1 and not np.isfinite(hist["loss"].iloc[-1])
    assert (run / "model.keras").exists()


# --------------------------------------------------------------------- item 9: nothing unpickled, safe loading

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
                       ("cifar/runs/noisybn_lr0.05", (2, 32, 32, 3)), ("cifar/runs/nobn_lr0.05", (2, 32, 32, 3)),
                       ("iic/all/a1_o1/seed0", (2, 28, 28, 1)), ("coreset/control/full", None)]:
        model = keras.saving.load_model(r / run / "model.keras", safe_mode=True, compile=False)
        x = np.zeros(shape or (2, *model.input_shape[1:]), "float32")
        out = model.predict(x, verbose=0)
        assert all(np.isfinite(o).all() for o in (out if isinstance(out, (list, tuple)) else [out])), run
