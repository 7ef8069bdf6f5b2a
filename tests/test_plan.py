"""python -m anatomy.plan: a cost estimate before a run, checked against the tiny workflow's measured jobs."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

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


def test_downloads_are_timed_on_random_images_of_the_full_sets_shapes(tmp_path, monkeypatch):
    """The timed jobs need no network: a download becomes an npz of the full set's shapes (smaller here),
    a relative npz path an absolute one (the jobs run in a scratch folder), the embedded samples stay."""
    import numpy as np

    monkeypatch.setattr(plan, "FULL_SETS", {"mnist": ((60, 10), (28, 28)), "cifar10": ((50, 10), (32, 32, 3))})
    c = plan.load_config(None)
    c["data"]["mnist"] = {"source": "download", "path": None}
    c["data"]["cifar10"] = {**c["data"]["cifar10"], "source": "npz", "path": "mine/cifar.npz"}
    t = plan.timing_config(c, tmp_path)
    assert t["data"]["mnist"]["source"] == "npz" and t["data"]["cifar10"]["path"] == str(Path("mine/cifar.npz").resolve())
    assert plan.timing_config(c, tmp_path, base=tmp_path)["data"]["cifar10"]["path"] == str(tmp_path / "mine/cifar.npz")
    with np.load(t["data"]["mnist"]["path"]) as z:
        assert z["x_train"].shape == (60, 28, 28) and z["x_test"].shape == (10, 28, 28) and z["y_train"].max() <= 9
    assert c["data"]["mnist"]["source"] == "download"  # the config itself is left as it was
    assert plan.timing_config(plan.load_config(None), tmp_path)["data"] == plan.load_config(None)["data"]


def test_a_jobs_cost_is_what_its_timed_run_spent_outside_the_epochs_plus_each_epoch():
    t = {"job_seconds": 30.0, "fit_seconds": 12.0, "first_epoch_extra_seconds": 4.0, "step_seconds": 0.05,
         "epoch_end_seconds": 2.0, "steps_per_epoch": 100, "epochs": 10, "timed_steps": 20}
    # 18 s outside the two timed epochs, 4 s of tracing, 10 epochs of 100 steps x 0.05 s + 2 s
    assert plan.job_seconds(t) == pytest.approx(18 + 4 + 10 * (5 + 2))
    assert plan.job_seconds(t, epochs=1) == pytest.approx(18 + 4 + 7)
    counts = {"crops_train (window)": 4, "crops_train (confirm)": 2, "coreset_train (full, matched)": 1,
              "coreset_train (select)": 1, "coreset_train (random)": 3, "crops_mask": 5, "all": 1}
    c = plan.load_config(None)
    timed = {"crops_train (window)": t, "coreset_train (full, matched)": t, "coreset_train (random)": t}
    rows = {r["rule"]: r for r in plan.estimate(counts, timed, c, selected_fraction=0.1,
                                                  stop_epochs={"coreset_train (random)": 2.5})}
    assert rows["coreset_train (random)"]["seconds_per_job"] == pytest.approx(18 + 4 + 2.5 * 7, abs=0.05)
    assert rows["crops_train (confirm)"]["seconds_per_job"] == rows["crops_train (window)"]["seconds_per_job"]
    assert rows["crops_train (confirm)"]["timed_as"] == "crops_train (window)"
    n, b = c["data"]["ellipses"]["train_size"], c["coreset"]["batch_size"]
    steps = plan.selection_steps(n, b, fraction=0.1, initial=c["coreset"]["selection"]["initial"],
                                 first_epochs=c["coreset"]["stopping"]["max_epochs"])
    assert rows["coreset_train (select)"]["seconds_per_job"] == pytest.approx(
        18 + (steps + (steps + math.ceil(n / b)) / 3) * 0.05, abs=0.05)
    assert rows["(every other job)"]["jobs"] == 5  # the masks; "all" is no job


def test_each_training_job_is_costed_in_its_part_of_the_run_table():
    dry_run = """
rule crops_train:
    wildcards: run=confirm/window/s9_i0_j14/seed2
rule crops_train:
    wildcards: run=baseline_window_batch/seed1
rule coreset_train:
    wildcards: run=control/random_matched_steps/seed2
rule digits_train:
    output: results/digits/cv/fold4/seed0/model.keras, results/digits/cv/fold4/seed0/metrics.json
    benchmark: results/benchmarks/digits/cv/fold4/seed0.tsv
    wildcards: run=cv/fold4, seed=0
rule digits_train:
    wildcards: run=ladder/augment, seed=0
rule digits_train:
    wildcards: run=ladder/lr_steps, seed=1
rule cifar_train:
    wildcards: run=noisybn_lr0.05, seed=2
rule iic_train:
    wildcards: tset=all, alpha=10, alpha_over=10, seed=0
localrule crops_mask:
    wildcards: mask=window, size=9, i=0, j=14
