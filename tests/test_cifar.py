"""Cifar study: variants (labels, permutations, Gaussian pixels), augmentation, noisy BN, tiny run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anatomy.studies import cifar, cifar_results
from conftest import assert_figure


@pytest.mark.parametrize("p", [0.1, 0.5, 1.0])
def test_label_corruption_rates_and_reproducibility(p):
    y = np.random.default_rng(0).integers(0, 10, 20_000)
    v = cifar.corrupt_labels(y, p, seed=3)
    assert v["redrawn"].mean() == pytest.approx(p, abs=0.015)
    assert v["changed"].mean() == pytest.approx(0.9 * p, abs=0.015)
    np.testing.assert_array_equal(v["changed"], v["labels"] != y)
    assert (v["labels"][~v["redrawn"]] == y[~v["redrawn"]]).all()
    again = cifar.corrupt_labels(y, p, seed=3)
    np.testing.assert_array_equal(v["labels"], again["labels"])
    assert not np.array_equal(v["labels"], cifar.corrupt_labels(y, p, seed=4)["labels"])


def _images(n=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_fixed_permutation_is_one_permutation_shared_by_train_and_test():
    x_tr, x_te = _images(5), _images(3, seed=1)
    v = cifar.make_pixel_variant("fixed_permutation", x_tr, x_te, seed=0)
    perm = v["permutation"]
    assert sorted(perm) == list(range(1024))
    for x, out in ((x_tr, v["train_images"]), (x_te, v["test_images"])):
        np.testing.assert_array_equal(out.reshape(len(x), 1024, 3), x.reshape(len(x), 1024, 3)[:, perm])
    # a pixel's three channels move together
    np.testing.assert_array_equal(np.sort(out.reshape(-1, 3), axis=0), np.sort(x_te.reshape(-1, 3), axis=0))


def test_per_image_permutations_differ_between_images_and_keep_pixels():
    x = np.repeat(_images(1), 4, axis=0)  # four copies of one image
    out = cifar.make_pixel_variant("per_image_permutation", x, x[:1], seed=0)
    assert "test_images" not in out  # test untouched
    imgs = out["train_images"]
    assert not np.array_equal(imgs[0], imgs[1]) and not np.array_equal(imgs[1], imgs[2])
    for img in imgs:  # the same multiset of pixels
        np.testing.assert_array_equal(np.sort(img.reshape(-1, 3), axis=0), np.sort(x[0].reshape(-1, 3), axis=0))


def test_gaussian_images_keep_each_images_or_the_datasets_statistics():
    rng = np.random.default_rng(0)
    x = np.stack([np.clip(rng.normal(m, s, (32, 32, 3)), 0, 255).astype(np.uint8)
                  for m, s in ((60, 20), (128, 30), (190, 25))])
    g = cifar.gaussian_images(x, seed=0, per_image=True)
    for a, b in zip(x.astype(float), g.astype(float)):
        assert b.mean() == pytest.approx(a.mean(), abs=2.0)
        assert b.std() == pytest.approx(a.std(), rel=0.06)
    d = cifar.gaussian_images(x, seed=0, per_image=False)
    assert d.astype(float).mean() == pytest.approx(x.astype(float).mean(), abs=2.0)
    assert d.astype(float).std() == pytest.approx(x.astype(float).std(), rel=0.06)
    # per-image variant carries brightness; the dataset variant does not
    assert np.ptp(g.reshape(3, -1).mean(1)) > 100 and np.ptp(d.reshape(3, -1).mean(1)) < 10


def test_apply_variant_overrides_by_index_and_refuses_mismatch():
    idx = np.arange(4)
    x, y = _images(4), np.arange(4)
    v = {"train_index": idx, "labels": np.zeros(4, np.int64)}
    _, y2 = cifar.apply_variant(idx, x, y, v, "train")
    assert (y2 == 0).all()
    with pytest.raises(ValueError, match="index mismatch"):
        cifar.apply_variant(idx[::-1], x, y, v, "train")


def test_epochs_to_level():
    h = pd.DataFrame({"epoch": [1, 2, 3], "accuracy": [0.5, 0.91, 0.95]})
    assert cifar_results.epochs_to(h, "accuracy", 0.9) == 2
    assert np.isnan(cifar_results.epochs_to(h, "accuracy", 0.99))


def _noisy_metrics(**test):
    return {"spec": {"batchnorm": True, "learning_rate": 0.05, "noise": {"shift": 1.0, "scale_max": 2.0}},
            "test_images": 500, "diverged": False,
            "test": {"accuracy": 0.166, "accuracy_noise_off": 0.166, "accuracy_noise_on_mean": 0.5,
                     "accuracy_noise_on_sd": 0.02, "accuracy_noise_on_draws": [0.48, 0.5, 0.52],
                     "accuracy_bn_reestimated": 0.61, **test}}


def _history(test_accuracy=0.5, epochs=3):
    return pd.DataFrame({"epoch": range(1, epochs + 1), "loss": [2.0, 1.5, 1.2][:epochs],
                         "accuracy": [0.3, 0.45, 0.58][:epochs], "test_accuracy": [0.2, 0.3, test_accuracy][:epochs]})


def test_run_summary_has_the_three_noisy_bn_accuracies_nan_without_noise():
    cols = ["test_accuracy_noise_off", "test_accuracy_noise_on_mean", "test_accuracy_noise_on_sd",
            "test_accuracy_bn_reestimated"]
    noisy = cifar_results.run_summary("noisybn_lr0.05", _history(0.166), _noisy_metrics())
    assert [noisy[c] for c in cols] == [0.166, 0.5, 0.02, 0.61]
    assert noisy["noise_on_draws"] == 3 and noisy["test_images"] == 500
    plain = cifar_results.run_summary("nobn_lr0.05", _history(),
                                      {"spec": {"batchnorm": False}, "test": {"accuracy": 0.5}})
    assert all(np.isnan(plain[c]) for c in [*cols, "noise_on_draws", "test_images"])
    # the BN run the noisy one is compared with carries its re-estimated accuracy, nothing else
    bn = cifar_results.run_summary("bn_lr0.05", _history(), {"spec": {"batchnorm": True},
                                                     "test": {"accuracy": 0.5, "accuracy_bn_reestimated": 0.55}})
    assert bn["test_accuracy_bn_reestimated"] == 0.55 and np.isnan(bn["test_accuracy_noise_on_mean"])
    # a noisy run that diverged (no test metrics) has NaNs, not an error
    gone = cifar_results.run_summary("noisybn_lr0.05", _history(), {"spec": _noisy_metrics()["spec"], "test": {},
                                                             "diverged": True})
    assert all(np.isnan(gone[c]) for c in cols)


def test_aggregation_writes_the_three_noisy_bn_columns_without_tensorflow(tmp_path):
    """scripts/cifar/aggregate.py, as the rule runs it (a stand-in ``snakemake`` object), in a fresh process,
    on two seeds of each run (folders <run>/seed<s>); seed 1's accuracies sit 0.1 below seed 0's."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    runs = {"bn_lr0.05": {"spec": {"batchnorm": True}, "test": {"accuracy": 0.5, "accuracy_bn_reestimated": 0.55}},
            "nobn_lr0.05": {"spec": {"batchnorm": False}, "test": {"accuracy": 0.45}},
            "noisybn_lr0.05": _noisy_metrics()}
    seeds = [0, 1]
    for name, m in runs.items():
        for seed in seeds:
            (tmp_path / name / f"seed{seed}").mkdir(parents=True)
            h = _history(m["test"]["accuracy"])
            h[["accuracy", "test_accuracy"]] -= 0.1 * seed
            h.to_csv(tmp_path / name / f"seed{seed}" / "history.csv", index=False)
            (tmp_path / name / f"seed{seed}" / "metrics.json").write_text(json.dumps(m))
    figures = ["bn_lr", "noisy_bn", "augmentation", "labels", "pixels", "corruptions_train", "corruptions_test"]
    driver = f"""
import runpy, sys
from types import SimpleNamespace
sys.path.insert(0, {str(root / "scripts")!r})


class Named(dict):  # like Snakemake's named lists: by attribute and by key
    __getattr__ = dict.__getitem__


t = {str(tmp_path)!r}
names = [f"{{n}}/seed{{s}}" for n in {list(runs)!r} for s in {seeds!r}]
sm = SimpleNamespace(
    input=SimpleNamespace(histories=[f"{{t}}/{{n}}/history.csv" for n in names],
                          metrics=[f"{{t}}/{{n}}/metrics.json" for n in names], labels=[]),
    output=Named(summary=f"{{t}}/summary.csv", label_table=f"{{t}}/labels.csv",
                 **{{f: f"{{t}}/{{f}}.png" for f in {figures!r}}}),
    params=SimpleNamespace(base_lr=0.05, figure_seed=0, provenance="data: test | config: tiny"), log=[])
runpy.run_path({str(root / "scripts" / "cifar" / "aggregate.py")!r}, init_globals={{"snakemake": sm}})
assert "tensorflow" not in sys.modules, "the aggregation imported TensorFlow"
"""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    table = pd.read_csv(tmp_path / "summary.csv")
    assert len(table) == len(runs) * len(seeds) and sorted(set(table["seed"])) == seeds  # one row per run and seed
    assert list(table.columns[:2]) == ["run", "seed"]
    # the verdicts pair by seed: BN - no BN training accuracy, one difference per seed
    faster = {c.key: e for c, e, _ in cifar_results.claims_evidence(table, base_lr=0.05)}["bn_trains_faster_lr0.05"]
    assert faster.values == pytest.approx([0.0, 0.0]) and faster.unit == "seed pairs"
    assert table.groupby("run")["final_test_accuracy"].apply(lambda v: v.max() - v.min()).to_numpy() == \
        pytest.approx(0.1)
    s = table[table["seed"] == 0].set_index("run")
    assert s.loc["noisybn_lr0.05", "test_accuracy_noise_off"] == pytest.approx(0.166)
    assert s.loc["noisybn_lr0.05", "test_accuracy_noise_on_mean"] == pytest.approx(0.5)
    assert s.loc["noisybn_lr0.05", "test_accuracy_noise_on_sd"] == pytest.approx(0.02)
    assert s.loc["noisybn_lr0.05", "test_accuracy_bn_reestimated"] == pytest.approx(0.61)
    assert s.loc["noisybn_lr0.05", "noise_on_draws"] == 3
    assert s.loc[["bn_lr0.05", "nobn_lr0.05"], "test_accuracy_noise_off"].isna().all()
    assert s.loc["bn_lr0.05", "test_accuracy_bn_reestimated"] == pytest.approx(0.55)
    assert np.isnan(s.loc["nobn_lr0.05", "test_accuracy_bn_reestimated"])
    assert_figure(tmp_path / "noisy_bn.png")
    # the figure's end-of-training markers come from the same table
    points = cifar_results.noisy_bn_points(s.reset_index(), 0.05)
    assert [v[1] for v in points.values()] == pytest.approx([0.5, 0.61, 0.55])
    assert list(points)[0].startswith("noisy BN, noise on (mean ± sd of 3 draws)")


