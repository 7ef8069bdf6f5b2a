"""What the quick study (config/config.yaml on the embedded samples) must show a newcomer, checked on its
own results: `pytest -m slow` runs it (about 7 minutes on 2 cores) in a scratch folder, or reads a finished
run's `results/` named by ANATOMY_QUICK_RESULTS. Each fact is qualitative, with a margin wider than the
seed-to-seed spread measured at this scale (docs/studies.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    given = os.environ.get("ANATOMY_QUICK_RESULTS")
    if given:
        return Path(given)
    work = tmp_path_factory.mktemp("quick")
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile",
                    str(ROOT / "config" / "config.yaml"), "--directory", str(work), "--cores", "2"],
                   check=True, capture_output=True, text=True)
    return work / "results"


def test_iic_clusters_the_digits_without_labels_at_alpha_1(quick):
    runs = pd.read_csv(quick / "iic" / "runs.csv")
    alpha1 = runs[runs["alpha"] == 1.0]["loss_selected_accuracy"]
    assert len(alpha1) and (alpha1 >= 0.5).all(), alpha1.tolist()  # chance: about 0.11


def test_batchnorm_and_no_batchnorm_are_apart_at_the_highest_rate(quick):
    runs = pd.read_csv(quick / "cifar" / "summary.csv").set_index("run")
    lr = max(float(r.split("lr")[1]) for r in runs.index if r.startswith("nobn_lr"))
    bn, nobn = (runs.loc[f"{k}_lr{lr:g}", "final_train_accuracy"].mean() for k in ("bn", "nobn"))
    assert bn - nobn >= 0.1, (lr, bn, nobn)


def test_the_true_window_teaches_less_than_the_published_mask(quick):
    windows = pd.read_csv(quick / "crops" / "windows.csv")
    best = windows.groupby("mask")["test_accuracy"].max()
    assert best["window"] + 0.1 <= best["as_published"], best.to_dict()


def test_the_fold_ensemble_beats_the_single_model(quick):
    board = pd.read_csv(quick / "digits" / "leaderboard.csv").set_index("entry")["test_accuracy"]
    assert board["submission_ensemble"] > board["submission_simple"], board.to_dict()
