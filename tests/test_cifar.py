"""Cifar study: variants (labels, permutations, Gaussian pixels), augmentation, noisy BN, tiny run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anatomy.studies import cifar


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
    assert cifar.epochs_to(h, "accuracy", 0.9) == 2
    assert np.isnan(cifar.epochs_to(h, "accuracy", 0.99))


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
        assert (r / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    m = json.loads((r / "runs" / "noisybn_lr0.05" / "metrics.json").read_text())
    assert m["spec"]["noise"] == {"shift": 1.0, "scale_max": 2.0} and m["noise_at_test_time"] is False
    with np.load(r / "variants" / "pixels_fixed_permutation.npz") as v:
        assert "test_images" in v.files and len(v["train_index"]) == 200