tf = pytest.importorskip("tensorflow")


def test_pad_crop_flip_shapes_ranges_and_flip_rate():
    from anatomy.training.augment import pad_crop_flip

    x = tf.constant(np.random.default_rng(0).random((2000, 32, 32, 3)).astype(np.float32))
    out = pad_crop_flip(x, tf.constant([1, 2], tf.int64)).numpy()
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    # reflect padding keeps every value one of the image's own
    assert np.isin(out[0], x.numpy()[0]).all()
    # flip rate: an asymmetric image (left half 0, right half 1) reveals flips at zero offset
    half = np.zeros((4000, 32, 32, 1), np.float32)
    half[:, :, 16:] = 1.0
    o = pad_crop_flip(tf.constant(half), tf.constant([5, 6], tf.int64), pad=0).numpy()
    flipped = o[:, 0, 0, 0] == 1.0
    assert flipped.mean() == pytest.approx(0.5, abs=0.03)
    np.testing.assert_array_equal(o, pad_crop_flip(tf.constant(half), tf.constant([5, 6], tf.int64), pad=0).numpy())


def test_pad_crop_flip_is_an_exact_crop_of_the_reflect_padded_image_mirrored_or_not():
    """Every output image is one of the 81 crops of its reflect-padded image, flipped or not, pixel for pixel;
    the offsets cover the whole range."""
    from anatomy.training.augment import pad_crop_flip

    x = np.random.default_rng(1).random((64, 32, 32, 3)).astype(np.float32)
    out = pad_crop_flip(tf.constant(x), tf.constant([7, 8], tf.int64)).numpy()
    found = set()
    for img, o in zip(x, out):
        p = np.pad(img, [(4, 4), (4, 4), (0, 0)], mode="reflect")
        hits = [(r, c, f) for r in range(9) for c in range(9) for f in (0, 1)
                if np.array_equal(o, p[r:r + 32, c:c + 32][:, ::-1] if f else p[r:r + 32, c:c + 32])]
        assert hits, "not a crop of the padded image"
        found.add(hits[0])
    assert {r for r, _, _ in found} == set(range(9)) and {f for _, _, f in found} == {0, 1}


