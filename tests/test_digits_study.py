"""Digits study (anatomy.studies.digits): validator, folds, out-of-fold losses, bootstrap,
augmentation, the ladder, the fold models' own initial weights, every verdict path (null
included), and the study's rules run for real (derived data and Kaggle-format files).

The numpy/pandas tests run without TensorFlow; only the tests marked ``needs_tf`` skip without it."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anatomy import verdicts as v
from anatomy.studies import digits as d
from anatomy.studies import digits_results as dr
from anatomy.studies import kaggle
from conftest import ROOT, Workflow, assert_figure, tiny_config

HAVE_TF = importlib.util.find_spec("tensorflow") is not None
needs_tf = pytest.mark.skipif(not HAVE_TF, reason="TensorFlow is not installed")

AUG = {"probability": 0.5, "scale": [0.95, 1.05], "rotation_deg": 7, "shear_deg": 3, "translation_px": 2}


# ------------------------------------------------------------------ validator
def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _good(n=5) -> str:
    return "ImageId,Label\n" + "".join(f"{i},{i % 10}\n" for i in range(1, n + 1))


def test_a_written_submission_passes_the_validator(tmp_path):
    probs = np.eye(10)[[3, 1, 4, 1, 5]]
    df = kaggle.write_submission(tmp_path / "s.csv", probs)
    assert df["ImageId"].tolist() == [1, 2, 3, 4, 5] and df["Label"].tolist() == [3, 1, 4, 1, 5]
    assert (tmp_path / "s.csv").read_text().splitlines()[:2] == ["ImageId,Label", "1,3"]
    assert kaggle.validate_submission(tmp_path / "s.csv", 5) == 5


@pytest.mark.parametrize("text, where", [
    ("ImageId,label\n1,1\n2,2\n3,3\n4,4\n5,5\n", "line 1 (header)"),
    ("Label,ImageId\n1,1\n2,2\n3,3\n4,4\n5,5\n", "line 1 (header)"),
    ("", "line 1 (header)"),
    ("ImageId,Label\n1,1\n2,2\n3,3\n4,4\n", "4 rows, expected 5"),
    ("ImageId,Label\n1,1\n2,2\n3,3\n4,4\n5,5\n6,6\n", "6 rows, expected 5"),
    ("ImageId,Label\n0,1\n1,2\n2,3\n3,4\n4,5\n", "line 2, column 'ImageId'"),
    ("ImageId,Label\n1,1\n3,2\n2,3\n4,4\n5,5\n", "line 3, column 'ImageId'"),
    ("ImageId,Label\n1,1\n2,2\n2,3\n4,4\n5,5\n", "line 4, column 'ImageId'"),
    ("ImageId,Label\n1,1\n2,10\n3,3\n4,4\n5,5\n", "line 3, column 'Label'"),
    ("ImageId,Label\n1,1\n2,-1\n3,3\n4,4\n5,5\n", "line 3, column 'Label'"),
    ("ImageId,Label\n1,1\n2,3.0\n3,3\n4,4\n5,5\n", "line 3, column 'Label'"),
    ("ImageId,Label\n1,1\n2,\n3,3\n4,4\n5,5\n", "line 3, column 'Label'"),
    ("ImageId,Label\n1,1\n2,x\n3,3\n4,4\n5,5\n", "line 3, column 'Label'"),
    ("ImageId,Label\n1,1\n2,2,2\n3,3\n4,4\n5,5\n", "line 3 has 3 fields"),
    ("ImageId,Label\n1,1\n\n3,3\n4,4\n5,5\n", "line 3 is blank"),
    ("ImageId,Label\n1.0,1\n2,2\n3,3\n4,4\n5,5\n", "line 2, column 'ImageId'"),
])
def test_validator_rejects_each_malformed_case_naming_file_line_and_column(tmp_path, text, where):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(kaggle.SubmissionError) as e:
        kaggle.validate_submission(path, 5)
    assert str(path) in str(e.value) and where in str(e.value), str(e.value)
    assert isinstance(e.value, ValueError)


def test_validator_accepts_a_missing_final_newline_and_counts_test_rows(tmp_path):
    assert kaggle.validate_submission(_write(tmp_path / "s.csv", _good().rstrip("\n")), 5) == 5
    test = _write(tmp_path / "test.csv", "pixel0,pixel1\n0,0\n1,1\n2,2\n")
    assert kaggle.count_rows(test) == 3


# ---------------------------------------------------------------------- folds
def _labels(per_class=30, seed=0):
    y = np.repeat(np.arange(10), per_class)
    return np.random.default_rng(seed).permutation(y)


def test_folds_are_stratified_disjoint_cover_every_image_and_seeded():
    y = _labels()
    f = d.make_folds(y, n_folds=3, seed=1, validation_fraction=0.2)
    assert sorted(f["image"]) == list(range(len(y)))
    assert (f["label"].to_numpy() == y[f["image"]]).all()
    held = [set(f.loc[f["fold"] == k, "image"]) for k in range(3)]
    assert all(not (held[a] & held[b]) for a in range(3) for b in range(a + 1, 3))
    assert set().union(*held) == set(range(len(y)))
    counts = f.groupby(["fold", "label"]).size().unstack()
    assert (counts == 10).all().all()  # 30 per class / 3 folds
    val = f[f["step1"] == "validation"]
    assert len(val) == 60 and (val["label"].value_counts() == 6).all()
    again = d.make_folds(y, n_folds=3, seed=1, validation_fraction=0.2)
    other = d.make_folds(y, n_folds=3, seed=2, validation_fraction=0.2)
    pd.testing.assert_frame_equal(f, again)
    assert not f["fold"].equals(other["fold"])


def test_split_of_trains_on_everything_but_the_held_out_part():
    y = _labels()
    f = d.make_folds(y, n_folds=3, seed=0, validation_fraction=0.2)
    for part in ("step1", "fold0", "fold2"):
        tr, va = d.split_of(f, part)
        assert not set(tr) & set(va) and len(tr) + len(va) == len(y)
    tr, va = d.split_of(f, "fold1")
    assert set(va) == set(f.loc[f["fold"] == 1, "image"])
    with pytest.raises(ValueError, match="unknown part"):
        d.split_of(f, "all")


def test_train_size_keeps_a_stratified_subset():
    y = _labels(per_class=50)
    f = d.make_folds(y, n_folds=2, seed=0, validation_fraction=0.2, train_size=200)
    assert len(f) == 200 and (f["label"].value_counts() == 20).all()
    assert f["image"].is_monotonic_increasing and f["image"].max() < 500


def test_folds_file_round_trips(tmp_path):
    f = d.make_folds(_labels(), n_folds=2, seed=0, validation_fraction=0.2)
    d.write_folds(tmp_path / "folds.csv", f)
    pd.testing.assert_frame_equal(d.read_folds(tmp_path / "folds.csv"), f)


# ------------------------------------------------------------ out of fold
def _fold_preds(n_folds=3, per_class=6):
    """Fake fold models: model k predicts class k for every image, with confidence 0.5 + k/10."""
    y = _labels(per_class)
    f = d.make_folds(y, n_folds=n_folds, seed=0, validation_fraction=0.2)
    preds = []
    for k in range(n_folds):
        probs = np.full((len(f), 10), (0.5 - k / 10) / 9)
        probs[:, k] = 0.5 + k / 10
        preds.append({"images": f["image"].to_numpy(), "labels": f["label"].to_numpy(), "probs": probs,
                      "losses": d.cross_entropy(probs, f["label"].to_numpy()),
                      "seen": f["fold"].to_numpy() != k, "test": probs[:3]})
    return f, preds


def test_out_of_fold_losses_come_only_from_the_model_that_did_not_see_the_image():
    f, preds = _fold_preds()
    oof = dr.out_of_fold(preds)
    fold = f["fold"].to_numpy()
    assert (oof["oof_fold"].to_numpy() == fold).all()
    assert (oof["oof_prediction"].to_numpy() == fold).all()  # model k predicts class k
    for i, k in enumerate(fold):
        assert oof["oof_loss"].iloc[i] == pytest.approx(preds[k]["losses"][i])
        assert not preds[k]["seen"][i]
    np.testing.assert_allclose(oof["in_sample_mean_loss"], np.mean([p["losses"] for p in preds], axis=0))


def test_out_of_fold_refuses_an_image_held_out_by_no_model_or_by_two():
    _, preds = _fold_preds()
    preds[0]["seen"] = np.ones_like(preds[0]["seen"])
    with pytest.raises(ValueError, match="held out by 0 fold models"):
        dr.out_of_fold(preds)
    _, preds = _fold_preds()
    preds[1]["seen"] = np.zeros_like(preds[1]["seen"])
    with pytest.raises(ValueError, match="held out by 2 fold models"):
        dr.out_of_fold(preds)


def test_hardest_ranks_by_out_of_fold_loss_and_counts_the_overlap_with_the_kernels_list():
    oof = pd.DataFrame({"image": np.arange(6), "label": 0, "oof_fold": 0, "oof_prediction": 1,
                        "oof_probability_of_label": 0.1,
                        "oof_loss": [5.0, 1.0, 4.0, 0.5, 3.0, 0.1],
                        "in_sample_mean_loss": [0.1, 9.0, 8.0, 0.2, 0.3, 0.4]})
    h = dr.hardest(oof, top=3)
    assert h["image"].tolist() == [0, 2, 4] and h["rank"].tolist() == [1, 2, 3]
    assert h["in_sample_rank"].tolist() == [6, 2, 4]
    assert h["in_kernel_top"].tolist() == [False, True, False]
    assert (h["overlap_of_top_lists"] == 1).all()


def test_fold_validation_separates_the_clean_and_the_leaked_numbers():
    f, preds = _fold_preds()
    v = dr.fold_validation(preds[0], f, 0)
    step1 = f["step1"].to_numpy() == "validation"
    assert v["step1_split_seen_in_training"] == pytest.approx((f["fold"].to_numpy()[step1] != 0).mean())
    assert v["own_fold_val_accuracy"] == pytest.approx((f.loc[f["fold"] == 0, "label"] == 0).mean())
    preds[0]["seen"] = np.ones_like(preds[0]["seen"])
    with pytest.raises(ValueError, match="own held-out fold"):
        dr.fold_validation(preds[0], f, 0)


# ------------------------------------------------------ ensemble, leaderboard
def test_ensemble_averages_probabilities_and_leaderboard_scores_or_says_unknown():
    a, b = np.array([[0.6, 0.4], [0.2, 0.8]]), np.array([[0.2, 0.8], [0.4, 0.6]])
    np.testing.assert_allclose(d.ensemble([a, b]), [[0.4, 0.6], [0.3, 0.7]])
    entries = [{"entry": "x", "kind": "submission", "members": 2, "labels": np.array([1, 1, 0])}]
    board = kaggle.leaderboard(entries, np.array([1, 0, 0]))
    assert board["test_accuracy"].iloc[0] == pytest.approx(2 / 3) and board["test_errors"].iloc[0] == 1
    unknown = kaggle.leaderboard(entries, None)
    assert np.isnan(unknown["test_accuracy"].iloc[0]) and "unknown" in unknown["note"].iloc[0]


def test_ladder_reports_each_rungs_gain_and_spread():
    seeds = [0, 1]
    acc = {(r, s): 0.9 + 0.01 * i + 0.002 * s for i, r in enumerate(dr.LADDER_ROWS) for s in seeds}
    t = dr.ladder(acc, acc, seeds)
    assert t["row"].tolist() == dr.LADDER_ROWS
    assert t["gain_over_previous"].iloc[1:].round(6).tolist() == [0.01] * 4
    assert t["gain_over_step1"].iloc[-1] == pytest.approx(0.04)
    assert t["test_accuracy_sd"].iloc[0] == pytest.approx(np.std([0.9, 0.902], ddof=1))


# ------------------------------------------------------------------ bootstrap
def test_public_subsets_are_seeded_quarter_size_and_without_replacement():
    s = kaggle.public_subsets(1000, subsets=20, fraction=0.25, seed=3)
    assert s.shape == (20, 250)
    assert all(len(set(row)) == 250 for row in s) and s.max() < 1000 and s.min() >= 0
    np.testing.assert_array_equal(s, kaggle.public_subsets(1000, subsets=20, fraction=0.25, seed=3))
    assert not np.array_equal(s, kaggle.public_subsets(1000, subsets=20, fraction=0.25, seed=4))
    assert len({tuple(sorted(r)) for r in s}) == 20  # different subsets
    with pytest.raises(ValueError, match="empty subset"):
        kaggle.public_subsets(3, subsets=2, fraction=0.1, seed=0)


def test_bootstrap_spread_and_difference_on_the_same_subsets():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 2000)
    good = np.where(rng.random(2000) < 0.97, y, (y + 1) % 10)
    bad = np.where(rng.random(2000) < 0.90, y, (y + 1) % 10)
    summary, scores = kaggle.bootstrap_public({"simple": bad, "ensemble": good}, y, subsets=200, fraction=0.25, seed=0)
    s = summary.set_index("submission")
    assert s.loc["ensemble", "full_test_accuracy"] == pytest.approx((good == y).mean())
    assert s.loc["ensemble", "subset_size"] == 500 and s.loc["ensemble", "subsets"] == 200
    assert 0.003 < s.loc["ensemble", "public_sd"] < 0.015  # ~ sqrt(0.97 * 0.03 / 500) with fpc
    assert s.loc["ensemble - simple", "public_mean"] > 0
    assert len(scores) == 400
    again, _ = kaggle.bootstrap_public({"simple": bad, "ensemble": good}, y, subsets=200, fraction=0.25, seed=0)
    pd.testing.assert_frame_equal(summary, again)
    unknown, none = kaggle.bootstrap_public({"simple": bad}, None, subsets=10, fraction=0.25, seed=0)
    assert "unknown" in unknown["note"].iloc[0] and len(none) == 0


# ------------------------------------------------------- initial weights
def test_fold_init_seed_is_stable_distinct_and_apart_from_the_shared_seeds():
    assert d.fold_init_seed(0, 0) == 754410357 and d.fold_init_seed(1, 2) == 1619414641  # stable everywhere
    grid = {(s, k): d.fold_init_seed(s, k) for s in range(20) for k in range(10)}
    assert len(set(grid.values())) == len(grid)  # no two folds (of any seed) share a seed
    assert not set(grid.values()) & set(range(10_000))  # nor the single models' shared seeds
    assert all(0 <= x < 2**31 for x in grid.values())
    with pytest.raises(ValueError, match="fold >= 0"):
        d.fold_init_seed(0, -1)


def test_weights_fingerprint_is_equal_only_for_equal_weights():
    rng = np.random.default_rng(0)
    w = [rng.normal(size=(3, 3)).astype(np.float32), np.zeros(3, np.float32)]
    same = [a.copy() for a in w]
    assert d.weights_fingerprint(w) == d.weights_fingerprint(same)
    same[0][1, 1] += 1e-6
    assert d.weights_fingerprint(w) != d.weights_fingerprint(same)
    assert d.weights_fingerprint(w) != d.weights_fingerprint([w[0].reshape(9), w[1]])  # shapes count


def _dry_run_jobs(text: str) -> list[dict]:
    """(rule, input, wildcards) of every job a dry run lists."""
    jobs, cur = [], None
    for line in text.splitlines():
        if m := re.match(r"(?:local)?rule (\w+):$", line.strip()):
            cur = {"rule": m.group(1), "input": [], "wildcards": {}}
            jobs.append(cur)
        elif cur is not None and (m := re.match(r"\s+input: (.*)$", line)):
            cur["input"] = [x.strip() for x in m.group(1).split(",")]
        elif cur is not None and (m := re.match(r"\s+wildcards: (.*)$", line)):
            cur["wildcards"] = dict(kv.strip().split("=", 1) for kv in m.group(1).split(","))
    return jobs


def test_every_fold_job_starts_from_its_own_initial_weights_and_the_single_models_share_one(tmp_path):
    """The DAG: k fold jobs per seed read k different init files; step 1 and the ladder's rungs
    of a seed read that seed's one shared file."""
    config = tiny_config({"digits": {"step2": {"folds": 3}, "ladder": {"seeds": [0, 1]}}})
    p = Workflow(tmp_path, config).run("-n", "results/digits/ladder.csv")
    jobs = _dry_run_jobs(p.stdout + p.stderr)

    def inits(kind):
        """(seed, fold k or run) -> the initial-weights files that digits_train's jobs of that kind read."""
        out = {}
        for j in jobs:
            run = j["wildcards"].get("run", "") if j["rule"] == "digits_train" else ""
            if run and run.startswith("cv/fold") == (kind == "fold"):
                key = run[len("cv/fold"):] if kind == "fold" else run
                out[(j["wildcards"]["seed"], key)] = [x for x in j["input"] if x.endswith(".weights.h5")]
        return out

    folds = inits("fold")
    assert sorted(folds) == [(s, str(k)) for s in ("0", "1") for k in range(3)]
    files = [f for fs in folds.values() for f in fs]
    assert all(len(fs) == 1 for fs in folds.values()) and len(set(files)) == 6  # no two fold models start equal
    assert folds[("1", "2")] == ["results/digits/init/seed1/fold2.weights.h5"]
    singles = inits("single")
    assert len(singles) == 8  # step 1 + 3 rungs, 2 seeds
    for (seed, _), fs in singles.items():
        assert fs == [f"results/digits/init/seed{seed}.weights.h5"]  # like-for-like rungs
    assert not set(files) & {f for fs in singles.values() for f in fs}
    assert sum(j["rule"] == "digits_fold_initial_weights" for j in jobs) == 2  # one job per seed


