"""The benchmark's own logic: FLOP counts, the reference loops it races, its table. No timings asserted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anatomy.bench import augment, cli, common, flops, scaling, synthetic, workflow


def test_forward_flops_of_the_mnist_cnn_match_a_hand_count():
    from anatomy.models.mnist_cnn import mnist_cnn

    m = mnist_cnn()
    conv1 = 26 * 26 * 32 * 3 * 3 * 1 * 2
    conv2 = 24 * 24 * 64 * 3 * 3 * 32 * 2
    dense = 12 * 12 * 64 * 128 * 2 + 128 * 10 * 2
    assert flops.forward_flops(m) == conv1 + conv2 + dense  # about 24 MFLOP
    assert flops.training_flops(m) == 3 * (conv1 + conv2 + dense) - conv1


def test_flops_count_transposed_convolutions_and_nested_models():
    import keras

    inner = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same")])
    outer = keras.Sequential([keras.Input((4, 4, 2)), inner, keras.layers.Flatten(), keras.layers.Dense(5)])
    expected = 4 * 4 * 2 * 3 * 9 * 2 + 8 * 8 * 3 * 5 * 2
    assert flops.forward_flops(outer) == expected


def test_skimage_reference_loop_warps_about_half_the_images_and_keeps_the_rest():
    aug = {"probability": 0.5, "scale": [0.95, 1.05], "rotation_deg": 7, "shear_deg": 3, "translation_px": 2}
    rng = np.random.default_rng(0)
    x = rng.random((200, 28, 28, 1)).astype("float32")
    out = augment.skimage_affine_loop(x, aug, seed=1)
    changed = np.array([not np.array_equal(a, b) for a, b in zip(out, x)])
    assert 0.35 < changed.mean() < 0.65
    assert out.shape == x.shape and np.isfinite(out).all()


def test_numpy_crop_flip_reference_returns_crops_of_the_padded_image():
    x = np.arange(2 * 8 * 8 * 3, dtype="float32").reshape(2, 8, 8, 3)
    out = augment.numpy_crop_flip_loop(x, seed=0, pad=2)
    assert out.shape == x.shape
    for k in range(2):
        p = np.pad(x[k], ((2, 2), (2, 2), (0, 0)), mode="reflect")
        windows = [p[r:r + 8, c:c + 8] for r in range(5) for c in range(5)]
        assert any(np.array_equal(out[k], w) or np.array_equal(out[k], w[:, ::-1]) for w in windows)


def test_published_ellipse_loop_makes_masks_that_are_ellipses_only():
    x, y = synthetic.published_ellipses_loop(5, size=64, seed=0)
    assert x.shape == (5, 64, 64, 3) and y.shape == (5, 64, 64, 1)
    assert 0 < y.mean() < 0.5 and set(np.unique(y)) == {0, 1}
    assert (x >= 0).all() and (x < 1).all()


def test_row_ratio_and_goal():
    r = common.row("a", "what", 30.0, 2.0, "images/s", goal=15)
    assert r["ratio"] == 15 and r["met"] == "yes" and r["goal"] == ">= 15"
    r = common.row("b", "what", 12.0, 10.0, "s", goal=1.0, higher_is_better=False, ratio=1.2)
    assert r["met"] == "no" and r["goal"] == "<= 1"
    assert np.isnan(common.row("c", "what", 1.0, float("nan"), "x")["ratio"])


def test_job_total_reads_snakemakes_job_table():
    text = "Job stats:\njob      count\n-----  -----\nall        1\ntrain     12\ntotal     13\n"
    assert workflow.job_total(text) == 13
    assert workflow.job_total("Nothing to be done.") is None


def test_smoke_run_writes_every_requested_row(tmp_path):
    out = tmp_path / "bench" / "bench.csv"
    table = cli.run(out=out, parts=("synthetic",), scale=0.02, repeats=1)
    back = pd.read_csv(out)
    assert list(back["row"]) == ["synthetic/ellipses", "synthetic/ellipses_vs_floor"]
    assert (back["ours"] > 0).all() and (back["theirs"] > 0).all()
    assert back["versions"].str.contains("tensorflow").all()
    assert "| synthetic/ellipses |" in cli.format_table(table)


def test_the_precision_rows_time_each_model_under_both_policies_and_restore_the_default():
    import keras

    from anatomy.bench.precision import bench_precision
    from anatomy.plan import load_config

    rows = bench_precision(load_config(None), scale=0.1, repeats=1, device="CPU")
    assert [r["row"] for r in rows] == ["precision/mnist_cnn", "precision/cnn_medium", "precision/vgg"]
    assert all(r["ours"] > 0 and r["theirs"] > 0 and r["ratio"] == r["ours"] / r["theirs"] for r in rows)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_the_batchnorm_rows_time_each_network_against_its_twin_with_keras_batchnorm():
    import keras

    from anatomy.bench.batchnorm import bench_batchnorm, with_keras_batchnorm
    from anatomy.models.batchnorm import BatchNorm
    from anatomy.models.iic_net import iic_net

    from conftest import tiny_config

    net = iic_net(widths=(4, 8))
    twin = with_keras_batchnorm(net)
    assert sum(isinstance(layer, BatchNorm) for layer in net.layers) == 2
    assert not any(isinstance(layer, BatchNorm) for layer in twin.layers)
    assert sum(type(layer) is keras.layers.BatchNormalization for layer in twin.layers) == 2
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    assert all(np.array_equal(a, b) for a, b in zip(net.predict(x, verbose=0), twin.predict(x, verbose=0)))
    rows = bench_batchnorm(tiny_config(), scale=0.1, repeats=1, device="CPU")  # small nets: it runs, not a timing
    assert [r["row"] for r in rows] == ["batchnorm/vgg", "batchnorm/iic_net", "batchnorm/unet"]
    assert all(r["ours"] > 0 and r["theirs"] > 0 for r in rows)


def test_the_teardown_rows_time_the_pipeline_without_and_with_tf_datas_autotuning():
    from anatomy.bench.teardown import bench_teardown

    from conftest import tiny_config

    rows = bench_teardown(tiny_config(), scale=0.05, repeats=1, device="CPU")  # it runs, not a timing
    assert [r["row"] for r in rows] == ["teardown/vgg", "teardown/cnn_medium_affine"]
    assert all(r["ours"] > 0 and r["theirs"] > 0 and r["unit"] == "images/s" for r in rows)


def test_unknown_part_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--parts", "pipeline,warp"])
    assert "unknown ['warp']" in capsys.readouterr().err


def test_matmul_peak_chains_its_products_so_none_can_be_merged():
    """Each product feeds the next: k independent matmul(a, b) of the same inputs are one
    node after Grappler's CSE (which once made the "peak" k times too high)."""
    import tensorflow as tf

    from anatomy.bench.flops import matmul_chain

    rng = np.random.default_rng(0)
    a, b = rng.random((32, 32)), rng.random((32, 32))
    expected = a.copy()
    for _ in range(4):
        expected = expected @ b / 32
    got = float(matmul_chain(4, 32)(tf.constant(a, tf.float32), tf.constant(b, tf.float32)))
    assert got == pytest.approx(expected.sum(), rel=1e-4)
    assert got != pytest.approx(4 * (a @ b).sum(), rel=1e-2)  # what four merged products would give


