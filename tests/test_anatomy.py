"""anatomy.studies.anatomy and anatomy_results: memorisation, windows and examples of a dataset, on small data made here.

The data: 16x16 grey images of three classes (anatomy.data.example's generator) whose label lives only
in the bottom-right 8x8 quarter. The trainings are the rules' own function, run in this process.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from anatomy.config import ConfigError, deep_merge, load_yaml, validate_config
from anatomy.data.example import CLASSES, SIGNAL, example_images
from anatomy.io import read_json, write_dataset_h5
from anatomy.studies import anatomy as A
from anatomy.studies import anatomy_results as R
from anatomy.studies.crops import window_mask
from anatomy.training.setup import RunSettings

from conftest import ROOT, Workflow, tiny_config

N_TRAIN, N_TEST = 240, 120


def _dataset(tmp_path, *, flip: int = 0):
    """The dataset as the workflow's HDF5; ``flip`` training labels moved to another class (returned)."""
    x, y = example_images(N_TRAIN, seed=0)
    xs, ys = example_images(N_TEST, seed=1)
    rng = np.random.default_rng(7)
    planted = np.sort(rng.choice(N_TRAIN, flip, replace=False))
    y = y.copy()
    y[planted] = (y[planted] + rng.integers(1, len(CLASSES), flip)) % len(CLASSES)
    h5 = tmp_path / "data.h5"
    write_dataset_h5(h5, {"train": (x[..., None], y), "test": (xs[..., None], ys)}, source="test", sha256="-",
                     classes=CLASSES)
    return h5, planted


def _train(h5, tmp_path, part, run, entry, seed=0):
    """One run through the training contract, as rule anatomy_train runs it; returns its folder."""
    d = tmp_path / part / run / f"seed{seed}"
    files = {"model": d / "model.keras", "history": d / "history.csv", "metrics": d / "metrics.json",
             "predictions": d / "predictions.npz", "backup": tmp_path / ".resume" / part / run}
    A.train_anatomy_run(h5=h5, files=files, part=part, run=run, settings=A.part_settings(entry, part),
                        run_settings=RunSettings(threads=2, seed=seed))
    return d


# ----------------------------------------------------------------------------- pure functions


def test_window_grid_covers_the_image_in_at_most_100_windows_by_default():
    for shape, size in (((28, 28, 1), 9), ((16, 16, 1), 4), ((12, 20, 3), 5), ((64, 64, 3), 8)):
        grid = A.window_grid(A.settings({"windows": {"size": size}}), shape)
        assert len(grid) <= A.MAX_WINDOWS
        covered = np.logical_or.reduce([window_mask(i, j, s, shape[:2]) for s, i, j in grid])
        assert covered.all(), (shape, size)
    assert len(A.window_grid(A.settings({"windows": {"size": 2}}), (64, 64, 1))) <= A.MAX_WINDOWS  # gaps between
    assert A.positions(16, 8, 4) == [0, 4, 8] and A.positions(10, 4, 4) == [0, 4, 6]
    assert A.window_size(A.settings({"windows": {}}), (28, 28, 1)) == 9  # a third of the side, as crops
    assert window_mask(0, 0, 9).shape == (28, 28)  # the crops study's default is unchanged
    with pytest.raises(ValueError, match="does not fit a 12x20 image"):
        window_mask(8, 0, 5, (12, 20))


def test_settings_model_choice_and_config():
    s = A.settings({"windows": {"stride": 2}})
    assert set(s) == {"model", "batch_size", "learning_rate", "windows"}
    assert s["windows"]["epochs"] == A.DEFAULTS["windows"]["epochs"] and s["windows"]["stride"] == 2
    assert A.memorisation_runs(A.settings({"memorisation": {"label_noise": [0.2, 1.0]}})) == [
        "clean", "labels_p0.2", "labels_p1", "pixels_permutation"]
    assert A.choose_model("auto", (16, 16, 1)) == "small_cnn" and A.choose_model("auto", (32, 32, 3)) == "vgg"
    base = load_yaml(ROOT / "config" / "config.yaml")
    assert not base["anatomy"]  # the quick study runs no anatomy
    example = deep_merge(base, load_yaml(ROOT / "config" / "datasets" / "example.yaml"))
    validate_config(example, ROOT / "config" / "schema.yaml")
    with pytest.raises(ConfigError, match=r"anatomy\.other.*no dataset 'other'"):
        validate_config({**example, "anatomy": {"other": {"windows": {}}}}, ROOT / "config" / "schema.yaml")
    with pytest.raises(ConfigError, match=r"anatomy\.example\.examples\.folds"):
        validate_config(deep_merge(example, {"anatomy": {"example": {"examples": {"folds": 1}}}}),
                        ROOT / "config" / "schema.yaml")


# ----------------------------------------------------------------------------- trained on small data