@needs_tf
def test_fold_initial_weights_differ_from_each_other_and_from_the_shared_start(tmp_path):
    from anatomy.training.init_weights import write_initial_weights

    seeds = [d.fold_init_seed(0, k) for k in range(3)]
    paths = [tmp_path / f"fold{k}.weights.h5" for k in range(3)]
    prints = d.write_fold_initial_weights(paths, seeds)
    write_initial_weights("cnn_medium", tmp_path / "shared.weights.h5", seed=0)
    shared = d.file_fingerprint(tmp_path / "shared.weights.h5")
    assert len(set(prints + [shared])) == 4, prints
    assert [d.file_fingerprint(p) for p in paths] == prints
    again = d.write_fold_initial_weights([tmp_path / "again.weights.h5"], [seeds[1]])
    assert again == [prints[1]]  # a pure function of (seed, fold)


def _assert_fold_inits(results: Path, *, seeds, folds: int,
                       singles=("step1", "ladder/epochs", "ladder/lr_steps", "ladder/augment")):
    """Every fold model recorded a different start; a seed's single models recorded one shared start."""
    dg = results / "digits"
    starts = {}
    for s in seeds:
        for k in range(folds):
            init = json.loads((dg / "cv" / f"fold{k}" / f"seed{s}" / "metrics.json").read_text())["init"]
            assert init["seed"] == d.fold_init_seed(s, k) and init["shared"] is False
            assert init["file"].endswith(f"init/seed{s}/fold{k}.weights.h5")
            starts[(s, k)] = init["fingerprint"]
        inits = [json.loads((dg / run / f"seed{s}" / "metrics.json").read_text())["init"] for run in singles]
        assert {i["fingerprint"] for i in inits} and len({i["fingerprint"] for i in inits}) == 1
        assert all(i["seed"] == s and i["shared"] for i in inits)
        assert inits[0]["fingerprint"] not in {starts[(s, k)] for k in range(folds)}
    assert len(set(starts.values())) == len(starts), starts  # no two fold models start equal


