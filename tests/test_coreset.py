"""Coreset study: the generator, the metric, the selection loop, and a tiny workflow run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anatomy.data import ellipses
from anatomy import verdicts
from anatomy.studies import coreset, coreset_controls as controls, coreset_results
from anatomy.training.setup import RunSettings
from conftest import assert_figure

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
    assert controls.control_indices("full", 5).tolist() == [0, 1, 2, 3, 4]
    a = controls.control_indices("random", 100, size=10, seed=1)
    assert len(set(a)) == 10 and (np.diff(a) > 0).all()
    assert a.tolist() == controls.control_indices("random", 100, size=10, seed=1).tolist()
    assert a.tolist() != controls.control_indices("random", 100, size=10, seed=2).tolist()
    with pytest.raises(ValueError, match="size=200"):
        controls.control_indices("random", 100, size=200, seed=1)


def _metrics(run, seed, n, score, recheck=1.0, steps=9, budget_steps=None):
    return {"run": run, "seed": seed, "pairs_used": n, "train_pairs": 1000, "epochs_run": 3, "gradient_steps": steps,
            "budget_steps": budget_steps,
            "test": {"score": score, "score_soft_as_published": score + 0.02, "mean_iou": 0.8,
                     "recheck_pass_fraction": recheck, "recheck_pairs": 1000}}


def _runs(inord=(0.9, 0.91, 0.89), rand=(0.6, 0.62, 0.61), rand_stop=(0.5, 0.52, 0.51), full=(0.95, 0.95, 0.95),
          shuffled=(60, 55, 52), recheck=0.97, steps=400):
    """A runs table: per seed (as many as the shortest tuple) both selections, the full set and a random
    subset, each control at both budgets."""
    m = {}
    for s, (sel, r, r_stop, f, shuf) in enumerate(zip(inord, rand, rand_stop, full, shuffled)):
        k = lambda run: coreset_results.run_key(run, s)  # noqa: E731
        m[k("in_order")] = _metrics("in_order", s, 50, sel, recheck, steps=steps + s)
        m[k("shuffled")] = _metrics("shuffled", s, shuf, 0.88, 1.0, steps=450)
        m[k("full")] = _metrics("full", s, 1000, 0.9, steps=189)
        m[k("full_matched_steps")] = _metrics("full_matched_steps", s, 1000, f, steps=steps + s,
                                              budget_steps=steps + s)
        m[k("random")] = _metrics("random", s, 50, r_stop, 0.5, steps=12)
        m[k("random_matched_steps")] = _metrics("random_matched_steps", s, 50, r, 0.5, steps=steps + s,
                                                budget_steps=steps + s)
    return coreset_results.runs_table(dict(reversed(list(m.items()))))  # the table orders the runs itself


def test_runs_table_has_both_budgets_side_by_side_a_runs_seeds_together():
    runs = _runs()
    names = ["in_order", "shuffled", "full", "full_matched_steps", "random", "random_matched_steps"]
    assert list(runs["run"]) == [n for n in names for _ in range(3)]
    assert list(runs["seed"]) == [0, 1, 2] * len(names)
    assert {"pairs_used", "test_score_thresholded", "test_score_soft_as_published", "test_mean_iou",
            "recheck_pass_fraction", "budget", "gradient_steps", "budget_steps"} <= set(runs.columns)
    by = runs.set_index(["run", "seed"])
    assert by.loc[("in_order", 0), "budget"] == coreset_results.SELECTION_BUDGET
    assert by.loc[("random", 2), "budget"] == "stop at target"
    assert by.loc[("random_matched_steps", 2), "budget"] == "matched gradient steps"
    assert by.loc[("full_matched_steps", 1), "description"] == "full training set, matched gradient steps"
    assert by.loc[("random", 1), "description"] == "random subset, stop at target"
    matched = runs[runs["budget"] == "matched gradient steps"].set_index("seed")
    sel = runs[runs["run"] == "in_order"].set_index("seed")["gradient_steps"]
    assert (matched["gradient_steps"] == sel.loc[matched.index]).all() and len(matched) == 6  # each its seed's


def test_control_names_and_keys_round_trip():
    for kind, matched in [("full", False), ("full", True), ("random", False), ("random", True)]:
        c = controls.parse_control(controls.control_run_name(kind, matched))
        assert c == {"kind": kind, "budget": "matched gradient steps" if matched else "stop at target"}
    assert controls.control_run_name("random", matched=True) == "random_matched_steps"
    for bad in ("in_order", "random_seed1", "full_matched_steps_x"):
        with pytest.raises(ValueError, match="not a control run"):
            controls.parse_control(bad)
    with pytest.raises(ValueError, match="unknown control kind"):
        controls.control_run_name("subset")
    key = coreset_results.run_key("random_matched_steps", 12)
    assert key == "random_matched_steps/seed12" and coreset_results.split_key(key) == ("random_matched_steps", 12)
    assert coreset_results.split_key("in_order") == ("in_order", None)
    assert coreset_results.run_label("shuffled/seed2") == "selection, shuffled order (seed 2)"
    keys = [f"{r}/seed{s}" for s in (2, 1) for r in ("random", "full", "random_matched_steps", "in_order",
                                                      "shuffled", "full_matched_steps")]
    assert coreset_results.runs_shown(keys) == ["in_order/seed1", "shuffled/seed1", "random_matched_steps/seed1",
                                                "full_matched_steps/seed1"]  # the first seed's
    assert coreset_results.runs_shown(["in_order/seed0", "random/seed0", "full/seed0"]) == \
        ["in_order/seed0", "random/seed0", "full/seed0"]
    assert coreset_results.recheck_shown(keys) == ["in_order", "shuffled", "full_matched_steps",
                                                   "random_matched_steps"]  # each pooled over its seeds


@pytest.mark.parametrize("budget, per_epoch, epochs, last", [(7, 2, 4, 1), (8, 2, 4, 2), (3, 5, 1, 3), (1, 1, 1, 1)])
def test_matched_schedule_makes_exactly_the_budget(budget, per_epoch, epochs, last):
    assert controls.matched_schedule(budget, per_epoch) == (epochs, last)
    assert (epochs - 1) * per_epoch + last == budget and 1 <= last <= per_epoch


def test_budget_is_read_from_the_selections_metrics(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"gradient_steps": 123}))
    assert controls.budget_steps(tmp_path / "m.json") == 123
    (tmp_path / "bad.json").write_text(json.dumps({"gradient_steps": None}))
    with pytest.raises(ValueError, match="gradient_steps"):
        controls.budget_steps(tmp_path / "bad.json")
    pd.DataFrame({"order": [0, 1, 2], "index": [5, 9, 2]}).to_csv(tmp_path / "s.csv", index=False)
    assert controls.selected_size(tmp_path / "s.csv") == 3


# ---- the verdict: every path, decided on the budget-matched controls

def _judged(**kw):
    from anatomy.summary import judged_table

    return judged_table(coreset_results.claims_evidence(_runs(**kw)), data="d", scale="laptop").set_index("claim")


SELECTION = "selection beats a random subset of the same size (matched gradient steps)"
FULL = ("the selection carries all the information: it scores no worse than the full set (matched gradient "
        "steps)")


def test_selection_well_above_the_random_subsets_is_an_effect_shown_paired_by_seed():
    v = _judged(inord=(0.9, 0.91, 0.89), rand=(0.6, 0.62, 0.61))
    assert v.loc[SELECTION, "verdict"] == verdicts.EFFECT_SHOWN and v.loc[SELECTION, "n"] == 3
    assert "seed pairs" in v.loc[SELECTION, "statistic"]


def test_selection_within_the_seed_noise_is_not_settled_never_size_not_selection():
    v = _judged(inord=(0.605, 0.63, 0.60), rand=(0.6, 0.62, 0.61))
    assert v.loc[SELECTION, "verdict"] == verdicts.NOT_SETTLED
    assert "minimum detectable effect" in v.loc[SELECTION, "statistic"]


def test_the_pairing_is_by_seed_not_by_position():
    """Each seed's selection against its own random subset: a seed-wise constant lead is shown even where the
    seeds differ far more than the lead (unpaired, the two groups overlap)."""
    v = _judged(inord=(0.52, 0.73, 0.925), rand=(0.5, 0.7, 0.9))  # +0.02, +0.03, +0.025
    assert v.loc[SELECTION, "verdict"] == verdicts.EFFECT_SHOWN


def test_the_verdict_uses_the_budget_matched_controls_not_the_stop_at_target_ones():
    v = _judged(inord=(0.9, 0.91, 0.89), rand=(0.6, 0.62, 0.61), rand_stop=(0.95, 0.96, 0.97))
    assert v.loc[SELECTION, "verdict"] == verdicts.EFFECT_SHOWN
    assert "stop at target: random 0.9600" in v.loc[SELECTION, "finding"]


def test_one_seed_settles_nothing():
    v = _judged(inord=(0.9,), rand=(0.6,), rand_stop=(0.5,), full=(0.95,), shuffled=(60,))
    assert v.loc[SELECTION, "verdict"] == verdicts.ONE_RUN
    assert v.loc[FULL, "verdict"] == verdicts.ONE_RUN
    assert v.loc["order matters little (shuffled / in-order count - 1)", "verdict"] == verdicts.ONE_RUN


def test_selection_against_the_full_set_is_paired_by_seed():
    far = _judged(inord=(0.9, 0.91, 0.89), full=(0.99, 0.99, 0.99))
    assert far.loc[FULL, "verdict"] == verdicts.NOT_AT_SCALE  # 0.09 below, sd 0.01: inferior at this scale
    near = _judged(inord=(0.94, 0.95, 0.93), full=(0.95, 0.95, 0.95))
    assert near.loc[FULL, "verdict"] == verdicts.NOT_SETTLED  # mean -0.01, sd 0.01: the CI straddles -0.01
    close = _judged(inord=(0.95, 0.951, 0.9505), full=(0.95, 0.95, 0.95))
    assert close.loc[FULL, "verdict"] == verdicts.NON_INFERIOR


def test_the_other_claims_are_reported_or_judged_with_their_type():
    v = _judged(recheck=0.97)
    assert v.loc["pairs selected in order", "verdict"] == verdicts.REPORTED
    order = v.loc["order matters little (shuffled / in-order count - 1)"]
    assert order["n"] == 3 and order["verdict"] in verdicts.WORDS and "seed pairs" in order["statistic"]
    assert _judged(shuffled=(50, 51, 49)).loc[order.name, "verdict"] == verdicts.EQUIVALENT
    every = "every training pair now scores at or above the pass score"
    assert v.loc[every, "verdict"] == verdicts.NOT_SETTLED and v.loc[every, "n"] == 6  # shuffled passes all
    assert _judged(recheck=1.0).loc[every, "verdict"] == verdicts.FITTED
    mode = v.loc["pairs scored as the post's stopping rule scored them"]
    assert mode["verdict"] == verdicts.REPORTED and "inference-mode" in mode["finding"]
    assert set(v["verdict"]) <= set(verdicts.WORDS)


# ---- TensorFlow parts
def test_the_compiled_step_selects_exactly_the_pairs_train_on_batch_selects():
    """The selection's speed-up (one trace for every batch size, no per-call overhead) changes no result:
    from the same weights and dropout seeds, both steps select the same pairs after the same epochs."""
    pytest.importorskip("tensorflow")
    import keras

    from anatomy.models.unet import compile_unet, residual_unet
    from anatomy.training.step import make_train_step

    rng = np.random.default_rng(5)
    y = ellipses.make_ellipses(16, {**SECTION, "image_size": 32}, rng)[1]
    x = (rng.integers(0, 100, (16, 32, 32, 3)) + 155 * (y > 0)).astype(np.uint8)  # bright ships: learnt in a few steps
    params = {"batch_size": 4, "stopping": {"target": 0.5, "pass_factor": 1.0, "max_epochs": 10},
              "selection": {"initial": 2, "scan_batch": 5, "max_epochs_per_addition": 3}}
    out = {}
    for name in ("train_on_batch", "compiled"):
        keras.utils.set_random_seed(0)  # the same initial weights and dropout seeds
        model = compile_unet(residual_unet(32, start_neurons=2, depth=1, dropout=0.1, batch_norm_momentum=0.9),
                             learning_rate=0.01)
        step = model.train_on_batch if name == "train_on_batch" else make_train_step(model)
        state = coreset.select_in_memory(model, x, y, params, train_batch=step, seed=0)
        out[name] = (state.selected, [r["epochs"] for r in state.rows], model.get_weights(),
                     int(model.optimizer.iterations.numpy()))
    (sel_a, ep_a, w_a, it_a), (sel_b, ep_b, w_b, it_b) = out["train_on_batch"], out["compiled"]
    assert 2 < len(sel_a) < len(x)  # a real selection: some pairs joined, some passed
    assert sel_a == sel_b and ep_a == ep_b and it_a == it_b
    for a, b in zip(w_a, w_b):
        np.testing.assert_allclose(a, b, atol=1e-4)


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


def test_a_matched_control_makes_exactly_the_selections_gradient_steps(tmp_path):
    """A budget that is not a whole number of epochs: the last epoch is cut at the step that completes it."""
    pytest.importorskip("tensorflow")
    import keras

    from anatomy.models.unet import bce_dice_loss
    from anatomy.training.init_weights import write_initial_weights

    section = {**SECTION, "train_size": 20, "test_size": 4, "image_size": 32}
    ellipses.build_ellipses(tmp_path / "train.h5", tmp_path / "test.h5", section, seed=0)
    params = {"image_size": 32, "model": {"start_neurons": 2, "depth": 1, "dropout": 0.1, "batch_norm_momentum": 0.9},
              "batch_size": 8, "learning_rate": 0.003,
              "stopping": {"target": 0.85, "pass_factor": 0.95, "max_epochs": 2},
              "selection": {"initial": 4, "scan_batch": 20, "max_epochs_per_addition": 1, "test_checkpoints": 2},
              "keep_predictions": 2}
    write_initial_weights("residual_unet", tmp_path / "init.weights.h5", seed=0, kwargs=coreset.unet_kwargs(params))
    out = {}
    for budget in (None, 7):  # 10 pairs, batch 8: 2 steps an epoch -> 4 epochs, the last one cut after 1 step
        d = tmp_path / str(budget)
        files = {"model": d / "model.keras", "history": d / "history.csv", "metrics": d / "metrics.json",
                 "predictions": d / "predictions.npz", "selected": d / "selected.csv", "backup": d / "backup"}
        out[budget] = controls.run_control(train_h5=tmp_path / "train.h5", test_h5=tmp_path / "test.h5",
                                          init_weights=tmp_path / "init.weights.h5", files=files, params=params,
                                          kind="random", size=10,
                                          run_settings=RunSettings(threads=1, seed=0), budget_steps=budget)
        saved = keras.saving.load_model(files["model"], compile=True, safe_mode=True,
                                        custom_objects={"bce_dice_loss": bce_dice_loss})
        out[budget]["iterations"] = int(saved.optimizer.iterations.numpy())
        out[budget]["history"] = pd.read_csv(files["history"])
    m = out[7]
    assert len(pd.read_csv(tmp_path / "7" / "selected.csv")) == 10  # the pairs it trained on
    assert m["run"] == "random_matched_steps" and m["budget"] == "matched gradient steps"
    assert m["gradient_steps"] == m["budget_steps"] == 7 == m["iterations"]
    assert m["epochs_run"] == 4 and m["history"]["gradient_steps"].tolist() == [2, 4, 6, 7]
    s = out[None]
    assert s["run"] == "random" and s["budget"] == "stop at target" and s["budget_steps"] is None
    assert s["gradient_steps"] == 2 * s["epochs_run"] == s["iterations"] and "train_metric" in s["history"]
    assert 0 <= m["test"]["score"] <= 1 and 0 <= m["train_metric_final"] <= 1


# ---- the tiny workflow
@pytest.mark.workflow
def test_tiny_workflow_writes_every_coreset_output(tiny_workflow):
    r = tiny_workflow.path / "results" / "coreset"
    cfg = tiny_workflow.config
    n_train = cfg["data"]["ellipses"]["train_size"]
    runs = pd.read_csv(r / "runs.csv")
    seeds = cfg["coreset"]["seeds"]
    controls = ["full", "random"]
    names = {"in_order", "shuffled", *controls, *(f"{c}_matched_steps" for c in controls)}
    assert set(zip(runs["run"], runs["seed"])) == {(n, s) for n in names for s in seeds}
    for col in ("test_score_thresholded", "test_score_soft_as_published", "test_mean_iou", "recheck_pass_fraction"):
        assert runs[col].between(0, 1).all(), col
    by = runs.set_index(["run", "seed"])
    for s in seeds:
        assert by.loc[("full", s), "pairs_used"] == by.loc[("full_matched_steps", s), "pairs_used"] == n_train
        assert by.loc[("random", s), "pairs_used"] == by.loc[("in_order", s), "pairs_used"]
        assert by.loc[("random_matched_steps", s), "pairs_used"] == by.loc[("in_order", s), "pairs_used"]
        # the budget-matched controls: exactly their seed's in-order selection's gradient steps, from its weights
        steps = json.loads((r / "select" / "in_order" / f"seed{s}" / "metrics.json").read_text())["gradient_steps"]
        assert by.loc[("in_order", s), "gradient_steps"] == steps
        for c in controls:
            assert by.loc[(f"{c}_matched_steps", s), "budget"] == "matched gradient steps"
            assert by.loc[(f"{c}_matched_steps", s), "gradient_steps"] == \
                by.loc[(f"{c}_matched_steps", s), "budget_steps"] == steps
            assert by.loc[(c, s), "budget"] == "stop at target"
            m = json.loads((r / "control" / f"{c}_matched_steps" / f"seed{s}" / "metrics.json").read_text())
            assert m["gradient_steps"] == steps and m["params"]["batch_size"] == cfg["coreset"]["batch_size"]
            assert m["seed"] == s and m["init_weights"] == f"seed{s}.weights.h5"
    verdict = pd.read_csv(r / "verdict.csv")
    assert len(verdict) == len(coreset_results.claims()) and set(verdict["verdict"]) <= set(verdicts.WORDS)
    assert verdict["rule"].notna().all() and {"statistic", "n", "spread", "rule", "type"} <= set(verdict.columns)
    row = verdict.set_index("claim").loc[SELECTION]
    assert row["n"] == len(seeds)  # seed pairs
    assert len(seeds) > 1 or row["verdict"] == verdicts.ONE_RUN  # one seed: no spread
    hist = pd.read_csv(r / "recheck_histogram.csv")
    assert (hist.groupby(["run", "seed"])["pairs"].sum() == n_train).all() and len(hist.groupby(["run", "seed"])) == \
        len(runs)
    for order in ("in_order", "shuffled"):
        for s in seeds:
            run = r / "select" / order / f"seed{s}"
            selected = pd.read_csv(run / "selected.csv")["index"].tolist()
            history = pd.read_csv(run / "history.csv")
            assert len(set(selected)) == len(selected) == by.loc[(order, s), "pairs_used"]
            assert {"scanned", "selected", "train_metric", "added_index", "test_score"} <= set(history.columns)
            assert history["scanned"].iloc[-1] == n_train and history["selected"].is_monotonic_increasing
            added = history["added_index"][history["added_index"] >= 0].tolist()
            assert selected == selected[:cfg["coreset"]["selection"]["initial"]] + added  # exactly the failing pairs
            m = json.loads((run / "metrics.json").read_text())
            assert m["pairs_used"] == len(selected) and m["device"] in ("CPU", "GPU") and m["seed"] == s
            assert m["shuffle_seed"] == (s if order == "shuffled" else None)
            assert (run / "model.keras").stat().st_size > 0
    assert not [f for f in (tiny_workflow.path / "results" / ".resume" / "coreset").rglob("*") if f.is_file()]
    for name in ("pairs", "selected_vs_scanned", "score_vs_size", "selected_grid", "predictions", "recheck"):
        assert_figure(r / "figures" / f"{name}.png")


@pytest.mark.workflow
def test_each_seed_is_a_replicate_with_its_own_weights_selection_and_controls(tmp_path):
    """Two seeds in a dry run: every control reads its own seed's initial weights and in-order selection."""
    from anatomy.plan import dry_run_jobs
    from conftest import Workflow, tiny_config

    wf = Workflow(tmp_path, tiny_config({"coreset": {"seeds": [0, 3]}}))
    p = wf.run("-n", "--forceall", "results/coreset/verdict.csv")
    text = p.stdout + p.stderr
    trainings = [j for j in dry_run_jobs(text) if j["rule"] == "coreset_train"]
    assert len(trainings) == 12 and {j["rule"] for j in dry_run_jobs(text)} >= {"coreset_initial_weights"}
    inputs = {}
    for block in text.split("rule coreset_train:")[1:]:
        job = block.split("\n[")[0]  # up to the next job's timestamp
        lines = {s.split(":", 1)[0].strip(): s.split(":", 1)[1] for s in job.splitlines() if ":" in s}
        inputs[lines["wildcards"].strip().removeprefix("run=")] = lines["input"]
    for run, inp in inputs.items():
        seed = run.rsplit("/seed", 1)[1]
        assert f"coreset/init/seed{seed}.weights.h5" in inp, run
        other = "3" if seed == "0" else "0"
        assert f"seed{other}" not in inp, run
        if run.startswith("control/random") or run.endswith("_matched_steps/seed" + seed):
            assert f"select/in_order/seed{seed}/" in inp, run
