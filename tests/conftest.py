"""Shared test helpers: tiny configs and real Snakemake runs in a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from anatomy.config import deep_merge as deep_update  # noqa: E402


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups in the same hook
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`-n 2 --dist loadgroup`, pyproject's addopts): the tests that share a session-
    or module-scoped fixture run on one worker, so each such fixture is built once. The tiny workflow
    (a session fixture read by many modules) is one group, joined by every module whose own fixtures
    meet it in some test; any other module with fixtures of its own is a group; every other test goes
    wherever a worker is free."""
    shared = {}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        shared[item] = {name for name, defs in (info.name2fixturedefs.items() if info else ())
                        if defs[-1].baseid and defs[-1].scope in ("module", "session")}  # ours, not pytest's
    with_tiny = {item.module.__name__ for item, names in shared.items() if "tiny_workflow" in names}
    for item, names in shared.items():
        if names:
            module = item.module.__name__
            group = "tiny_workflow" if "tiny_workflow" in names or module in with_tiny else module
            item.add_marker(pytest.mark.xdist_group(group), append=False)


def parse_job_counts(text: str) -> dict:
    """Jobs per rule from Snakemake's "Job stats" table (dry run or run), for the workflow tests."""
    counts, on = {}, False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("job") and "count" in s:
            on = True
            continue
        if on:
            if not s or s.startswith("-"):
                continue
            parts = s.split()
            if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts


def assert_figure(path, *, min_size=(300, 200), min_colours=16) -> None:
    """A figure a reader can use: a PNG that opens, at least ``min_size`` (width, height) pixels,
    and not blank (its pixels vary, in more than ``min_colours`` distinct colours)."""
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG", f"{path}: {im.format}, not a PNG"
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1], f"{path}: {im.size} pixels"
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint32)
    colours = len(np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]))
    assert rgb.std() > 0 and colours > min_colours, f"{path}: blank ({colours} distinct colours)"


def write_tiny_npz(path, *, kind: str, n_train: int, n_test: int) -> Path:
    """A small labelled set cut from the embedded samples (real images, so models learn)."""
    src = np.load(ROOT / "resources" / f"{kind}_sample.npz")
    rng = np.random.default_rng(0)
    tr = np.sort(rng.choice(len(src["y_train"]), n_train, replace=False))
    te = np.sort(rng.choice(len(src["y_test"]), n_test, replace=False))
    np.savez_compressed(path, x_train=src["x_train"][tr], y_train=src["y_train"][tr],
                        x_test=src["x_test"][te], y_test=src["y_test"][te])
    return Path(path)


TINY = {
    "scale": "tiny",
    "coreset": {
        "enabled": True,
        # depth 1: tracing the U-Net's training step costs ~20 s at depth 2 on 2 CPU cores, ~10 s at depth 1
        "model": {"start_neurons": 2, "depth": 1, "dropout": 0.1, "batch_norm_momentum": 0.9},
        "batch_size": 16,
        "learning_rate": 0.003,
        "stopping": {"target": 0.85, "pass_factor": 0.95, "max_epochs": 3},
        "selection": {"initial": 4, "scan_batch": 20, "max_epochs_per_addition": 1, "test_checkpoints": 2},
        "seeds": [0],  # n = 1: the unsettled path (n >= 2 in unit tests)
        "keep_predictions": 4,
    },
    "threads": 1,
    "data": {
        "mnist": {"source": "npz", "path": "tiny_mnist.npz"},
        "cifar10": {"source": "npz", "path": "tiny_cifar10.npz", "shards": 2},
        "digits": {"source": "derived", "path": None, "train_fraction": 0.6},
        "ellipses": {"train_size": 40, "test_size": 20, "image_size": 32, "radius": [10, 20], "rectangle": [10, 40]},
    },
    "crops": {
        "train_size": None,
        "validation_size": 100,
        "learning_rate": 0.002,
        "stopping": {"max_epochs": 2, "patience": 15, "ratio": 0.995},
        "baseline": {"batch_size": 64, "seeds": [1, 2]},
        "window": {"size": 9, "batch_size": 64},
        "grids": {"window": {"rows": [0], "cols": [1, 14]}, "as_published": {"rows": [0], "cols": [14]}},
        "stacking": {"k": 2},
        "confirm": {"top": 1, "alpha": 0.05},
    },
    "cifar": {
        "train_size": None,
        "batch_size": 50,
        "epochs": 1,
        "model": {"widths": [8, 8], "convs_per_block": 1, "dense": 16},
        "lr_grid": [0.05],
        "label_noise": [1.0],
        "pixels": ["fixed_permutation", "gaussian_per_image"],
    },
    "iic": {
        "train_size": 300,
        "batch_size": 100,
        "epochs": 8,  # long enough for test_reliability to kill a run after its first backed-up epoch
        "widths": [8, 8, 8, 8],
        "transform_sets": ["all"],
        "alphas": [1, 10],
        "seeds": [0],
    },
    "digits": {
        "train_size": None,
        "validation_fraction": 0.2,
        "batch_size": 32,
        "learning_rate": 0.002,
        "step1": {"epochs": 1},
        "step2": {"epochs": 2, "lr_drops": [1], "lr_factor": 0.1, "folds": 2},
        "tta": {"enabled": True, "copies": 1},
        "ladder": {"seeds": [0]},
        "hardest": {"top": 20, "show": 4},
        "bootstrap": {"subsets": 50, "fraction": 0.25},
    },
}


def tiny_config(overrides: dict | None = None) -> dict:
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return deep_update(deep_update(base, TINY), overrides or {})


class Workflow:
    """A working folder with its own config/config.yaml; runs the repo's Snakefile there."""

    def __init__(self, path: Path, config: dict):
        self.path = Path(path)
        (self.path / "config").mkdir(parents=True, exist_ok=True)
        self.write_config(config)
        write_tiny_npz(self.path / "tiny_mnist.npz", kind="mnist", n_train=600, n_test=200)
        write_tiny_npz(self.path / "tiny_cifar10.npz", kind="cifar10", n_train=200, n_test=100)

    def write_config(self, config: dict) -> None:
        self.config = config
        (self.path / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    def run(self, *args, check=True, timeout=1500) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(self.path),
               "--cores", "2", *args]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if check and p.returncode != 0:
            raise AssertionError(f"snakemake {' '.join(args)} failed:\n{p.stdout[-4000:]}\n{p.stderr[-6000:]}")
        return p

    def dry_run_jobs(self, *args) -> dict:
        """Job counts per rule from a dry run ({} when nothing is to be done)."""
        p = self.run("-n", *args)
        return parse_job_counts(p.stdout + p.stderr)

    def dry_run_jobs_under(self, config: dict, folder: Path, *args) -> dict:
        """Job counts of a dry run under ``config``, written to ``folder`` and passed with --configfile:
        the working folder, its own config file and its results stay as they are (a shared fixture's too)."""
        path = Path(folder) / "config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return self.dry_run_jobs("--configfile", str(path), *args)


@pytest.fixture(scope="session")
def tiny_workflow(tmp_path_factory):
    """The tiny config run once, end to end; tests read its outputs."""
    wf = Workflow(tmp_path_factory.mktemp("tiny"), tiny_config())
    wf.run()
    return wf
