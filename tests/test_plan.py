"""python -m anatomy.plan: a cost estimate before a run, checked against the tiny workflow's measured jobs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from anatomy import plan
from conftest import ROOT


def test_selection_steps_count_the_first_phase_and_one_epoch_per_addition():
    # 4 initial pairs, batch 4, 3 first epochs: 3 steps; then 5..8 selected: 2 steps each
    assert plan.selection_steps(10, 4, fraction=0.8, initial=4, first_epochs=3) == 3 + 4 * 2
    assert plan.selection_steps(100, 16, fraction=0.0, initial=11, first_epochs=20) == 20  # nothing joins


def test_wall_time_packs_the_longest_jobs_first_and_never_beats_the_longest_job():
    rows = [{"jobs": 1, "seconds_per_job": 3600.0}, {"jobs": 4, "seconds_per_job": 900.0}]
    assert plan.wall_hours(rows, cores=2) == pytest.approx(1.0)
    assert plan.wall_hours(rows, cores=1) == pytest.approx(2.0)
    assert plan.wall_hours(rows, cores=8) == pytest.approx(1.0)


def test_a_configfile_is_merged_over_the_quick_config(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("cifar: {epochs: 40}\n")
    c = plan.load_config(f)
    assert c["cifar"]["epochs"] == 40 and c["cifar"]["batch_size"] == plan.load_config(None)["cifar"]["batch_size"]


def test_full_config_rules_use_the_full_datasets():
    c = plan.load_config(ROOT / "config" / "full.yaml")
    counts = {"crops_train (baseline)": 3, "cifar_train": 78, "digits_train (fold)": 15, "digits_train (step1)": 3,
              "digits_train (ladder)": 9, "coreset_train (select)": 2}
    rules = {r["rule"]: r for r in plan.training_rules(c, counts, selected_fraction=plan.PUBLISHED_SELECTED_FRACTION)}
    assert rules["crops_train (baseline)"]["images_per_epoch"] == 60_000 - c["crops"]["validation_size"]
    assert rules["cifar_train"]["images_per_epoch"] == 50_000 and rules["cifar_train"]["jobs"] == 78
    fold, step1 = rules["digits_train (fold)"], rules["digits_train (step1)"]
    assert fold["images_per_epoch"] == 42_000 * (c["digits"]["step2"]["folds"] - 1) // 5 and fold["jobs"] == 15
    assert step1["jobs"] == 3 and step1["epochs"] == c["digits"]["step1"]["epochs"] != fold["epochs"]
    assert set(rules) == set(counts)  # rules without jobs are left out


def test_each_training_job_is_costed_in_its_part_of_the_run_table():
    dry_run = """
rule crops_train:
    wildcards: run=confirm/window/s9_i0_j14/seed2
rule crops_train:
    wildcards: run=baseline_window_batch/seed1
rule coreset_train:
    wildcards: run=control/random_seed3_matched_steps
rule digits_train:
    wildcards: run=cv/fold4, seed=0
localrule crops_mask:
    wildcards: mask=window, size=9, i=0, j=14
"""
    parts = [plan.job_part(rule, wc) for rule, wc in plan.planned_jobs(dry_run)]
    assert parts == ["crops_train (confirm)", "crops_train (baseline)", "coreset_train (matched)",
                     "digits_train (fold)", "crops_mask"]


@pytest.mark.workflow
def test_the_tiny_configs_estimate_is_within_a_factor_of_three_of_its_measured_job_times(tiny_workflow):
    """The plan for the tiny config (its own dry run, this machine's measured speeds) against the sum of the
    training jobs' benchmark files of the tiny run. Stated factor: 3 either way."""
    pytest.importorskip("tensorflow")
    results = tiny_workflow.path / "results"
    config = tiny_workflow.config
    counts = plan.dry_run_counts(config, workdir=tiny_workflow.path)
    rules = plan.training_rules(config, counts, selected_fraction=plan.measured_fraction(results),
                                workdir=tiny_workflow.path)
    rows = plan.estimate(rules, plan.measure_rates(config, scale=0.05), counts)
    estimated = sum(r["jobs"] * r["seconds_per_job"] for r in rows if r["model"])
    # CPU seconds, not wall seconds: the tiny run shares the machine with the other pytest worker, which
    # stretches its jobs' wall times but not the work they do
    bench = [pd.read_csv(f, sep="\t")["cpu_time"].iloc[0] for f in (results / "benchmarks").rglob("*.tsv")]
    measured = float(sum(bench))
    assert len(bench) == sum(r["jobs"] for r in rows if r["model"])  # every training job has its benchmark
    assert 1 / 3 <= estimated / measured <= 3, (estimated, measured, rows)
    text = plan.format_plan(rows, cores=2)
    assert "CPU-hours" in text and "Not known in advance" in text and math.isfinite(plan.wall_hours(rows, 2))
    studies = plan.per_study(rows)
    assert {"crops", "cifar", "iic", "coreset", "digits"} <= set(studies)  # every study has its line
    assert sum(len(g) for g in studies.values()) == len(rows)
    assert all(f"- {s}: " in text for s in studies)