def test_the_quick_study_row_reads_the_wall_time_of_the_last_finished_run(tmp_path):
    from anatomy.bench.workflow import last_run_seconds

    log = tmp_path / ".snakemake" / "log"
    log.mkdir(parents=True)
    assert last_run_seconds(tmp_path) is None
    (log / "2026-12-03T100000.000000.snakemake.log").write_text(
        "Building DAG of jobs...\n[Thu Dec  3 10:00:05 2026]\nlocalrule a:\n[Thu Dec  3 10:14:35 2026]\n"
        "Finished jobid: 0 (Rule: all)\n1 of 1 steps (100%) done\n")
    (log / "2026-12-03T110000.000000.snakemake.log").write_text(  # a newer run that was stopped
        "[Thu Dec  3 11:00:00 2026]\nrule b:\n")
    assert last_run_seconds(tmp_path) == (870.0, "2026-12-03T100000.000000.snakemake.log")


def test_the_scaling_rows_workflow_config_is_valid():
    """The small crops workflow the scaling row runs passes the config's own validation (it did not: its
    baseline seeds included the grid's seed, which the confirmation protocol refuses)."""
    import yaml

    from anatomy.config import validate_config

    root = common.ROOT
    cfg = yaml.safe_load((root / "config" / "config.yaml").read_text())
    small = validate_config(scaling.scaling_config(cfg), root / "config" / "schema.yaml")
    assert small["crops"]["baseline"]["seeds"] and small["coreset"]["enabled"] is False