def test_noisy_bn_is_time_varying_shift_and_scale_in_training_only():
    from anatomy.models.vgg import NoisyBN

    layer = NoisyBN(shift=1.0, scale_max=2.0, seed=0)
    x = tf.constant(np.random.default_rng(0).standard_normal((512, 4, 4, 8)).astype(np.float32))
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    draws = []
    for _ in range(50):
        y = layer(x, training=True).numpy()
        s = y.std(axis=(0, 1, 2)) / x.numpy().std(axis=(0, 1, 2))
        m = y.mean(axis=(0, 1, 2)) - s * x.numpy().mean(axis=(0, 1, 2))
        assert ((s >= 1.0 - 1e-4) & (s <= 2.0 + 1e-4)).all() and (np.abs(m) <= 1.0 + 1e-4).all()
        draws.append(m)
    draws = np.array(draws)
    assert draws.std(axis=0).min() > 0.3  # redrawn every step
    assert abs(draws.mean()) < 0.2  # shift ~ U(-1, 1)


@pytest.mark.workflow
def test_tiny_workflow_runs_every_cifar_sub_experiment(tiny_workflow):
    r = tiny_workflow.path / "results" / "cifar"
    s = pd.read_csv(r / "summary.csv")
    assert {"bn_lr0.05", "nobn_lr0.05", "noisybn_lr0.05", "aug_lr0.05", "labels_p1",
            "pixels_fixed_permutation", "pixels_gaussian_per_image"} <= set(s["run"])
    assert {"final_test_accuracy", "best_test_accuracy", "final_train_accuracy",
            "epochs_to_90pct_train_accuracy", "diverged"} <= set(s.columns)
    labels = pd.read_csv(r / "label_corruption.csv")
    assert labels.loc[0, "redrawn_fraction"] == 1.0 and 0.8 < labels.loc[0, "changed_fraction"] < 1.0
    for name in ("bn_lr", "noisy_bn", "augmentation", "labels", "pixels", "corruptions_train", "corruptions_test"):
        assert_figure(r / "figures" / f"{name}.png")
    m = json.loads((r / "runs" / "noisybn_lr0.05" / "seed0" / "metrics.json").read_text())
    assert m["seed"] == 0 and m["init"]["file"] == "results/cifar/init/seed0.weights.h5" and set(s["seed"]) == {0}
    assert m["spec"]["noise"] == {"shift": 1.0, "scale_max": 2.0} and m["noise_at_test_time"] is False
    # the three noisy-BN test accuracies, side by side; NaN for runs without noise
    noisy = s.set_index("run").loc["noisybn_lr0.05"]
    assert noisy["test_accuracy_noise_off"] == pytest.approx(m["test"]["accuracy"], abs=1e-4)
    assert len(m["test"]["accuracy_noise_on_draws"]) == noisy["noise_on_draws"] == 5
    for col in ("test_accuracy_noise_on_mean", "test_accuracy_noise_on_sd", "test_accuracy_bn_reestimated"):
        assert 0 <= noisy[col] <= 1, col
    assert s.set_index("run").loc[["nobn_lr0.05", "aug_lr0.05"], "test_accuracy_noise_on_mean"].isna().all()
    assert 0 <= s.set_index("run").loc["bn_lr0.05", "test_accuracy_bn_reestimated"] <= 1  # the like-for-like BN
    with np.load(r / "variants" / "pixels_fixed_permutation.npz") as v:
        assert "test_images" in v.files and len(v["train_index"]) == 200


