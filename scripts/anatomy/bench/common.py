"""What every benchmark family shares: the side-by-side timing, the table row, the data files, Snakemake runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
COLUMNS = ["row", "what", "ours", "theirs", "unit", "ratio", "goal", "met", "device", "notes"]


def best_rate(fn: Callable[[], int], repeats: int) -> float:
    """Items per second of ``fn`` (which returns how many items it did): the best of ``repeats`` calls."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def side_by_side(ours: Callable[[], int], theirs: Callable[[], int], repeats: int = 2) -> tuple[float, float]:
    """Rates of both sides, interleaved ours, theirs, ours, theirs ...; best of each."""
    r_ours, r_theirs = 0.0, 0.0
    for _ in range(repeats):
        r_ours = max(r_ours, best_rate(ours, 1))
        r_theirs = max(r_theirs, best_rate(theirs, 1))
    return r_ours, r_theirs


def row(name, what, ours, theirs, unit, *, goal=None, higher_is_better=True, ratio=None, device="CPU", notes=""):
    if ratio is None:
        ratio = (ours / theirs) if (theirs and np.isfinite(theirs) and np.isfinite(ours)) else float("nan")
    met = ""
    if goal is not None and np.isfinite(ratio):
        met = "yes" if (ratio >= goal if higher_is_better else ratio <= goal) else "no"
    return {"row": name, "what": what, "ours": ours, "theirs": theirs, "unit": unit, "ratio": ratio,
            "goal": "" if goal is None else (f">= {goal:g}" if higher_is_better else f"<= {goal:g}"),
            "met": met, "device": device, "notes": notes}


def study_models(cfg: dict) -> dict:
    """The studies' supervised models as they train in ``cfg``: name -> (what, a function that builds and
    compiles one, input shape, batch, whether its targets are one-hot)."""
    import keras

    from anatomy.models.cnn_medium import cnn_medium, compile_cnn_medium
    from anatomy.models.mnist_cnn import compile_mnist_cnn, mnist_cnn
    from anatomy.models.vgg import vgg_like

    c, crops = cfg["cifar"], cfg["crops"]

    def vgg():
        model = vgg_like(widths=tuple(c["model"]["widths"]), convs_per_block=c["model"]["convs_per_block"],
                         dense=c["model"]["dense"], batchnorm=True, weight_decay=c["weight_decay"])
        model.compile(optimizer=keras.optimizers.SGD(c["base_lr"]),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return model

    return {
        "mnist_cnn": ("crops MNIST CNN", lambda: compile_mnist_cnn(mnist_cnn(), learning_rate=crops["learning_rate"],
                                                                   loss=crops["loss"]),
                      (28, 28, 1), crops["baseline"]["batch_size"], True),
        "cnn_medium": ("digits CNNMedium", lambda: compile_cnn_medium(cnn_medium(),
                                                                     learning_rate=cfg["digits"]["learning_rate"]),
                       (28, 28, 1), cfg["digits"]["batch_size"], False),
        "vgg": (f"cifar VGG-like {c['model']['widths']}", vgg, (32, 32, 3), c["batch_size"], False),
    }


def build_data(folder: Path) -> dict:
    """The embedded samples as the workflow stores them: MNIST HDF5 and CIFAR-10 TFRecords."""
    from anatomy.data.cifar10 import build_cifar10
    from anatomy.data.mnist import build_mnist

    res = ROOT / "resources"
    build_mnist(folder / "mnist.h5", source="embedded", npz=res / "mnist_sample.npz")
    build_cifar10(folder / "cifar10", source="embedded", shards=2, npz=res / "cifar10_sample.npz")
    return {"mnist": folder / "mnist.h5", "cifar10": folder / "cifar10" / "manifest.json"}


def run_snakemake(args: list, cwd: Path, timeout: float | None = 1800, env: dict | None = None) -> tuple[float, str]:
    """Snakemake on ``args`` in ``cwd`` (with ``env`` added to the environment): its wall seconds and output."""
    # the folder's own Snakefile when it is a checkout: input paths such as resources/ then match its last run
    snakefile = Path(cwd) / "Snakefile" if (Path(cwd) / "Snakefile").exists() else ROOT / "Snakefile"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), *args]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed in {cwd}:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return dt, p.stdout + p.stderr
