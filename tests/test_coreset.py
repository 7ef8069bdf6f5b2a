"""Coreset study: the generator, the metric, the selection loop, and a tiny workflow run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anatomy.data import ellipses
from anatomy.studies import coreset

SECTION = {"train_size": 50, "test_size": 10, "image_size": 48, "radius": [10, 20], "rectangle": [10, 40]}


# ---- the generator

@pytest.mark.parametrize("image_size", [32, 48, 128])
def test_images_keep_the_two_noise_ranges_and_the_ship_is_the_other_one(image_size):
    x, y, p = ellipses.make_ellipses(40, {**SECTION, "image_size": image_size}, np.random.default_rng(3))
    assert x.dtype == np.uint8 and x.shape == (40, image_size, image_size, 3)
    assert y.dtype == np.uint8 and y.shape == (40, image_size, image_size, 1) and set(np.unique(y)) <= {0, 1}
    v = x / 255.0
    for i in range(40):
        ship = ellipses.ellipse_masks(image_size, *(p[k][i:i + 1] for k in ("cy", "cx", "r_radius", "c_radius",
                                                                           "rotation")))[0]
        rect = ellipses.rectangle_masks(image_size, p["rect"][i:i + 1])[0]
        sea, boat = v[i][~(ship | rect)], v[i][ship | rect]
        low, high = (sea, boat) if p["sea_low"][i] else (boat, sea)
        assert low.min() >= 0 and low.max() < 0.75
        assert high.min() >= 0.25 and high.max() < 1
    assert 0.2 < p["sea_low"].mean() < 0.8  # both kinds of sea occur


def test_radii_centres_and_sides_follow_the_scaled_ranges():
    x, y, p = ellipses.make_ellipses(300, SECTION, np.random.default_rng(0))
    s = 48 / 128
    for k in ("r_radius", "c_radius"):
        assert p[k].min() >= 10 * s and p[k].max() <= 20 * s
    assert p["cy"].min() >= 20 * s and p["cy"].max() <= 48 - 1 - 20 * s
    sides = p["rect"][:, 2:]
    assert sides.min() >= round(10 * s) and sides.max() <= round(40 * s)
    assert (p["rect"][:, 0] + p["rect"][:, 2] <= 48).all() and (p["rect"][:, 1] + p["rect"][:, 3] <= 48).all()


@pytest.mark.parametrize("seed", range(20))
def test_no_rectangle_pixel_on_or_touching_the_ellipse(seed):
    image_size = [32, 48, 64, 128][seed % 4]
    x, y, p = ellipses.make_ellipses(100, {**SECTION, "image_size": image_size}, np.random.default_rng(seed))
    rect = ellipses.rectangle_masks(image_size, p["rect"])
    near = ellipses.dilate(y[..., 0].astype(bool))  # the ship and its 8 neighbours
    assert not (rect & near).any()
    assert (rect.sum((1, 2)) == p["rect"][:, 2] * p["rect"][:, 3]).all()  # one whole rectangle per image


def test_masks_contain_exactly_the_ellipse_drawn_by_skimage():
    from skimage.draw import ellipse

    x, y, p = ellipses.make_ellipses(200, SECTION, np.random.default_rng(1))
    for i in range(200):
        m = np.zeros((48, 48), np.uint8)
        rr, cc = ellipse(p["cy"][i], p["cx"][i], p["r_radius"][i], p["c_radius"][i], shape=(48, 48),
                         rotation=p["rotation"][i])
        m[rr, cc] = 1
        np.testing.assert_array_equal(y[i, ..., 0], m)


def test_generator_is_seeded_and_train_and_test_differ(tmp_path):
    a = ellipses.make_ellipses(5, SECTION, np.random.default_rng(7))
    b = ellipses.make_ellipses(5, SECTION, np.random.default_rng(7))
    np.testing.assert_array_equal(a[0], b[0])
    from anatomy.io import read_dataset_h5

    ellipses.build_ellipses(tmp_path / "train.h5", tmp_path / "test.h5", SECTION, seed=0)
    xtr, ytr = read_dataset_h5(tmp_path / "train.h5", "train")
    xte, yte = read_dataset_h5(tmp_path / "test.h5", "test")
    assert xtr.shape == (50, 48, 48, 3) and yte.shape == (10, 48, 48, 1)
    assert not np.array_equal(xtr[:10], xte)


def test_radius_too_large_for_the_image_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        ellipses.scaled_ranges({**SECTION, "image_size": 16, "radius": [10, 64]})


# ---- the metric

def _mask(rows, cols, side=10):
    m = np.zeros((side, side, 1), np.float32)
    m[rows, cols] = 1
    return m


def test_metric_edge_cases():
    empty = np.zeros((1, 10, 10, 1), np.float32)
    full = _mask(slice(2, 6), slice(2, 6))[None]
    assert coreset.pair_scores(empty, empty).tolist() == [1.0]          # empty mask, empty prediction
    assert coreset.pair_scores(empty, full).tolist() == [0.0]           # empty mask, something predicted
    assert coreset.pair_scores(full, empty).tolist() == [0.0]           # a ship, nothing predicted
    assert coreset.pair_scores(full, full * 0.9).tolist() == [1.0]      # perfect (threshold 0.5) -> 1, not 1.1
    half = _mask(slice(2, 6), slice(2, 4))[None]                        # half the ship: IoU 0.5
    assert coreset.iou_per_image(full, half).tolist() == [0.5]
    assert coreset.pair_scores(full, half).tolist() == [0.0]            # IoU > 0.5 is needed for the first step
    three_q = _mask(slice(2, 6), slice(2, 5))[None]                     # IoU 0.75 -> thresholds 0.5..0.7 pass
    assert coreset.pair_scores(full, three_q)[0] == pytest.approx(0.5)
    assert coreset.pair_scores(full, full * 0.4).tolist() == [0.0]      # below the threshold: empty prediction


def test_metric_matches_the_posts_formula_where_that_is_below_one():
    iou = np.linspace(0.0, 0.949, 500)
    iou = iou[np.abs((iou - 0.45) * 20 - np.round((iou - 0.45) * 20)) > 1e-6]  # off the steps' edges
    post = np.floor(np.maximum(0, (iou - 0.45) * 20)) / 10
    np.testing.assert_allclose(coreset.threshold_score(iou), post)


def test_soft_score_uses_the_raw_sigmoid():
    full = _mask(slice(2, 6), slice(2, 6))[None]
    assert coreset.soft_iou_per_image(full, full * 0.9)[0] == pytest.approx(0.9)
    assert coreset.soft_scores_as_published(full, full * 0.9)[0] == pytest.approx(0.8)  # 0.9 > t for t < 0.9
    assert coreset.pair_scores(full, full * 0.9)[0] == 1.0


# ---- the selection loop, with a fake predictor

def _fake_selection(order, hard, initial=3, scan_batch=4):
    """Pairs in ``hard`` fail until trained on; training makes every selected pair pass."""
    trained = set()
    calls = []

    def score_pairs(idx):
        calls.append(list(map(int, idx)))
        return np.array([0.0 if (i in hard and i not in trained) else 1.0 for i in idx])

    def train_on(sel):
        trained.update(sel)
        return 1.0, 1

    state = coreset.Selection(order=list(order))
    coreset.select_coreset(state, score_pairs=score_pairs, train_on=train_on, initial=initial,
                           pass_score=0.8075, scan_batch=scan_batch)
    return state, calls


@pytest.mark.parametrize("shuffle_seed", [None, 0, 5])
def test_selection_adds_exactly_the_failing_pair_in_both_orders(shuffle_seed):
    order = coreset.scan_order(30, shuffle_seed)
    hard = {4, 11, 12, 25, 29}
    state, calls = _fake_selection(order, hard)
    first = [int(i) for i in order[:3]]
    expected = first + [int(i) for i in order[3:] if i in hard]  # dataset indices, in scan order
    assert state.selected == expected
    assert state.position == 30
    assert [r["selected"] for r in state.rows] == list(range(3, len(expected) + 1))
    assert [r["added_index"] for r in state.rows[1:]] == expected[3:]
    scanned = [i for c in calls for i in c]
    assert set(scanned) == set(int(i) for i in order[3:])  # every pair after the first fit is scored


def test_selection_resumes_from_its_state():
    order = coreset.scan_order(30, 2)
    hard = {4, 11, 12, 25, 29}
    full, _ = _fake_selection(order, hard)
    # an interrupted run: state after the second addition, then continue
    partial = coreset.Selection(order=list(order))
    partial.set_state({"order": list(map(int, order)), "selected": full.selected[:5],
                       "position": full.rows[2]["scanned"]})
    trained = set(partial.selected)
    coreset.select_coreset(
        partial, score_pairs=lambda idx: np.array([0.0 if (i in hard and i not in trained) else 1.0 for i in idx]),
        train_on=lambda sel: (trained.update(sel), (1.0, 1))[1], initial=3, pass_score=0.8075, scan_batch=4)
    assert partial.selected == full.selected
    with pytest.raises(ValueError, match="another scan order"):
        coreset.Selection(order=list(range(30))).set_state(partial.get_state())


def test_control_indices():
    assert coreset.control_indices("full", 5).tolist() == [0, 1, 2, 3, 4]
    a = coreset.control_indices("random", 100, size=10, seed=1)
    assert len(set(a)) == 10 and (np.diff(a) > 0).all()
    assert a.tolist() == coreset.control_indices("random", 100, size=10, seed=1).tolist()
    assert a.tolist() != coreset.control_indices("random", 100, size=10, seed=2).tolist()
    with pytest.raises(ValueError, match="size=200"):
        coreset.control_indices("random", 100, size=200, seed=1)


def _runs(inord=0.9, rand=(0.6, 0.62), recheck=0.97):
    m = lambda run, n, s, r: {"run": run, "pairs_used": n, "train_pairs": 1000, "epochs_run": 3, "gradient_steps": 9,
                              "test": {"score": s, "score_soft_as_published": s + 0.02, "mean_iou": 0.8,
                                       "recheck_pass_fraction": r}}  # noqa: E731
    return coreset.runs_table({"in_order": m("in_order", 50, inord, recheck), "shuffled": m("shuffled", 60, 0.88, 1.0),
                               "full": m("full", 1000, 0.95, 1.0), "random_seed1": m("random_seed1", 50, rand[0], .5),
                               "random_seed2": m("random_seed2", 50, rand[1], .5)})


def test_table_and_verdict():
    runs = _runs()
    assert list(runs["run"]) == ["in_order", "shuffled", "full", "random_seed1", "random_seed2"]
    assert {"pairs_used", "test_score_thresholded", "test_score_soft_as_published", "test_mean_iou",
            "recheck_pass_fraction"} <= set(runs.columns)
    v = coreset.verdict(runs, pass_score=0.8075).set_index("claim")
    assert v.loc["selection beats a random subset of the same size", "verdict"] == "selection beats mere size"
    assert v.loc["every training pair now scores >= 0.8075", "verdict"].startswith("does not hold")
    v2 = coreset.verdict(_runs(inord=0.61, recheck=1.0), pass_score=0.8075).set_index("claim")
    assert v2.loc["selection beats a random subset of the same size", "verdict"].startswith("random subsets")
    h = coreset.recheck_histogram({"a": np.array([0.0, 0.1, 1.0, 1.0])})
    assert h["pairs"].sum() == 4 and len(h) == 10


# ---- TensorFlow parts
def test_keras_metric_agrees_with_numpy():
    pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    y = (rng.random((6, 16, 16, 1)) > 0.7).astype(np.float32)
    y[0] = 0
    p = np.clip(y * 0.8 + rng.random(y.shape) * 0.4, 0, 1).astype(np.float32)
    p[0] = 0.1
    assert float(coreset.score_keras(y, p)) == pytest.approx(coreset.pair_scores(y, p).mean(), abs=1e-6)


def test_unet_shape_and_loss():
    pytest.importorskip("tensorflow")
    from anatomy.models.unet import bce_dice_loss, residual_unet

    m = residual_unet(32, start_neurons=2, depth=3, dropout=0.5)
    assert m.output_shape == (None, 32, 32, 1)
    y = np.zeros((2, 32, 32, 1), np.float32)
    y[:, 8:16, 8:16] = 1
    assert float(bce_dice_loss(y, np.clip(y, 1e-4, 1 - 1e-4))) < 0.01
    with pytest.raises(ValueError, match="divisible"):
        residual_unet(36, depth=3)


# ---- the tiny workflow
@pytest.mark.workflow
def test_tiny_workflow_writes_every_coreset_output(tiny_workflow):
    r = tiny_workflow.path / "results" / "coreset"
    cfg = tiny_workflow.config
    n_train = cfg["data"]["ellipses"]["train_size"]
    runs = pd.read_csv(r / "runs.csv")
    seeds = cfg["coreset"]["controls"]["random_seeds"]
    assert set(runs["run"]) == {"in_order", "shuffled", "full", *(f"random_seed{s}" for s in seeds)}
    for col in ("test_score_thresholded", "test_score_soft_as_published", "test_mean_iou", "recheck_pass_fraction"):
        assert runs[col].between(0, 1).all(), col
    by = runs.set_index("run")
    assert by.loc["full", "pairs_used"] == n_train
    for s in seeds:
        assert by.loc[f"random_seed{s}", "pairs_used"] == by.loc["in_order", "pairs_used"]
    verdict = pd.read_csv(r / "verdict.csv")
    assert len(verdict) == 5 and verdict["verdict"].notna().all()
    hist = pd.read_csv(r / "recheck_histogram.csv")
    assert (hist.groupby("run")["pairs"].sum() == n_train).all()
    for order in ("in_order", "shuffled"):
        run = r / "select" / order
        selected = pd.read_csv(run / "selected.csv")["index"].tolist()
        history = pd.read_csv(run / "history.csv")
        assert len(set(selected)) == len(selected) == by.loc[order, "pairs_used"]
        assert {"scanned", "selected", "train_metric", "added_index", "test_score"} <= set(history.columns)
        assert history["scanned"].iloc[-1] == n_train and history["selected"].is_monotonic_increasing
        added = history["added_index"][history["added_index"] >= 0].tolist()
        assert selected == selected[:cfg["coreset"]["selection"]["initial"]] + added  # exactly the failing pairs
        m = json.loads((run / "metrics.json").read_text())
        assert m["pairs_used"] == len(selected) and m["device"] in ("CPU", "GPU")
        assert (run / "model.keras").stat().st_size > 0
    assert not [f for f in (tiny_workflow.path / "results" / ".resume" / "coreset").rglob("*") if f.is_file()]
    for name in ("pairs", "selected_vs_scanned", "score_vs_size", "selected_grid", "predictions", "recheck"):
        assert (r / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
