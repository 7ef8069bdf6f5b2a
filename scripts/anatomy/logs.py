"""Send everything a job prints, TensorFlow's C++ logging included, to its log file."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


@contextlib.contextmanager
def redirect_output(path):
    """Redirect file descriptors 1 and 2 to ``path`` for the duration.

    TensorFlow's C++ runtime writes to fd 2 directly, past ``sys.stderr``;
    only a descriptor-level redirect puts its lines into the rule's ``log:``.
    ``path=None`` leaves the streams alone (handy when running by hand).
    """
    if path is None:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        # Python-level streams are line buffered so the log follows progress.
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for d in (*saved, fd):
            os.close(d)


def log_step(snakemake):
    """The rule script's log context: ``with log_step(snakemake): ...``."""
    logs = list(getattr(snakemake, "log", []) or [])
    return redirect_output(logs[0] if logs else None)


def contract_files(snakemake) -> dict:
    """The training contract's paths for one training rule: its named outputs (model, history, metrics and
    the study's own: predictions, selected), the backup folder
    (``params.backup``, under results/.resume/) and, with ``tensorboard: true`` in the config, a
    TensorBoard folder for the same run under results/tensorboard/. The switch is read from the config,
    not passed as a param, so turning it on or off reruns no training."""
    files = {k: snakemake.output[k] for k in snakemake.output.keys()}
    files["backup"] = snakemake.params.backup
    if snakemake.config.get("tensorboard"):
        files["tensorboard"] = tensorboard_dir(files["backup"])
    return files


def tensorboard_dir(backup) -> str:
    """results/.resume/<study>/<run> -> results/tensorboard/<study>/<run>."""
    parts = list(Path(backup).parts)
    if ".resume" not in parts:
        raise ValueError(f"backup folder {backup} is not under a .resume folder")
    parts[parts.index(".resume")] = "tensorboard"
    return str(Path(*parts))
