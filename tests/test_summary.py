"""results/summary: rows filled from the studies' own tables, with honest verdicts."""

from __future__ import annotations

import pandas as pd

from anatomy import summary


def test_crops_rows_carry_the_study_verdict_and_judge_the_baseline():
    v = pd.Series({"verdict": "reproduced only with the published mask", "baseline_mean": 0.9915,
                   "baseline_spread": 0.0004, "best_window": "(12, 7)", "best_window_test_accuracy": 0.95,
                   "best_as_published": "(0, 14)", "best_as_published_test_accuracy": 0.9925})
    rows = summary.crops_rows(v, data="MNIST full dataset", scale="full")
    assert rows[0]["published"] == 0.9917 and rows[0]["ours"] == 0.9915 and rows[0]["verdict"] == "reproduced"
    assert rows[1]["verdict"] == "reproduced only with the published mask"
    v["baseline_mean"] = 0.95
    assert summary.crops_rows(v, data="x", scale="full")[0]["verdict"] == "contradicted"
    assert summary.crops_rows(v, data="x", scale="quick")[0]["verdict"] == "not at this scale"


def test_cifar_rows_measure_bn_and_corruptions():
    s = pd.DataFrame([
        {"run": "bn_lr0.05", "final_test_accuracy": 0.84, "converged": True},
        {"run": "nobn_lr0.05", "final_test_accuracy": 0.80, "converged": True},
        {"run": "bn_lr0.5", "final_test_accuracy": 0.70, "converged": True},
        {"run": "nobn_lr0.5", "final_test_accuracy": 0.10, "converged": False},
        {"run": "aug_lr0.05", "final_test_accuracy": 0.895, "converged": True},
        {"run": "labels_p0.1", "final_test_accuracy": 0.77, "converged": True},
        {"run": "labels_p1", "final_test_accuracy": 0.10, "converged": True},
        {"run": "pixels_fixed_permutation", "final_test_accuracy": 0.52, "converged": True},
    ])
    rows = {r["quantity"]: r for r in summary.cifar_rows(s, base_lr=0.05, data="d", scale="full")}
    bn = next(r for q, r in rows.items() if q.startswith("BN converges"))
    assert bn["ours"] == "at lr 0.5" and bn["verdict"] == "reproduced"
    assert all(r["verdict"] == "reproduced" for r in rows.values()), rows


def test_iic_rows_name_the_selection_rule():
    s = pd.DataFrame([
        {"transform_set": "all", "alpha": 1.0, "loss_selected_accuracy_mean": 0.86, "loss_selected_accuracy_sd": 0.01,
         "label_selected_accuracy_optimistic_mean": 0.88, "label_selected_accuracy_optimistic_sd": 0.01},
        {"transform_set": "all", "alpha": 10.0, "loss_selected_accuracy_mean": 0.95, "loss_selected_accuracy_sd": 0.01,
         "label_selected_accuracy_optimistic_mean": 0.97, "label_selected_accuracy_optimistic_sd": 0.01},
    ])
    rows = summary.iic_rows(s, data="d", scale="full")
    assert "loss-selected" in rows[0]["ours"] and "label-selected" in rows[1]["ours"]
    assert [r["verdict"] for r in rows] == ["reproduced", "reproduced", "reproduced"]


def test_write_summary_markdown_has_a_row_per_result(tmp_path):
    rows = [summary._row("s", "q|x", 1, 2, None, "d", "quick", "not at this scale", "src")]
    df = summary.write_summary(rows, tmp_path / "s.csv", tmp_path / "s.md")
    md = (tmp_path / "s.md").read_text()
    assert len(df) == 1 and "| s | q/x | 1 | 2 |  | d | quick | not at this scale | src |" in md
    assert list(pd.read_csv(tmp_path / "s.csv").columns) == summary.COLUMNS


def test_digits_rows_use_the_local_leaderboard_and_bootstrap_spread():
    lb = pd.DataFrame({"entry": ["submission_simple", "submission_ensemble"], "test_accuracy": [0.965, 0.9968]})
    bs = pd.DataFrame({"submission": ["simple", "ensemble"], "public_sd": [0.002, 0.0007]})
    rows = summary.digits_rows(lb, bs, data="d", scale="full")
    assert rows[0]["ours"] == 0.965 and rows[0]["spread"] == 0.002 and rows[0]["verdict"] == "reproduced"
    assert rows[1]["published"] == 0.997 and rows[1]["verdict"] == "reproduced"
    assert rows[2]["ours"] == round(0.9968 - 0.965, 4)
    unknown = summary.digits_rows(lb.assign(test_accuracy=float("nan")), bs, data="d", scale="full")
    assert unknown[0]["ours"] == "test labels unknown" and unknown[0]["verdict"] == "not at this scale"