# --------------------------------------------------------------- claims
def _judged(ladder=None, lb=None, bootstrap=None, scale="laptop"):
    from anatomy.summary import judged_table

    lb = lb if lb is not None else pd.DataFrame({"entry": ["submission_simple", "submission_ensemble"],
                                                 "test_accuracy": [0.9873, 0.99575]})
    return judged_table(dr.claims_evidence(lb, bootstrap, ladder), data="d", scale=scale).set_index("type")


def test_the_published_gain_is_the_difference_of_the_published_scores():
    assert dr.PUBLISHED_GAIN == pytest.approx(dr.PUBLISHED["ensemble"] - dr.PUBLISHED["simple"], abs=1e-9)


def test_one_run_per_rung_is_judged_with_the_named_seed_spread():
    t = judged = _judged()
    rows = judged.reset_index().set_index("claim")
    simple = rows.iloc[0]
    assert simple["verdict"] == v.OURS_HIGHER and simple["n"] == 1 and "external sd 0.002" in simple["rule"]
    assert rows.iloc[1]["verdict"] == v.CONSISTENT  # 0.99575 against 0.997
    assert t.loc["effect", "verdict"] == v.SMALLER  # +0.0085 against +0.033


def test_the_bootstrap_is_named_as_resamples_not_trained_models():
    summary = _simulated(0.97, 0.99, subsets=50)
    rows = _judged(bootstrap=summary).reset_index()
    assert (rows["n"] == 1).all()
    assert rows["statistic"].str.contains("50 resamples").all()
    assert rows["statistic"].str.contains("not trained models").all()


