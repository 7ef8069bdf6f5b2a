"""Rows ``scaling/*``: seconds per epoch against the training-set size, and a workflow on 1 vs 2 cores."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from anatomy.bench.common import row, run_snakemake


def bench_epoch_scaling(paths: dict, cfg: dict, *, scale: float, device: str) -> list:
    import keras

    from anatomy.io import read_dataset_h5
    from anatomy.models.mnist_cnn import compile_mnist_cnn, mnist_cnn
    from anatomy.training.pipeline import ArrayData

    x, y = read_dataset_h5(paths["mnist"], "train")
    n_all = max(400, int(round(len(x) * scale)))
    b = cfg["crops"]["baseline"]["batch_size"]
    model = mnist_cnn()
    compile_mnist_cnn(model, learning_rate=1e-3, loss="binary_crossentropy")
    onehot = lambda t: keras.ops.one_hot(t, 10)  # noqa: E731
    model.fit(ArrayData(x[:b * 4], y[:b * 4], batch_size=b, seed=0, target=onehot).dataset(0, 1), verbose=0)
    sizes = [n_all // 4, n_all // 2, n_all]
    secs = []
    for n in sizes:
        t0 = time.perf_counter()
        model.fit(ArrayData(x[:n], y[:n], batch_size=b, seed=0, target=onehot).dataset(0, 1), verbose=0)
        secs.append(time.perf_counter() - t0)
    slope, intercept = np.polyfit(sizes, secs, 1)
    pred = np.polyval([slope, intercept], sizes)
    r2 = 1 - np.sum((np.array(secs) - pred) ** 2) / max(np.sum((np.array(secs) - np.mean(secs)) ** 2), 1e-12)
    return [row("scaling/epoch", f"MNIST CNN epoch (batch {b}) at {sizes} images: seconds "
                + ", ".join(f"{s:.2f}" for s in secs), slope * 1000, intercept, "s per 1000 images", ratio=r2,
                device=device, notes="theirs = intercept (s); ratio = R^2 of the linear fit")]


def scaling_config(cfg: dict) -> dict:
    """A small crops workflow: enough independent trainings for two cores to share."""
    import copy

    small = copy.deepcopy(cfg)
    small["scale"] = "custom"
    small["crops"].update({"train_size": 1000, "validation_size": 200,
                           "stopping": {"max_epochs": 1, "patience": 15, "ratio": 0.995},
                           "baseline": {"batch_size": 100, "seeds": [1, 2]},
                           "grids": {"window": {"rows": [0, 12], "cols": [7, 14]}, "as_published": {"rows": [0],
                                                                                                    "cols": [14]}}})
    small["coreset"]["enabled"] = False
    return small


def bench_cores(cfg: dict, *, full_quick: bool) -> list:
    import yaml

    rows = []
    target = [] if full_quick else ["results/crops/windows.csv"]
    times = {}
    for cores in (1, 2):
        with tempfile.TemporaryDirectory(prefix="bench-cores-") as d:
            d = Path(d)
            (d / "config").mkdir()
            conf = cfg if full_quick else scaling_config(cfg)
            (d / "config" / "config.yaml").write_text(yaml.safe_dump(conf, sort_keys=False))
            # the data step is shared: build it first, untimed, so both runs time the trainings alone
            run_snakemake(["--cores", "2", "results/data/mnist.h5"], d)
            times[cores], out = run_snakemake(["--cores", str(cores), *target], d, timeout=4 * 3600)
    what = "the quick study" if full_quick else "a small crops workflow (2 baselines, 5 windows, tables)"
    rows.append(row("scaling/cores", f"{what}: wall time with --cores 1 / with --cores 2", times[1], times[2], "s",
                    notes="ratio = parallel speedup (2 = perfect)"))
    return rows