def test_every_setting_of_a_seed_starts_from_that_seeds_kernels(tmp_path):
    """BN, no BN and noisy BN nets built from one seed's file share every conv and dense kernel (the net without
    BN starts exactly from the file); another seed's file gives other kernels."""
    from anatomy.models.vgg import vgg_like
    from anatomy.training.init_weights import write_initial_weights

    cfg = {"widths": [4, 8], "convs_per_block": 1, "dense": 6}
    for seed in (0, 1):
        write_initial_weights("vgg_like", tmp_path / f"seed{seed}.weights.h5", seed=seed,
                              kwargs={**cfg, "batchnorm": False})
    nets = {}
    for name, kw in {"bn": {}, "nobn": {"batchnorm": False}, "noisy": {"noise": {"shift": 1.0, "scale_max": 2.0}},
                     "other_seed": {}}.items():
        nets[name] = vgg_like(**cfg, **kw)
        f = tmp_path / ("seed1.weights.h5" if name == "other_seed" else "seed0.weights.h5")
        init = cifar.start_from(nets[name], f, cfg)
        assert init["file"] == str(f) and len(init["fingerprint"]) == 16

    def kernels(m):
        return [np.asarray(layer.kernel) for layer in cifar._weighted(m)]

    for name in ("nobn", "noisy"):
        assert all(np.array_equal(a, b) for a, b in zip(kernels(nets["bn"]), kernels(nets[name]), strict=True))
    assert not any(np.array_equal(a, b) for a, b in zip(kernels(nets["bn"]), kernels(nets["other_seed"])))
    ref = vgg_like(**cfg, batchnorm=False)
    ref.load_weights(tmp_path / "seed0.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(ref.get_weights(), nets["nobn"].get_weights(), strict=True))
    with pytest.raises(ValueError, match="does not match"):
        cifar.start_from(vgg_like(**{**cfg, "dense": 7}), tmp_path / "seed0.weights.h5", cfg)


def _tiny_noisy_net(seed=0):
    import keras

    from anatomy.models.vgg import vgg_like

    keras.utils.set_random_seed(seed)
    return vgg_like(widths=(3,), convs_per_block=1, dense=4, noise={"shift": 1.0, "scale_max": 2.0},
                    weight_decay=0.0, input_shape=(4, 4, 2), num_classes=3)


def _bns(model):
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def _stats_gathered_under_noise(model, x):
    """Moving statistics as a noisy training run leaves them: taken (momentum 0) from a batch of scaled,
    shifted inputs passed in training mode, the noise layers on."""
    for bn in _bns(model):
        bn.momentum = 0.0
    model(x * 3.0 + 1.0, training=True)
    for bn in _bns(model):
        bn.momentum = 0.99


def test_bn_re_estimation_sets_the_clean_statistics_and_changes_nothing_else():
    import keras

    model = _tiny_noisy_net()
    x = np.random.default_rng(0).standard_normal((64, 4, 4, 2)).astype(np.float32)
    _stats_gathered_under_noise(model, x)
    moving = lambda v: "moving_mean" in v.path or "moving_variance" in v.path  # noqa: E731
    before = {v.path: np.array(v) for v in model.variables}
    changes = cifar.reestimate_bn_statistics(model, x, batch_size=24)  # batches of 24, 24 and 16
    assert [c["layer"] for c in changes] == [bn.name for bn in _bns(model)]
    for v in model.variables:  # kernels, gamma, beta and the noise layers' seed state untouched
        if not moving(v):
            np.testing.assert_array_equal(np.array(v), before[v.path], err_msg=v.path)
    for bn in _bns(model):  # each BN's moving stats are now the clean statistics of its inference-mode input
        h = np.asarray(keras.Model(model.input, bn.input)(x, training=False), np.float64)
        h = h.reshape(-1, h.shape[-1])
        np.testing.assert_allclose(np.array(bn.moving_mean), h.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.array(bn.moving_variance), h.var(0), rtol=1e-4, atol=1e-5)
        assert not np.allclose(np.array(bn.moving_variance), before[bn.moving_variance.path], rtol=0.05)
    # so the first BN's output is standardised on the clean data (gamma 1, beta 0 in an untrained net)
    first = _bns(model)[0]
    out = np.asarray(keras.Model(model.input, first.output)(x, training=False)).reshape(-1, 3)
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.var(0), 1.0, rtol=1e-2)


