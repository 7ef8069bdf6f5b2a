"""Workflow tests: Snakemake for real on the tiny config, dry runs of the shipped configs."""

from __future__ import annotations

import json
import re

import h5py
import pandas as pd
import pytest

from conftest import ROOT, Workflow, assert_figure, parse_job_counts, tiny_config

pytestmark = pytest.mark.workflow


def test_tiny_run_writes_every_output_and_they_parse(tiny_workflow):
    r = tiny_workflow.path / "results"
    with h5py.File(r / "data" / "mnist.h5", "r") as f:
        assert f["train/x"].shape == (600, 28, 28, 1) and f["train/x"].dtype == "uint8"
        assert f["test/y"].shape == (200,)
        assert f.attrs["source"].startswith("npz:")
    manifest = json.loads((r / "data" / "cifar10" / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 200, "test": 100}
    assert all((r / "data" / "cifar10" / n).exists() for n in manifest["shards"]["train"] + manifest["shards"]["test"])
    train = pd.read_csv(r / "data" / "digits" / "train.csv")
    test = pd.read_csv(r / "data" / "digits" / "test.csv")
    labels = pd.read_csv(r / "data" / "digits" / "test_labels.csv")
    assert len(train) + len(test) == 800 and len(train) == 480
    assert list(train.columns[:2]) == ["label", "pixel0"] and list(test.columns[:1]) == ["pixel0"]
    assert len(labels) == len(test) and labels["ImageId"].tolist() == list(range(1, len(test) + 1))

    run = r / "crops" / "baseline" / "seed1"
    assert (run / "predictions.npz").exists()
    hist = pd.read_csv(run / "history.csv")
    assert hist["epoch"].tolist() == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"} <= set(hist.columns)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["seed"] == 1 and metrics["train_images"] == 500 and metrics["device"] in ("CPU", "GPU")
    assert metrics["params"]["learning_rate"] == 0.002 and "tensorflow" in metrics["versions"]
    assert 0.3 < metrics["test"]["accuracy"] <= 1.0  # it learned something from 500 images
    assert (run / "model.keras").stat().st_size > 0
    log = (r / "logs" / "crops" / "baseline" / "seed1.log").read_text()
    assert "epoch 2/2" in log and "\r" not in log
    assert (r / "benchmarks" / "crops" / "baseline" / "seed1.tsv").exists()
    assert_figure(r / "crops" / "figures" / "baseline_curves.png")
    assert not (r / ".resume" / "crops" / "baseline" / "seed1").exists()  # backup removed once complete


def test_rerun_with_nothing_changed_runs_no_job(tiny_workflow):
    assert tiny_workflow.dry_run_jobs() == {}


def test_changing_one_value_reruns_only_the_jobs_it_touches(tiny_workflow, tmp_path):
    wf = tiny_workflow  # each changed config is a copy, passed with --configfile: the fixture stays as it is
    jobs = wf.dry_run_jobs_under(tiny_config({"crops": {"learning_rate": 0.003}}), tmp_path)
    # the confirmation runs follow once the checkpoint crops_select has chosen the windows again
    assert set(jobs) == {"crops_train", "crops_baseline_curves", "crops_aggregate",
                         "crops_stacking", "crops_select", "crops_verdict", "summary", "all"}, jobs
    assert jobs["crops_train"] == 2 + 3  # the baselines and the windows
    jobs = wf.dry_run_jobs_under(tiny_config({"crops": {"window": {"size": 7}}}), tmp_path)
    assert set(jobs) == {"crops_mask", "crops_train", "crops_aggregate", "crops_stacking", "crops_select",
                         "crops_verdict", "summary", "all"}, jobs
    assert jobs["crops_train"] == 3  # the windows, not the baselines
    jobs = wf.dry_run_jobs_under(tiny_config({"data": {"digits": {"train_fraction": 0.5}}}), tmp_path)
    # the digits study's jobs follow its data; nothing else does
    assert "digits_csv" in jobs and {j for j in jobs if not j.startswith("digits_")} == {"summary", "all"}, jobs
    assert wf.dry_run_jobs() == {}


def test_nested_command_line_overrides_work(tiny_workflow):
    """Snakemake passes nested --config values as strings; they are coerced by the schema's types."""
    p = tiny_workflow.run("-n", "results/crops/baseline.csv", "--config",
                          "crops={stopping: {max_epochs: 3, patience: 15, ratio: 0.995}}")
    assert parse_job_counts(p.stdout + p.stderr)["crops_train"] == 2 + 3  # the two baselines and the windows
    bad = tiny_workflow.run("-n", "--config", "crops={stopping: {max_epochs: three}}", check=False)
    assert bad.returncode != 0 and "crops.stopping.max_epochs" in bad.stdout + bad.stderr


def test_bad_config_is_refused_before_any_job(tmp_path):
    wf = Workflow(tmp_path, tiny_config({"crops": {"window": {"size": 40, "batch_size": 10}}}))
    p = wf.run("-n", check=False)
    assert p.returncode != 0
    assert "crops.window.size" in p.stdout + p.stderr
    assert not (tmp_path / "results").exists()


DIGITS_JOBS = {r: 1 for r in ("digits_arrays", "digits_folds", "digits_leaderboard", "digits_ladder_table",
                               "digits_hardest", "digits_bootstrap")} | {"digits_figure": 5}
CORESET_JOBS = {"ellipses_h5": 1, "coreset_aggregate": 1}  # and per seed: its initial weights, 6 trainings


@pytest.mark.parametrize("configfile, expected", [
    ("config.yaml", {"mnist_h5": 1, "cifar10_tfrecords": 1, "digits_csv": 1, "crops_initial_weights": 4,
                     "crops_train": 3 + 4, "crops_baseline_curves": 1, "crops_mask": 4,
                     "crops_aggregate": 1, "crops_stacking": 1, "crops_select": 1, "crops_verdict": 1, **DIGITS_JOBS, "digits_initial_weights": 1, "digits_fold_initial_weights": 1,
                     "digits_train": 6, "digits_submission": 3,
                     "digits_validate_submission": 3, "iic_train": 2, "iic_aggregate": 1,
                     "cifar_variant": 1 + 2, "cifar_initial_weights": 1, "cifar_train": 9,
                     "cifar_aggregate": 1, **CORESET_JOBS, "coreset_initial_weights": 1, "coreset_train": 2 + 2 + 2}),
    ("laptop.yaml", {"mnist_h5": 1, "cifar10_tfrecords": 1, "digits_csv": 1, "crops_initial_weights": 4,
                     "crops_train": 3 + 98, "crops_baseline_curves": 1, "crops_mask": 98,
                     "crops_aggregate": 1, "crops_stacking": 1, "crops_select": 1, "crops_verdict": 1, **DIGITS_JOBS,
                     "digits_initial_weights": 3, "digits_fold_initial_weights": 3, "digits_train": 27,
                     "digits_submission": 3, "digits_validate_submission": 3,
                     "iic_train": 6, "iic_aggregate": 1, "cifar_variant": 4 + 4,
                     "cifar_initial_weights": 3, "cifar_train": 54, "cifar_aggregate": 1, **CORESET_JOBS,
                     "coreset_initial_weights": 3, "coreset_train": 3 * (2 + 2 + 2)}),
    ("full.yaml", {"mnist_h5": 1, "cifar10_tfrecords": 1, "digits_csv": 1, "crops_initial_weights": 4,
                   "crops_train": 3 + 3 + 761, "crops_baseline_curves": 1, "crops_mask": 761, "crops_aggregate": 1, "crops_stacking": 1,
                   "crops_select": 1, "crops_verdict": 1, **DIGITS_JOBS, "digits_initial_weights": 3, "digits_fold_initial_weights": 3,
                   "digits_train": 27, "digits_submission": 2,
                   "digits_validate_submission": 2, "iic_train": 30, "iic_aggregate": 1,
                   "cifar_variant": 10 + 4, "cifar_initial_weights": 3, "cifar_train": 78,
                   "cifar_aggregate": 1, **CORESET_JOBS, "coreset_initial_weights": 3,
                   "coreset_train": 3 * (2 + 2 + 2)}),
])
def test_dry_runs_of_shipped_configs_list_the_expected_jobs(tmp_path, configfile, expected):
    import yaml

    config = yaml.safe_load((ROOT / "config" / configfile).read_text())
    counts = Workflow(tmp_path, config).dry_run_jobs()
    counts.pop("all", None)
    for rule, n in expected.items():
        assert counts.get(rule) == n, (rule, counts)


def test_report_builds_with_every_studys_figures(tiny_workflow):
    report = tiny_workflow.path / "report.html"
    tiny_workflow.run("--report", str(report))
    html = report.read_text(errors="replace")
    for name in ("heatmap_window.png", "importance.png", "stacking.png", "baseline_curves.png", "windows.csv",
                 "bn_lr.png", "labels.png", "p_over_epochs.gif", "confusion.png", "selected_vs_scanned.png",
                 "score_vs_size.png", "ladder.png", "hardest.png", "summary.csv", "confirm.csv"):
        assert name in html, name


def test_slurm_profile_sends_each_studys_tables_and_figures_as_one_group_job(tmp_path):
    """profiles/slurm groups the post-training rules: one sbatch job per study's tables and
    figures, never a training or a rule that feeds one (that would serialise the study)."""
    import yaml

    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    wf = Workflow(tmp_path, tiny_config())
    p = wf.run("-n", "--profile", str(ROOT / "profiles" / "slurm"), "--cores", "4")
    groups, current = {}, None
    for line in (p.stdout + p.stderr).splitlines():
        m = re.search(r"Group job (\S+) \(", line)
        if m:
            current = groups.setdefault(m.group(1), [])
        elif current is not None and line and not line.startswith(" "):
            current = None
        elif current is not None and (r := re.match(r"\s+rule (\w+):", line)):
            current.append(r.group(1))
    assert set(groups) == {"crops_post", "digits_post"}, groups
    trainings = {"crops_train", "digits_train"}
    for name, rules in groups.items():
        assert set(rules) == {r for r, g in profile["groups"].items() if g == name}, (name, rules)
        assert not trainings & set(rules), rules
    assert groups["digits_post"].count("digits_submission") == 3  # disconnected parts, one job


def test_rule_scripts_import_the_package_of_the_checkout_that_runs(tmp_path):
    """A second checkout (a copy here) runs its own `anatomy`, not the pip-installed one."""
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "checkout"
    copy.mkdir()
    for part in ("Snakefile", "rules", "scripts", "config", "report", "resources", "envs"):
        (shutil.copytree if (ROOT / part).is_dir() else shutil.copy)(ROOT / part, copy / part)
    marker = tmp_path / "imported_from.txt"
    init = copy / "scripts" / "anatomy" / "__init__.py"
    init.write_text(init.read_text() + f"\nopen({str(marker)!r}, 'a').write(__file__ + '\\n')\n")
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(copy / "Snakefile"), "--directory", str(copy),
                    "--cores", "1", "results/data/mnist.h5"], check=True, capture_output=True, timeout=300)
    imports = marker.read_text().split()  # only the copy's `anatomy` writes here
    assert len(imports) == 2 and set(imports) == {str(init)}, imports  # Snakemake's process and the rule script's