def _simulated(acc_simple, acc_ensemble, *, nested=False, n=4800, seed=0, subsets=400):
    """Two submissions at the given accuracies, through the study's bootstrap: independent errors,
    or ``nested`` (the better one's errors a subset of the other's, as for an ensemble of the same net)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    hardness = rng.random(n)
    wrong = lambda acc: np.where((hardness if nested else rng.random(n)) < acc, y,  # noqa: E731
                                 (y + 1 + rng.integers(0, 9, n)) % 10)
    preds = {"simple": wrong(acc_simple), "ensemble": wrong(acc_ensemble)}
    summary, _ = kaggle.bootstrap_public(preds, y, subsets=subsets, fraction=0.25, seed=seed)
    return summary


def test_the_ladders_seeds_are_the_models_and_the_gain_is_paired_by_seed():
    seeds = [0, 1, 2]
    acc = {(r, s): 0.98 + 0.002 * s for r in dr.LADDER_ROWS for s in seeds}
    acc.update({("ensemble", s): 0.99 + 0.002 * s + 0.001 * (s == 1) for s in seeds})
    judged = _judged(ladder=dr.ladder(acc, acc, seeds)).reset_index()
    gain = judged[judged["type"] == "effect"].iloc[0]
    assert gain["n"] == 3 and gain["spread"] == pytest.approx(np.std([0.01, 0.011, 0.01], ddof=1), abs=1e-4)
    assert gain["verdict"] == v.SMALLER and "external sd" not in gain["rule"]  # the seed offsets cancel
    assert (judged["n"] == 3).all()


def test_unknown_test_labels_are_not_measured():
    lb = pd.DataFrame({"entry": ["submission_simple", "submission_ensemble"], "test_accuracy": [np.nan, np.nan]})
    judged = _judged(lb=lb).reset_index()
    assert (judged["verdict"] == v.NOT_MEASURED).all() and (judged["ours"] == "test labels unknown").all()


# ---------------------------------------------------- schedule and augmentation
def test_learning_rate_drops_by_the_factor_after_each_configured_epoch():
    lrs = [d.lr_at(e, base=1e-3, drops=[10, 20], factor=0.1) for e in range(30)]
    assert lrs[:10] == [1e-3] * 10
    assert lrs[10:20] == pytest.approx([1e-4] * 10) and lrs[20:] == pytest.approx([1e-5] * 10)


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def aug_mod(tf):
    from anatomy.training import augment

    return augment


def _seed(a=0, b=1):
    import tensorflow as tf

    return tf.constant([a, b], tf.int64)


def test_augmentation_parameters_stay_within_their_ranges_and_p_is_respected(tf, aug_mod):
    p = {k: v.numpy() for k, v in aug_mod.affine_parameters(_seed(), 4000, AUG).items()}
    on = p["apply"] == 1
    assert 0.45 < on.mean() < 0.55
    assert p["scale_x"][on].min() >= 0.95 and p["scale_x"][on].max() <= 1.05
    assert p["scale_y"][on].min() >= 0.95 and p["scale_y"][on].max() <= 1.05
    assert np.abs(np.degrees(p["rotation"])).max() <= 7 + 1e-4 and np.abs(np.degrees(p["rotation"][on])).max() > 6
    assert np.abs(np.degrees(p["shear"])).max() <= 3 + 1e-4
    assert np.abs(p["tx"]).max() <= 2 + 1e-5 and np.abs(p["ty"]).max() <= 2 + 1e-5
    for k, identity in (("scale_x", 1), ("scale_y", 1), ("rotation", 0), ("shear", 0), ("tx", 0), ("ty", 0)):
        assert (p[k][~on] == identity).all(), k
    fwd, inv = aug_mod.affine_matrices(aug_mod.affine_parameters(_seed(), 100, AUG))
    assert fwd.shape == (100, 2, 3) and inv.shape == (100, 8)


def test_a_half_turn_of_a_non_square_image_is_about_its_own_centre(tf, aug_mod):
    """Rotating by 180 degrees about the centre of an H x W image flips both axes, whatever H and W."""
    x = np.random.default_rng(0).random((1, 6, 10, 3)).astype(np.float32)  # 6 rows, 10 columns, colour
    half_turn = {"probability": 1.0, "scale": (1.0, 1.0), "rotation_deg": 180.0, "shear_deg": 0.0,
                 "translation_px": 0.0}
    params = aug_mod.affine_parameters(_seed(), 1, half_turn)
    params["rotation"] = tf.constant([math.pi], tf.float32)  # exactly a half turn (the draw is within +-180)
    _, inv = aug_mod.affine_matrices(params, height=6, width=10)
    out = tf.raw_ops.ImageProjectiveTransformV3(images=tf.constant(x), transforms=inv, output_shape=[6, 10],
                                                fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    np.testing.assert_allclose(out.numpy(), x[:, ::-1, ::-1, :], atol=1e-4)


def test_a_bright_pixel_moves_at_most_a_few_pixels_and_matches_the_forward_matrix(tf, aug_mod):
    x = np.zeros((256, 28, 28, 1), np.float32)
    x[:, 12, 16, 0] = 1.0  # row 12, column 16, near the centre
    aug = {**AUG, "probability": 1.0}
    out = aug_mod.augment_batch(tf.constant(x), _seed(5, 7), aug).numpy()[..., 0]
    fwd, _ = aug_mod.affine_matrices(aug_mod.affine_parameters(_seed(5, 7), 256, aug))
    fwd = fwd.numpy()
    for i in range(256):
        ys, xs = np.nonzero(out[i] > 1e-6)
        w = out[i][ys, xs]
        cy, cx = (ys * w).sum() / w.sum(), (xs * w).sum() / w.sum()  # centre of mass after bilinear spread
        ex, ey = fwd[i] @ np.array([16.0, 12.0, 1.0])
        assert abs(cx - ex) < 0.6 and abs(cy - ey) < 0.6, (i, cx, cy, ex, ey)
        assert np.hypot(cx - 16, cy - 12) <= 2 * np.sqrt(2) + 0.6  # translation + a small linear part
        assert 0.85 < out[i].sum() < 1.15  # the ink is kept (area changes by at most 1.05^2)


def test_probability_zero_is_the_identity_and_the_transform_is_seeded(tf, aug_mod):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((16, 28, 28, 1)).astype(np.float32))
    np.testing.assert_array_equal(aug_mod.augment_batch(x, _seed(), {**AUG, "probability": 0.0}).numpy(), x.numpy())
    a = aug_mod.augment_batch(x, _seed(1, 2), AUG).numpy()
    np.testing.assert_array_equal(a, aug_mod.augment_batch(x, _seed(1, 2), AUG).numpy())
    assert not np.array_equal(a, aug_mod.augment_batch(x, _seed(1, 3), AUG).numpy())
    changed = [not np.array_equal(a[i], x.numpy()[i]) for i in range(16)]
    assert 0 < sum(changed) < 16


@needs_tf
def test_cnn_medium_has_the_kernels_layers():
    from anatomy.models.cnn_medium import cnn_medium

    m = cnn_medium()
    convs = [l for l in m.layers if l.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [16, 32, 32, 32, 64, 32]
    assert [c.strides for c in convs] == [(1, 1)] * 3 + [(2, 2)] + [(1, 1)] * 2
    assert all(c.padding == "valid" and c.kernel_size == (3, 3) for c in convs)
    assert [l.units for l in m.layers if l.__class__.__name__ == "Dense"] == [30, 10]
    assert len([l for l in m.layers if l.__class__.__name__ == "LeakyReLU"]) == 7
    assert convs[-1].output.shape[1:] == (6, 6, 32) and m.output_shape == (None, 10)


# ------------------------------------------------------------------ workflow
DIGITS_TABLES = ("leaderboard", "ladder", "bootstrap", "hardest")
DIGITS_FIGURES = ("fold_curves", "ensemble_vs_single", "hardest", "bootstrap", "ladder")


@pytest.mark.workflow
@needs_tf
def test_tiny_workflow_writes_every_digits_output(tiny_workflow):
    r = tiny_workflow.path / "results"
    dg = r / "digits"
    n_test = len(pd.read_csv(r / "data" / "digits" / "test_labels.csv"))
    for name in ("simple", "ensemble", "tta"):
        sub = pd.read_csv(dg / "submissions" / f"submission_{name}.csv")
        assert list(sub.columns) == ["ImageId", "Label"] and len(sub) == n_test
        assert (dg / "submissions" / f"submission_{name}.validated").read_text().startswith("ok")
    board = pd.read_csv(dg / "leaderboard.csv")
    assert board["entry"].tolist() == ["submission_simple", "submission_ensemble", "submission_tta", "step1 model",
                                       "fold 0 model", "fold 1 model"]
    assert board["test_accuracy"].between(0.2, 1).all()  # learned something from ~380 images
    folds = board[board["entry"].str.startswith("fold")]
    assert folds["step1_split_seen_in_training"].between(0.2, 0.8).all()  # the kernel's leak, measured
    ladder = pd.read_csv(dg / "ladder.csv")
    assert ladder["row"].tolist() == dr.LADDER_ROWS and ladder["test_accuracy_mean"].between(0, 1).all()
    boot = pd.read_csv(dg / "bootstrap.csv")
    assert boot["subset_size"].iloc[0] == round(n_test / 4) and (boot["public_sd"] > 0).all()
    hard = pd.read_csv(dg / "hardest.csv")
    assert len(hard) == 20 and hard["oof_loss"].is_monotonic_decreasing
    assert hard["overlap_of_top_lists"].nunique() == 1 and hard["in_sample_mean_loss"].notna().all()
    for f in DIGITS_FIGURES:
        assert_figure(dg / "figures" / f"{f}.png")
    run = dg / "cv" / "fold0" / "seed0"
    hist = pd.read_csv(run / "history.csv")
    assert hist["epoch"].tolist() == [1, 2] and hist["lr"].round(6).tolist() == [0.002, 0.0002]
    m = json.loads((run / "metrics.json").read_text())
    assert m["part"] == "fold0" and m["params"]["augmentation"]["probability"] == 0.5
    assert m["params"]["batch_size"] == 32 and m["params"]["tta"] == 1
    with np.load(run / "predictions.npz") as p:
        assert p["test"].shape == (n_test, 10) and "test_tta" in p.files and p["seen"].dtype == bool
    assert "epoch 2/2" in (r / "logs" / "digits" / "cv" / "fold0" / "seed0.log").read_text()
    _assert_fold_inits(r, seeds=[0], folds=2)
    assert (r / "benchmarks" / "digits" / "cv" / "fold0" / "seed0.tsv").exists()
    assert not (r / ".resume" / "digits").exists() or not any((r / ".resume" / "digits").rglob("state.json"))


def _competition_files(folder: Path, n_train=100, n_test=30) -> Path:
    """Small files in the competition's exact format, cut from the embedded MNIST sample."""
    from anatomy.data.digits import write_digits_csv

    src = np.load(ROOT / "resources" / "mnist_sample.npz")
    y = src["y_train"]
    idx = np.concatenate([np.flatnonzero(y == c)[: n_train // 10] for c in range(10)])
    folder.mkdir(parents=True, exist_ok=True)
    write_digits_csv(folder / "train.csv", src["x_train"][idx], y[idx])
    write_digits_csv(folder / "test.csv", src["x_test"][:n_test])
    return folder


@pytest.mark.workflow
@needs_tf
def test_the_study_runs_unchanged_on_files_in_the_competitions_format(tmp_path):
    kaggle = _competition_files(tmp_path / "kaggle")
    header = (kaggle / "train.csv").read_text().splitlines()[0]
    assert header.startswith("label,pixel0,pixel1,") and header.endswith(",pixel783")
    config = tiny_config({"data": {"digits": {"source": "kaggle", "path": str(kaggle)}},
                          "digits": {"tta": {"enabled": False, "copies": 1}, "hardest": {"top": 10, "show": 4}}})
    wf = Workflow(tmp_path / "wf", config)
    # the ladder's three trainings are left out here (the tiny workflow runs them): they read nothing the
    # competition's format changes
    targets = [f"results/digits/{t}.csv" for t in DIGITS_TABLES if t != "ladder"] + \
              [f"results/digits/figures/{f}.png" for f in DIGITS_FIGURES if f != "ladder"] + \
              [f"results/digits/submissions/submission_{n}.validated" for n in ("simple", "ensemble")]
    wf.run(*targets)
    dg = wf.path / "results" / "digits"
    for name in ("simple", "ensemble"):
        sub = pd.read_csv(dg / "submissions" / f"submission_{name}.csv")
        assert len(sub) == 30 and sub["ImageId"].tolist() == list(range(1, 31)) and sub["Label"].between(0, 9).all()
        assert (dg / "submissions" / f"submission_{name}.validated").exists()
    assert not (dg / "submissions" / "submission_tta.csv").exists()
    board = pd.read_csv(dg / "leaderboard.csv")
    assert board["test_accuracy"].isna().all() and board["note"].str.startswith("unknown").all()
    assert board["own_fold_val_accuracy"].dropna().between(0, 1).all()
    assert pd.read_csv(dg / "bootstrap.csv")["note"].str.startswith("unknown").all()
    assert len(pd.read_csv(dg / "hardest.csv")) == 10
    _assert_fold_inits(wf.path / "results", seeds=[0], folds=2, singles=("step1",))
    assert not (wf.path / "results" / "crops").exists()  # only the study's own rules ran