"""
    parts = [plan.job_part(j["rule"], j["wildcards"]) for j in plan.dry_run_jobs(dry_run)]
    assert parts == ["crops_train (confirm)", "crops_train (baseline)", "coreset_train (random, matched)",
                     "digits_train (fold)", "digits_train (augment)", "digits_train (ladder)",
                     "cifar_train (noisybn)", "iic_train (all)", "crops_mask"]
    fold = plan.dry_run_jobs(dry_run)[3]
    assert fold["output"][1] == "results/digits/cv/fold4/seed0/metrics.json"
    assert fold["benchmark"] == "results/benchmarks/digits/cv/fold4/seed0.tsv"


@pytest.mark.workflow
def test_the_tiny_configs_timed_estimate_is_within_a_factor_of_three_of_its_measured_jobs(tiny_workflow, tmp_path):
    """The plan for the tiny config (its crops and iic rows timed for real, in a scratch folder) against those
    rows' benchmark files of the tiny run. Stated factor: 3 either way, on CPU seconds: the tiny run shares the
    machine with the other pytest worker, which stretches its jobs' wall times but not their work."""
    pytest.importorskip("tensorflow")
    config, results = tiny_workflow.config, tiny_workflow.path / "results"
    counts, timed = plan.time_rows(config, cores=1, steps=3, keep=tmp_path, studies=("crops", "iic"),
                                   base=tiny_workflow.path)
    assert set(timed) == {"crops_train (baseline)", "crops_train (window)", "iic_train (all)"}
    rows = plan.estimate(counts, timed, config, selected_fraction=plan.PUBLISHED_SELECTED_FRACTION)
    estimated = sum(r["jobs"] * r["seconds_per_job"] for r in rows if r["rule"].startswith(("crops_train", "iic")))
    bench = [pd.read_csv(f, sep="\t")["cpu_time"].iloc[0] for study in ("crops", "iic")
             for f in (results / "benchmarks" / study).rglob("*.tsv")]
    assert len(bench) == sum(counts[r] for r in counts if r.startswith(("crops_train", "iic_train")))
    assert 1 / 3 <= estimated / sum(bench) <= 3, (estimated, sum(bench), rows)
    text = plan.format_plan(rows, cores=2)
    assert "CPU-hours" in text and "Not known in advance" in text and math.isfinite(plan.wall_hours(rows, 2))
    assert {"crops", "iic"} <= set(plan.per_study(rows)) and all(f"- {s}: " in text for s in ("crops", "iic"))


def test_a_finished_coreset_run_gives_the_selected_fraction_and_the_controls_epochs(tmp_path):
    assert plan.finished_coreset(tmp_path) == {"fraction": None, "epochs": {}}
    (tmp_path / "coreset").mkdir()
    pd.DataFrame({"run": ["in_order", "in_order", "full", "full_matched_steps", "random", "random",
                          "random_matched_steps"], "seed": [0, 1, 0, 0, 0, 1, 0],
                  "pairs_used": [218, 222, 2000, 2000, 218, 222, 218],
                  "train_pairs": [2000] * 7, "epochs_run": [391, 400, 2, 16, 10, 12, 135],
                  "budget": ["selection (retrained after each addition)"] * 2
                  + ["stop at target", "matched gradient steps", "stop at target", "stop at target",
                     "matched gradient steps"]}).to_csv(
        tmp_path / "coreset" / "runs.csv", index=False)
    finished = plan.finished_coreset(tmp_path)  # the selections' mean fraction; the stop-at-target runs' epochs
    assert finished == {"fraction": pytest.approx(0.11), "epochs": {"coreset_train (full)": 2.0,
                                                                     "coreset_train (random)": 11.0}}


def test_the_comparison_puts_each_studys_estimate_beside_its_measured_wall_time():
    rows = [{"rule": "crops_train (window)", "jobs": 4, "seconds_per_job": 900.0},
            {"rule": "iic_train (all)", "jobs": 1, "seconds_per_job": 1800.0}]
    snaps = pd.DataFrame([{"study": "crops", "machine": "2 CPU cores, Intel", "commit": "abc", "wall_minutes": 45.0},
                          {"study": "cifar", "machine": "m", "commit": "abc", "wall_minutes": 10.0}])
    lines = plan.compare(rows, 2, snaps).splitlines()
    assert lines[2] == "| crops | 30.0 | 45.0 | 1.50 | 2 CPU cores, Intel | abc |"  # 4 x 15 min on 2 slots
    assert len(lines) == 3  # a study without an estimate is left out
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    snaps["commit"] = head
    assert "| 1.50 |" in plan.compare(rows, 2, snaps, since=f"{head}~1")  # a run made after the estimate
    assert "(an earlier run)" in plan.compare(rows, 2, snaps.assign(commit=f"{head}~1"), since=head)
    per_study = {"crops": head, "iic": f"{head}~1"}  # each study against the commit it was timed at
    assert "| 1.50 |" in plan.compare(rows, 2, snaps.assign(commit=head), since=per_study)
    assert "(an earlier run)" in plan.compare(rows, 2, snaps.assign(commit=f"{head}~1"), since=per_study)


def test_an_update_re_times_only_the_named_studies_and_keeps_each_studys_commit():
    kept = {"cores": 2, "config": "config/laptop.yaml", "commit": "old", "provenance": "Timed at old.",
            "rows": [{"rule": "crops_train (window)", "jobs": 98}, {"rule": "coreset_train (select)", "jobs": 2},
                     {"rule": "coreset_train (full)", "jobs": 1}]}
    new = {"cores": 2, "config": "config/laptop.yaml", "commit": "new", "provenance": "Timed at new.",
           "rows": [{"rule": "coreset_train (select)", "jobs": 6}, {"rule": "(every other job)", "jobs": 4}]}
    up = plan.updated(kept, new, ["coreset"])
    assert up["rows"] == [{"rule": "coreset_train (select)", "jobs": 6}, {"rule": "crops_train (window)", "jobs": 98}]
    assert up["commits"] == {"crops": "old", "coreset": "new"} and up["commit"] == "old"
    assert up["provenance"].startswith("Timed at old.") and "Re-timed (coreset): Timed at new." in up["provenance"]
    assert plan.updated(up, {**new, "commit": "newer"}, ["coreset"])["commits"] == {"crops": "old", "coreset": "newer"}
    with pytest.raises(ValueError, match="config/config.yaml"):
        plan.updated(kept, {**new, "config": "config/config.yaml"}, ["coreset"])
