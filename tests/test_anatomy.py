"""anatomy.studies.anatomy and anatomy_results: every part of a dataset's anatomy, on small data made here.

The data: 16x16 grey images of three classes (anatomy.data.example's generator) whose label lives only
in the bottom-right 8x8 quarter; for clustering, grey and RGB textures of three well-separated classes.
The trainings are the rules' own function, run in this process.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from anatomy.config import ConfigError, deep_merge, load_yaml, validate_config
from anatomy.data.example import CLASSES, SIGNAL, example_images
from anatomy.io import read_json, write_dataset_h5
from anatomy.studies import anatomy as A
from anatomy.studies import anatomy_report as report
from anatomy.studies import anatomy_results as R
from anatomy.studies.crops import window_mask
from anatomy.training.setup import RunSettings

from conftest import ROOT, Workflow, assert_figure, tiny_config

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


def _train(h5, tmp_path, part, run, entry, seed=0, ranking=None):
    """One run through the training contract, as rules anatomy_train and anatomy_fold run it; returns its folder."""
    d = tmp_path / part / run / f"seed{seed}"
    files = {"model": d / "model.keras", "history": d / "history.csv", "metrics": d / "metrics.json",
             "predictions": d / "predictions.npz", "backup": tmp_path / ".resume" / part / run}
    A.train_anatomy_run(h5=h5, files=files, part=part, run=run, settings=A.part_settings(entry, part),
                        run_settings=RunSettings(threads=2, seed=seed), ranking=ranking)
    return d


def _textures(n, seed, channels, side):
    """Three well-separated classes: horizontal stripes, vertical stripes, a filled square (random offsets, over
    noise); in colour each class also has its own colour."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(30, 15, (n, side, side, channels))
    rows, cols = np.mgrid[:side, :side]
    for i, k in enumerate(y):
        o = int(rng.integers(0, 4))
        square = (abs(rows - side / 2 + 2.5 - o) < side / 4) & (abs(cols - side / 2 - 1.5 + o) < side / 4)
        x[i, [(rows + o) % 4 < 2, (cols + o) % 4 < 2, square][k]] += 180 if channels == 1 else 180 * np.eye(3)[k] + 60
    return np.clip(x, 0, 255).astype(np.uint8), y


def _texture_dataset(tmp_path, channels, *, side=16, n_train=400, n_test=150):
    (x, y), (xs, ys) = _textures(n_train, 0, channels, side), _textures(n_test, 1, channels, side)
    h5 = tmp_path / "textures.h5"
    write_dataset_h5(h5, {"train": (x, y), "test": (xs, ys)}, source="test", sha256="-", classes=["h", "v", "sq"])
    return h5


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

    windows(table, x_test, tmp_path / "windows.png", provenance=report.provenance("bars", "npz", "tiny"))
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


def test_subset_indices_rank_by_confidence_and_draw_random_per_seed():
    conf = np.array([0.9, 0.1, 0.5, 0.5, 0.95, 0.2, 0.7, 0.3, 0.6, 0.4])
    assert A.subset_runs(A.settings({"subset": {"sizes": [0.2, 0.5]}})) == [
        "easy_f0.2", "hard_f0.2", "random_f0.2", "easy_f0.5", "hard_f0.5", "random_f0.5"]
    assert A.subset_indices("easy_f0.3", conf, seed=0).tolist() == [0, 4, 6]
    assert A.subset_indices("hard_f0.3", conf, seed=0).tolist() == [1, 5, 7]
    r0, r1 = (A.subset_indices("random_f0.5", conf, seed=s) for s in (0, 1))
    assert len(r0) == 5 and len(set(r0)) == 5 and not np.array_equal(r0, r1)
    assert A.subset_indices("hard_f0.01", conf, seed=0).tolist() == [1]  # at least one image


