"""results/summary: every published claim typed, judged by the one engine on the studies' own tables."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from anatomy import summary
from anatomy import verdicts as v
from anatomy.studies import cifar_results, crops_results, iic_results

from conftest import ROOT


def _cifar_summary(seeds=(0, 1, 2), *, noisy_gap=-0.005, train_random=0.218):
    rng = np.random.default_rng(0)
    rows = []
    for s in seeds:
        n = lambda: float(rng.normal(0, 0.003))  # noqa: E731
        base = {"seed": s, "epochs_run": 15, "test_images": 10_000}
        rows += [
            {**base, "run": "bn_lr0.05", "final_test_accuracy": 0.84 + n(), "final_train_accuracy": 0.95 + n(),
             "test_accuracy_bn_reestimated": 0.845 + n()},
            {**base, "run": "nobn_lr0.05", "final_test_accuracy": 0.80 + n(), "final_train_accuracy": 0.85 + n()},
            {**base, "run": "noisybn_lr0.05", "final_test_accuracy": 0.17, "final_train_accuracy": 0.93 + n(),
             "test_accuracy_bn_reestimated": 0.845 + noisy_gap + n(), "test_accuracy_noise_off": 0.17,
             "test_accuracy_noise_on_mean": 0.55},
            {**base, "run": "aug_lr0.05", "final_test_accuracy": 0.90 + n(), "final_train_accuracy": 0.9},
            {**base, "run": "labels_p0.1", "final_test_accuracy": 0.77 + n(), "final_train_accuracy": 0.9},
            {**base, "run": "labels_p1", "final_test_accuracy": 0.10 + n(), "final_train_accuracy": train_random},
            {**base, "run": "pixels_fixed_permutation", "final_test_accuracy": 0.50 + n(), "final_train_accuracy": 1},
        ]
    return pd.DataFrame(rows)


def _by_key(items, scale="laptop"):
    return {c.key: summary.judged_row(c, e, comparisons=k, data="d", scale=scale) for c, e, k in items}


def test_cifar_claims_pair_by_seed_and_count_trained_models():
    rows = _by_key(cifar_results.claims_evidence(_cifar_summary(), base_lr=0.05))
    assert rows["augmentation"]["n"] == 3 and rows["augmentation"]["verdict"] == v.REPRODUCED
    assert rows["labels_p0.1"]["verdict"] == v.REPRODUCED and "seed pairs" in rows["labels_p0.1"]["statistic"]
    assert rows["bn_trains_faster_lr0.05"]["verdict"] == v.EFFECT_SHOWN
    assert rows["fixed_permutation"]["verdict"] == v.CONSISTENT
    assert rows["noisy_bn_test"]["verdict"] == v.NON_INFERIOR  # 0.005 below BN, margin 0.02
    assert rows["random_labels_fitted"]["verdict"] == v.NOT_AT_SCALE  # 0.218 is not fitted
    assert "evaluation artefact" in rows["noisy_bn_test"]["statistic"]
    for r in rows.values():
        assert r["verdict"] in v.WORDS and r["rule"] and r["type"] in v.TYPES, r


def test_cifar_one_run_per_setting_settles_no_difference():
    rows = _by_key(cifar_results.claims_evidence(_cifar_summary(seeds=(0,)).drop(columns="seed"), base_lr=0.05))
    for key in ("augmentation", "labels_p0.1", "bn_trains_faster_lr0.05", "noisy_bn_test", "noise_slows_training",
                "fixed_permutation"):
        assert rows[key]["verdict"] == v.ONE_RUN and rows[key]["n"] == 1, key
    fitted = _by_key(cifar_results.claims_evidence(_cifar_summary(seeds=(0,), train_random=0.99), base_lr=0.05))
    assert fitted["random_labels_fitted"]["verdict"] == v.FITTED  # a threshold, not a difference


def test_graded_convergence_does_not_call_random_labels_at_0_218_converged():
    fit_fraction = cifar_results.fit_fraction
    assert fit_fraction(0.218) == pytest.approx(0.131, abs=1e-3) and fit_fraction(0.218) < cifar_results.CONVERGED
    assert fit_fraction(0.1) == pytest.approx(0) and fit_fraction(1.0) == pytest.approx(1)


def _confirm(diffs: dict, val: dict):
    rows = []
    for (mask, i, j), ds in diffs.items():
        for s, d in enumerate(ds, 1):
            rows.append({"mask": mask, "i": i, "j": j, "size": 9, "seed": s, "window_test_accuracy": 0.99 + d,
                         "baseline_test_accuracy": 0.99, "paired_difference": d,
                         "window_val_accuracy": val[(mask, i, j)], "epoch_of_best": 4})
    return pd.DataFrame(rows)


def test_crops_judges_each_masks_held_out_best_window_with_bonferroni():
    baseline = pd.DataFrame({"seed": [1, 2, 3], "test_accuracy": [0.9867, 0.9882, 0.989],
                             "best_test_accuracy_published_style": [0.9882, 0.9882, 0.989]})
    confirm = _confirm({("as_published", 0, 14): [0.0002, -0.0002, 0.0003],
                        ("as_published", 18, 1): [0.01, 0.011, 0.012],   # better on test, worse held out
                        ("window", 9, 14): [-0.15, -0.152, -0.149], ("window", 0, 14): [-0.31, -0.31, -0.312]},
                       {("as_published", 0, 14): 0.988, ("as_published", 18, 1): 0.98, ("window", 9, 14): 0.84,
                        ("window", 0, 14): 0.7})
    rows = _by_key(crops_results.claims_evidence(baseline, confirm))
    mask = rows["published_mask_beats"]
    assert mask["ours"].endswith("at (0, 14)")  # chosen held out, never on test
    assert mask["verdict"] == v.NOT_SETTLED and "minimum detectable effect" in mask["statistic"]
    assert "Bonferroni over 4" in mask["rule"]
    assert rows["true_window_beats"]["verdict"] == v.REVERSED and rows["true_window_beats"]["ours"].endswith("(9, 14)")
    assert rows["baseline"]["verdict"] == v.CONSISTENT and rows["baseline"]["n"] == 3


def _iic_runs(acc1, acc10):
    rows = [{"transform_set": "all", "alpha": a, "seed": s, "pair": "two_twins", "loss_selected_accuracy": x,
             "label_selected_accuracy_optimistic": x + 0.01, "at_uniform_point": a == 10 and x < 0.2}
            for a, accs in ((1.0, acc1), (10.0, acc10)) for s, x in enumerate(accs)]
    return pd.DataFrame(rows)


def test_iic_attainment_is_directional_and_the_gain_is_paired():
    rows = _by_key(iic_results.claims_evidence(_iic_runs([0.8795], [0.778])))
    assert rows["alpha1"]["verdict"] == v.ATTAINED and rows["alpha1"]["n"] == 1  # above 0.85: supports it
    assert rows["alpha10"]["verdict"] == v.ONE_RUN and rows["alpha10_gain"]["verdict"] == v.ONE_RUN
    three = _by_key(iic_results.claims_evidence(_iic_runs([0.88, 0.86, 0.87], [0.10, 0.11, 0.12])), scale="full")
    assert three["alpha10"]["verdict"] == v.CONTRADICTED and three["alpha10_gain"]["verdict"] == v.CONTRADICTED
    assert "3 of 3 runs ended at the uniform point" in three["alpha10"]["finding"]


def test_write_summary_opens_with_one_line_per_claim_then_details(tmp_path):
    table = summary.judged_table(iic_results.claims_evidence(_iic_runs([0.88, 0.86], [0.9, 0.95])), data="MNIST x",
                                 scale="laptop")
    df = summary.write_summary(table, tmp_path / "s.csv", tmp_path / "s.md")
    md = (tmp_path / "s.md").read_text()
    assert list(pd.read_csv(tmp_path / "s.csv").columns) == summary.COLUMNS
    head = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    assert len(head) == len(df) == 3 and all(line.count("|") == 8 for line in head)
    assert md.count("\n### ") == 3 and "**statistic:**" in md and "**rule (attainment):**" in md


VERDICT_CELL = re.compile(r"\*\*([^*]+)\*\* \|$")


@pytest.mark.parametrize("scale", ["laptop", "quick"])
def test_committed_summaries_use_only_the_closed_vocabulary(scale):
    md = (ROOT / "docs" / "results" / scale / "summary.md").read_text()
    words = [m.group(1) for line in md.splitlines() if (m := VERDICT_CELL.search(line))]
    assert words and set(words) <= set(v.WORDS), set(words) - set(v.WORDS)


@pytest.mark.workflow
def test_the_tiny_workflows_summary_judges_every_claim_in_the_closed_vocabulary(tiny_workflow):
    r = tiny_workflow.path / "results"
    df = pd.read_csv(r / "summary.csv")
    md = (r / "summary.md").read_text()
    assert list(df.columns) == summary.COLUMNS and set(df["study"]) == {"crops", "cifar", "iic", "digits", "coreset"}
    assert set(df["verdict"]) <= set(v.WORDS), set(df["verdict"]) - set(v.WORDS)
    assert set(df["type"]) <= set(v.TYPES)
    for row in df.itertuples():
        assert isinstance(row.rule, str) and row.rule, row
        assert f"**{row.verdict}** |" in md
    # one seed per IIC setting in the tiny config: no difference is called either way
    iic_gain = df[(df["study"] == "iic") & (df["type"] == "effect")]
    assert (iic_gain["verdict"] == v.ONE_RUN).all()
    crops_rows = df[df["study"] == "crops"]
    assert crops_rows["statistic"].str.contains("n = 2").all()


def test_the_claims_table_in_docs_is_the_generated_one():
    text = (ROOT / "docs" / "studies.md").read_text()
    start = text.index("-->\n", text.index("<!-- claims table")) + 4
    assert text[start:text.index("<!-- end of claims table -->")] == summary.claims_table(), \
        "docs/studies.md is stale: paste the output of `python -m anatomy.summary`"