def test_bn_re_estimation_restores_the_accuracy_of_the_clean_network():
    """Labels from the same weights normalised with the clean data's exact statistics (a twin without
    noise, BN in training mode on the whole set at once): stale statistics gathered under noise get many
    wrong; after re-estimation every one is right, and the model keeps its own statistics afterwards."""
    from anatomy.models.vgg import vgg_like

    model = _tiny_noisy_net(seed=1)
    x = np.random.default_rng(1).standard_normal((96, 4, 4, 2)).astype(np.float32)
    twin = vgg_like(widths=(3,), convs_per_block=1, dense=4, weight_decay=0.0, input_shape=(4, 4, 2),
                    num_classes=3)
    for a, b in zip([layer for layer in twin.layers if layer.weights],
                    [layer for layer in model.layers if layer.weights and layer.__class__.__name__ != "NoisyBN"]):
        a.set_weights(b.get_weights())
    y = np.argmax(np.asarray(twin(x, training=True)), axis=-1)
    _stats_gathered_under_noise(model, x)
    stale = [np.array(v) for bn in _bns(model) for v in (bn.moving_mean, bn.moving_variance)]
    assert (cifar.predict_classes(model, x) == y).mean() < 0.9
    r = cifar.reestimated_test_accuracy(model, x, y, x, batch_size=32)
    assert r["accuracy_bn_reestimated"] == 1.0 and r["bn_reestimation"]["images"] == 96
    for a, b in zip(stale, [np.array(v) for bn in _bns(model) for v in (bn.moving_mean, bn.moving_variance)]):
        np.testing.assert_array_equal(a, b)