def test_ensemble_intervals_are_over_trained_models_and_test_images():
    """Two seeds x three folds: single models n = 6, ensembles n = 2; the interval over models is wider than the
    one over test images alone when the models differ, and it says what it resamples."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    preds = {}
    for s in (0, 1):
        for k in range(3):
            right = rng.random(400) < (0.6 + 0.1 * k)  # models of different quality: model-to-model spread
            guess = np.where(right, labels, (labels + 1) % 3)
            preds[(f"fold{k}", s)] = {"test": np.eye(3)[guess] * 0.6 + 0.1, "test_tta": np.eye(3)[guess] * 0.5 + 0.15,
                                      "labels": labels}
    table, models = R.ensemble_table(preds, resamples=500)
    t = table.set_index("method")
    assert t.loc["single", "trained_models"] == 6 and t.loc["ensemble", "trained_models"] == 2
    assert t.loc["single", "interval_over"] == "6 trained models and 400 test images"
    assert t.loc["ensemble", "interval_over"] == "2 trained models and 400 test images"
    assert t.loc["single", "test_accuracy_sd"] > 0.05  # the spread over trained models
    only_images = R.bootstrap_accuracy(np.stack([p["test"].argmax(1) == labels for p in preds.values()])[:1],
                                       resamples=500)
    assert only_images[2] == "400 test images only (one trained model)"
    width = lambda m: t.loc[m, "interval_high"] - t.loc[m, "interval_low"]  # noqa: E731
    assert width("single") > only_images[1] - only_images[0]
    assert t.loc["ensemble - single", "interval_over"] == "seeds" and len(models) == 6 + 6 + 2 + 2


def test_clustering_without_labels_beats_chance_on_grey_textures(tmp_path):
    h5 = _texture_dataset(tmp_path, 1)
    entry = {"clustering": {"epochs": 8, "batch_size": 50}}
    d = _train(h5, tmp_path, "clustering", "iic", entry)
    table, confusion, drawn = R.aggregate_clustering(h5, [d / "history.csv"], [d / "predictions.npz"])
    r = table.iloc[0]
    print("grey clustering:", r[["loss_selected_accuracy", "loss_selected_epoch", "final_accuracy",
                                 "loss_selected_over_purity", "chance"]].to_dict(), confusion.to_dict("list"))
    assert r["loss_selected_accuracy"] > r["chance"] + 0.3, r.to_dict()
    assert int(confusion.drop(columns="class").to_numpy().sum()) == 150 and list(confusion["class"]) == ["h", "v", "sq"]
    h = pd.read_csv(d / "history.csv")  # chosen by the IIC loss, never by the labels
    assert r["loss_selected_epoch"] == h.loc[h["eval_loss"].idxmin(), "epoch"]


def test_an_rgb_dataset_runs_every_part_end_to_end(tmp_path):
    """12x12 colour textures through all six parts (tiny sizes), the report and every figure."""
    from anatomy.plots import anatomy as P

    h5 = _texture_dataset(tmp_path, 3, side=12, n_train=240, n_test=90)
    entry = {"model": "small_cnn", "learning_rate": 0.003,  # the fastest model; auto (vgg): test_settings...
             "memorisation": {"epochs": 1, "label_noise": [], "permutation": False},
             "windows": {"size": 12, "epochs": 1, "seeds": [0]}, "examples": {"folds": 2, "epochs": 2, "top": 6},
             "clustering": {"epochs": 4, "batch_size": 40}, "subset": {"sizes": [0.5], "steps": 6, "seeds": [0, 1]},
             "ensemble": {"folds": 2, "epochs": 1, "seeds": [0, 1], "tta": 1, "bootstrap": 200}}
    s, out, prov = A.settings(entry), tmp_path / "out", report.provenance("colours", "npz", "tiny")
    (out / "figures").mkdir(parents=True)
    d = _train(h5, tmp_path, "memorisation", "clean", entry)
    table, curves, chance = R.aggregate_memorisation(h5, [d / "history.csv"], [d / "metrics.json"])
    table.to_csv(out / "memorisation.csv", index=False)
    P.memorisation(curves, chance, out / "figures" / "memorisation.png", provenance=prov)
    runs = ["full", *[A.window_run(*w) for w in A.window_grid(s, (12, 12, 3))]]
    table, x_test = R.aggregate_windows(h5, [_train(h5, tmp_path, "windows", r, entry) / "history.csv" for r in runs])
    table.to_csv(out / "windows.csv", index=False)
    P.windows(table, x_test, out / "figures" / "windows.png", provenance=prov)
    dirs = [_train(h5, tmp_path, "examples", f"fold{k}", entry) for k in range(2)]
    table, summary, x_train = R.aggregate_examples(h5, [d / "predictions.npz" for d in dirs])
    table.to_csv(out / "examples.csv", index=False)
    summary.to_csv(out / "examples_audit.csv", index=False)
    P.label_issues(table, x_train, out / "figures" / "examples.png", show=6, provenance=prov)
    P.data_map(table, out / "figures" / "examples_datamap.png", provenance=prov)

    d = _train(h5, tmp_path, "clustering", "iic", entry)
    table, confusion, drawn = R.aggregate_clustering(h5, [d / "history.csv"], [d / "predictions.npz"])
    print("RGB clustering:", table[["loss_selected_accuracy", "loss_selected_epoch", "chance"]].to_dict("records"))
    assert read_json(d / "metrics.json")["params"]["transform_names"] == ["rotate", "distort", "jitter", "noise"]
    assert table["loss_selected_accuracy"].iloc[0] > table["chance"].iloc[0] + 0.3, table.to_dict("records")
    table.to_csv(out / "clustering.csv", index=False)
    confusion.to_csv(out / "clustering_confusion.csv", index=False)
    P.clustering(drawn, out / "figures" / "clustering.png", provenance=prov)

    metrics = [_train(h5, tmp_path, "subset", run, entry, seed=seed, ranking=out / "examples.csv") / "metrics.json"
               for run in A.subset_runs(s) for seed in (0, 1)]
    table = R.aggregate_subset(h5, metrics)
    print("subset:\n", table[["kind", "images", "seed", "gradient_steps", "test_accuracy"]].to_string())
    assert table.groupby(["fraction", "kind"]).size().to_dict() == {(0.5, k): 2 for k in A.SUBSET_KINDS}
    assert set(table["images"]) == {120} and set(table["gradient_steps"]) == {6}
    assert all(read_json(m)["epochs_run"] == 2 for m in metrics)  # 6 steps: an epoch of 4, then 2
    table.to_csv(out / "subset.csv", index=False)
    P.subset(table, out / "figures" / "subset.png", provenance=prov)

    preds = [_train(h5, tmp_path, "ensemble", f"fold{k}", entry, seed=seed) / "predictions.npz"
             for seed in (0, 1) for k in range(2)]
    table, models = R.aggregate_ensemble(preds, resamples=200)
    print("ensemble:\n", table[["method", "trained_models", "test_accuracy_mean", "test_accuracy_sd", "interval_low",
                                "interval_high", "interval_over"]].to_string())
    t = table.set_index("method")
    assert t.loc["single", "trained_models"] == 4 and t.loc["ensemble", "trained_models"] == 2
    assert t.loc["ensemble", "interval_over"].startswith("2 trained models") and "single_tta" in t.index
    table.to_csv(out / "ensemble.csv", index=False)
    P.ensemble(table, models, out / "figures" / "ensemble.png", provenance=prov)

    manifest = {"shape": [12, 12, 3], "sizes": {"train": 240, "test": 90}, "classes": ["h", "v", "sq"],
                "source": "npz"}
    (out / "manifest.json").write_text(json.dumps(manifest))
    inputs = {p: out / f"{p}.csv" for p in (*A.PARTS, "examples_audit", "clustering_confusion")}
    report.write_report(out / "anatomy.md", {**inputs, "manifest": out / "manifest.json"}, name="colours", settings=s,
                   scale="tiny")
    md = (out / "anatomy.md").read_text()
    for section in ("## Memorisation", "## Where the signal is", "## Examples", "## Clustering without labels",
                    "## Training-set size", "## Ensemble and test-time augmentation"):
        assert section in md, section
    assert "# The anatomy of 'colours'" in md and "mnist" not in md.lower() and "(n = 2)" in md
    for png in (out / "figures").glob("*.png"):
        assert_figure(png)
    assert len(list((out / "figures").glob("*.png"))) == 7


# ----------------------------------------------------------------------------- the workflow


def _write_sources(tmp_path) -> dict:
    """The example's bars as a grey npz (``bars``) and, tinted into three colour channels, as a folder of
    PNGs (``shapes``): the two other sources, beside the shipped CSV example."""
    from PIL import Image

    splits = {"train": example_images(60, seed=0), "test": example_images(30, seed=1)}
    np.savez(tmp_path / "bars.npz", x_train=splits["train"][0], y_train=splits["train"][1],
             x_test=splits["test"][0], y_test=splits["test"][1])
    for split, (x, y) in splits.items():
        for i, (img, label) in enumerate(zip(x, y)):
            path = tmp_path / "shapes" / split / CLASSES[label] / f"{i:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.stack([img, img[::-1], 255 - img], axis=-1)).save(path)
    return {"bars": {"source": "npz", "path": "bars.npz", "classes": list(CLASSES)},
            "shapes": {"source": "folder", "path": "shapes"}}


@pytest.mark.workflow
def test_example_anatomy_runs_and_names_the_dataset(tmp_path):
    """The shipped CSV example, a grey npz and an RGB image folder, each through the workflow to its report."""
    example = yaml.safe_load((ROOT / "config" / "datasets" / "example.yaml").read_text())
    small = {"memorisation": {"epochs": 2, "label_noise": [], "permutation": False}}
    datasets = {**example["datasets"], **_write_sources(tmp_path)}
    wf = Workflow(tmp_path, tiny_config({"datasets": datasets, "anatomy": {name: small for name in datasets}}))
    shutil.copytree(ROOT / "resources" / "example", tmp_path / "resources" / "example")
    wf.run(*[f"results/datasets/{name}/anatomy.md" for name in datasets])
    in_order, by_folder = ", ".join(CLASSES), ", ".join(sorted(CLASSES))  # a folder's classes: its sorted names
    for name, channels, classes, model in (("example", 1, in_order, "small_cnn"), ("bars", 1, in_order, "small_cnn"),
                                           ("shapes", 3, by_folder, "vgg")):
        out = tmp_path / "results" / "datasets" / name
        md = (out / "anatomy.md").read_text()
        assert f"# The anatomy of '{name}'" in md and "Config: tiny" in md and "figures/memorisation.png" in md
        assert f"16x16x{channels}" in md and f"3 classes ({classes})" in md, md[:400]
        assert_figure(out / "figures" / "memorisation.png")
        for f in (out / "anatomy.md", out / "memorisation.csv"):
            assert "mnist" not in f.read_text().lower()
        assert read_json(out / "memorisation" / "clean" / "seed0" / "metrics.json")["model"] == model
    wf.write_config(tiny_config({"datasets": example["datasets"], "anatomy": example["anatomy"]}))
    jobs = wf.dry_run_jobs("results/datasets/example/anatomy.md")
    # memorisation 4, windows 3 + 9 (the grid read from the data), subset 2 sizes x 3 kinds x 2 seeds
    assert jobs["anatomy_train"] == 4 + 3 + 9 + 12, jobs
    assert jobs["anatomy_fold"] == 3 + 6 + 1, jobs  # examples folds, ensemble 3 folds x 2 seeds, one IIC run
    assert all(jobs[r] == 1 for r in ("anatomy_clustering", "anatomy_subset", "anatomy_ensemble")), jobs
    with pytest.raises(ConfigError, match=r"anatomy\.example\.subset.*examples part"):
        validate_config(deep_merge(load_yaml(ROOT / "config" / "config.yaml"),
                                   {**example, "anatomy": {"example": {"subset": {}}}}), ROOT / "config" / "schema.yaml")