def test_window_heatmap_peaks_where_the_signal_is(tmp_path):
    h5, _ = _dataset(tmp_path)
    entry = {"learning_rate": 0.003, "windows": {"size": 8, "stride": 8, "epochs": 4, "seeds": [0]}}
    runs = ["full", *[A.window_run(*w) for w in A.window_grid(A.settings(entry), (16, 16, 1))]]
    table, x_test = R.aggregate_windows(h5, [_train(h5, tmp_path, "windows", r, entry) / "history.csv" for r in runs])
    w = table[table["kind"] == "window"]
    peak = w.loc[w["test_accuracy"].idxmax()]
    accs = {(int(r.i), int(r.j)): round(r.test_accuracy, 3) for r in w.itertuples()}
    print("test accuracy by window (i, j):", accs)
    assert (peak["i"], peak["j"]) == (SIGNAL[0].start, SIGNAL[1].start), accs
    assert peak["test_accuracy"] > 0.8 and w["test_accuracy"].drop(peak.name).max() < 0.6, accs
    from anatomy.plots.anatomy import windows

    windows(table, x_test, tmp_path / "windows.png", provenance=R.provenance("bars", "npz", "tiny"))
    assert (tmp_path / "windows.png").stat().st_size > 0


def test_random_labels_are_fitted_on_training_and_stay_at_chance_on_test(tmp_path):
    h5, _ = _dataset(tmp_path)
    entry = {"learning_rate": 0.003, "memorisation": {"epochs": 25}}
    d = _train(h5, tmp_path, "memorisation", "labels_p1", entry)
    table, curves, chance = R.aggregate_memorisation(h5, [d / "history.csv"], [d / "metrics.json"])
    r = table.iloc[0]
    print("random labels:", r[["final_train_accuracy", "final_test_accuracy", "chance"]].to_dict())
    assert r["labels_changed"] > 0.5  # p = 1 with 3 classes: about 2/3 of labels change
    assert r["final_train_accuracy"] > chance + 0.4, r.to_dict()  # fitted well above chance (1/3)
    assert abs(r["final_test_accuracy"] - chance) < 0.13, r.to_dict()  # 3 sd of chance accuracy on 120 images


def test_planted_label_flips_are_the_top_label_issue_candidates(tmp_path):
    h5, planted = _dataset(tmp_path, flip=12)  # 5% of 240
    entry = {"learning_rate": 0.003, "examples": {"folds": 3, "epochs": 6}}
    dirs = [_train(h5, tmp_path, "examples", f"fold{k}", entry) for k in range(3)]
    table, summary, _ = R.aggregate_examples(h5, [d / "predictions.npz" for d in dirs])
    assert sorted(table["image"]) == list(range(N_TRAIN)) and set(summary["issue_type"]) == set(R.ISSUE_TYPES)
    flipped = table["image"].isin(planted)
    top = {k: R.planted_recall(table, planted, top=k * len(planted)) for k in (1, 2)}
    msg = "; ".join(f"top {f['top']}: recall {f['recall']:.2f}, precision {f['precision']:.2f}" for f in top.values())
    msg += (f"; flagged by Datalab: {int(table['label_issue'].sum())}, recall {table.loc[flipped, 'label_issue'].mean():.2f}"
            f" (of {len(planted)} planted flips in {N_TRAIN} images)")
    print(msg)
    assert top[2]["recall"] >= 0.75 and top[1]["recall"] >= 0.5, msg
    assert table.loc[flipped, "label_issue"].mean() > 0.5, msg
    assert table.loc[flipped, "confidence"].mean() < table.loc[~flipped, "confidence"].mean() - 0.3  # the data map


# ----------------------------------------------------------------------------- the workflow


@pytest.mark.workflow
def test_example_anatomy_runs_and_names_the_dataset(tmp_path):
    example = yaml.safe_load((ROOT / "config" / "datasets" / "example.yaml").read_text())
    small = {"memorisation": {"epochs": 2, "label_noise": [], "permutation": False}}
    wf = Workflow(tmp_path, tiny_config({"datasets": example["datasets"], "anatomy": {"example": small}}))
    shutil.copytree(ROOT / "resources" / "example", tmp_path / "resources" / "example")
    wf.run("results/datasets/example/anatomy.md")
    out = tmp_path / "results" / "datasets" / "example"
    md = (out / "anatomy.md").read_text()
    assert "# The anatomy of 'example'" in md and "Config: tiny" in md and "figures/memorisation.png" in md
    assert (out / "figures" / "memorisation.png").exists()
    for f in (out / "anatomy.md", out / "memorisation.csv"):
        assert "mnist" not in f.read_text().lower()
    assert read_json(out / "memorisation" / "clean" / "seed0" / "metrics.json")["model"] == "small_cnn"
    wf.write_config(tiny_config({"datasets": example["datasets"], "anatomy": example["anatomy"]}))
    jobs = wf.dry_run_jobs("results/datasets/example/anatomy.md")
    assert jobs["anatomy_train"] == 4 + 3 + 9 and jobs["anatomy_fold"] == 3, jobs  # the grid read from the data