def test_noisy_bn_test_accuracies_are_seeded_and_leave_the_model_as_it_was():
    model = _tiny_noisy_net(seed=2)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((80, 4, 4, 2)).astype(np.float32), rng.integers(0, 3, 80)
    _stats_gathered_under_noise(model, x)
    # noise off is the model's own inference; noise with s = 1, m = 0 is the same; a real draw is not
    ref = np.argmax(model.predict(x, verbose=0), axis=-1)
    np.testing.assert_array_equal(cifar.predict_classes(model, x, batch_size=32), ref)
    draw = cifar.draw_noise(model, np.random.default_rng(0))
    assert len(draw) == 2 and [len(s) for s, _ in draw.values()] == [3, 4]
    for s, m in draw.values():
        assert ((s >= 1) & (s <= 2)).all() and (np.abs(m) <= 1).all()
    identity = {k: (np.ones_like(s), np.zeros_like(m)) for k, (s, m) in draw.items()}
    np.testing.assert_array_equal(cifar.predict_classes(model, x, noise=identity), ref)
    before = [np.array(v) for v in model.variables]
    r = cifar.noisy_bn_test_accuracies(model, x, y, x, draws=4, seed=7, batch_size=32)
    again = cifar.noisy_bn_test_accuracies(model, x, y, x, draws=4, seed=7, batch_size=32)
    assert r["accuracy_noise_on_draws"] == again["accuracy_noise_on_draws"] and len(r["accuracy_noise_on_draws"]) == 4
    assert r["accuracy_noise_off"] == pytest.approx((ref == y).mean())
    assert r["accuracy_noise_on_mean"] == pytest.approx(np.mean(r["accuracy_noise_on_draws"]))
    assert r["accuracy_noise_on_sd"] == pytest.approx(np.std(r["accuracy_noise_on_draws"], ddof=1))
    assert 0 <= r["accuracy_bn_reestimated"] <= 1
    for a, b in zip(before, model.variables):  # moving statistics restored, nothing else touched
        np.testing.assert_array_equal(a, np.array(b))


def test_figure_groups_put_each_run_in_its_figures_with_the_clean_run_as_reference():
    names = ["bn_lr0.05", "nobn_lr0.05", "bn_lr0.5", "nobn_lr0.5", "noisybn_lr0.05", "aug_lr0.05", "labels_p1",
             "labels_p0.2", "pixels_fixed_permutation", "pixels_gaussian_dataset"]
    hist = {n: pd.DataFrame({"epoch": [1], "tag": [n]}) for n in names}
    g = cifar_results.figure_groups(hist, 0.05)
    lr = g["bn_lr"]
    assert list(lr["curves"]) == ["bn_lr0.05", "nobn_lr0.05", "bn_lr0.5", "nobn_lr0.5"]  # by rate, BN first
    assert lr["styles"] == {"nobn_lr0.05": "--", "nobn_lr0.5": "--"}
    assert lr["colors"] == {"bn_lr0.05": 0, "nobn_lr0.05": 0, "bn_lr0.5": 1, "nobn_lr0.5": 1}
    clean = hist["bn_lr0.05"]
    assert g["noisy_bn"]["BN lr0.05"] is clean and len(g["noisy_bn"]) == 2
    assert list(g["augmentation"].values())[1] is hist["aug_lr0.05"]
    assert list(g["labels"]) == ["p = 0", "p = 1", "p = 0.2"] and g["labels"]["p = 0"] is clean
    assert list(g["pixels"]) == ["clean", "fixed permutation", "gaussian dataset"]
    assert list(g["corruptions"]) == ["clean", "p = 1", "p = 0.2", "fixed permutation", "gaussian dataset"]


def test_label_table_reads_p_and_the_fractions_from_each_variant_file(tmp_path):
    for p, redrawn in ((0.5, [1, 0, 1, 0]), (1.0, [1, 1, 1, 1])):
        np.savez(tmp_path / f"labels_p{p:g}.npz", labels=np.arange(4), redrawn=np.array(redrawn, bool),
                 changed=np.array([1, 0, 0, 0], bool), train_index=np.arange(4), description=np.array("x"))
    t = cifar_results.label_table([tmp_path / "labels_p0.5.npz", tmp_path / "labels_p1.npz"])
    assert t.columns.tolist() == cifar_results.LABEL_TABLE_COLUMNS
    assert t["p"].tolist() == [0.5, 1.0] and t["images"].tolist() == [4, 4]
    assert t["redrawn_fraction"].tolist() == [0.5, 1.0] and t["changed_fraction"].tolist() == [0.25, 0.25]
    # no label variant configured
    assert cifar_results.label_table([]).columns.tolist() == cifar_results.LABEL_TABLE_COLUMNS


def test_normalize_standardises_each_channel_by_the_training_sets_mean_and_std():
    pytest.importorskip("tensorflow")
    from anatomy.studies.cifar import MEAN, STD, normalize

    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    out = np.asarray(normalize(x))
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, (x / 255.0 - MEAN) / STD, rtol=1e-5, atol=1e-5)
