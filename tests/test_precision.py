"""Mixed precision as a config option: every model computes in the chosen
dtype with float32 outputs, trains, and every run records the choice."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from anatomy.training.setup import PRECISIONS, RunSettings, configure_tensorflow
from conftest import Workflow, tiny_config


@pytest.fixture
def reset_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _mnist_cnn():
    from anatomy.models.mnist_cnn import compile_mnist_cnn, mnist_cnn

    m = compile_mnist_cnn(mnist_cnn(), learning_rate=1e-3, loss="binary_crossentropy")
    return m, np.random.rand(8, 28, 28, 1).astype("float32"), np.eye(10, dtype="float32")[np.arange(8)]


def _cnn_medium():
    from anatomy.models.cnn_medium import cnn_medium, compile_cnn_medium

    m = compile_cnn_medium(cnn_medium(), learning_rate=1e-3)
    return m, np.random.rand(8, 28, 28, 1).astype("float32"), np.arange(8) % 10


def _vgg_noisy_bn():
    from anatomy.models.vgg import vgg_like

    m = vgg_like(widths=(8, 16), dense=16, noise={"shift": 1.0, "scale_max": 2.0, "seed": 0})
    m.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m, np.random.rand(8, 32, 32, 3).astype("float32"), np.arange(8) % 10


def _unet():
    from anatomy.models.unet import compile_unet, residual_unet

    m = compile_unet(residual_unet(image_size=32, start_neurons=4, depth=1, dropout=0.1), learning_rate=1e-3)
    return m, np.random.rand(4, 32, 32, 3).astype("float32"), (np.random.rand(4, 32, 32, 1) > 0.7).astype("float32")


BUILDERS = {"mnist_cnn": _mnist_cnn, "cnn_medium": _cnn_medium, "vgg_noisy_bn": _vgg_noisy_bn, "unet": _unet}


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_models_compute_in_the_policy_and_answer_in_float32(name, precision, reset_policy):
    info = configure_tensorflow(RunSettings(threads=1, seed=0, precision=precision))
    assert info["precision"] == precision
    model, x, y = BUILDERS[name]()
    compute = precision.removeprefix("mixed_")
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert conv.compute_dtype == compute and conv.variable_dtype == "float32"
    assert model.output.dtype == "float32"  # softmax / sigmoid / logits stay float32 for a stable loss
    if precision == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    before = [w.copy() for w in model.get_weights()]
    model.optimizer.build(model.trainable_variables)  # as the training contract does: one trace, not two
    losses = [np.ravel(model.train_on_batch(x, y))[0] for _ in range(2)]  # [loss, metrics...] or loss
    assert np.all(np.isfinite(losses))
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights())), "no weight moved"


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_iic_custom_train_step_scales_the_loss_and_trains(precision, reset_policy):
    from anatomy.models.iic_net import IICTrainer, iic_net

    configure_tensorflow(RunSettings(threads=1, seed=0, precision=precision))
    net = iic_net(widths=(8, 16))
    assert [o.dtype for o in net.outputs] == ["float32", "float32"]
    trainer = IICTrainer(net, alpha=1.0, alpha_over=1.0)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = np.random.rand(16, 28, 28, 1).astype("float32")
    before = [w.copy() for w in net.get_weights()]
    logs = trainer.fit((x, x[:, ::-1]), np.zeros(16), batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, net.get_weights()))


def test_float32_is_the_default_and_unknown_policies_are_refused(reset_policy):
    assert PRECISIONS[0] == "float32"
    assert configure_tensorflow(RunSettings(threads=1, seed=0))["precision"] == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(ValueError, match="precision: 'float16' is not one of"):
        RunSettings(threads=1, seed=0, precision="float16")


@pytest.mark.workflow
def test_changing_precision_reruns_the_trainings_only(tiny_workflow, tmp_path):
    """Training jobs (and what reads them) rerun; data, masks and initial weights do not."""
    jobs = tiny_workflow.dry_run_jobs_under(tiny_config({"precision": "mixed_bfloat16"}), tmp_path)
    # (the crops confirmation runs follow once the checkpoint crops_select has rerun: a dry run cannot list them)
    trainings = {"crops_train", "cifar_train", "iic_train", "digits_train", "coreset_train"}
    assert trainings <= set(jobs), jobs
    feeders = {"mnist_h5", "cifar10_tfrecords", "digits_csv", "ellipses_h5", "digits_arrays", "digits_folds",
               "crops_mask", "cifar_variant", "crops_initial_weights",
               "digits_initial_weights", "digits_fold_initial_weights", "coreset_initial_weights"}
    assert not feeders & set(jobs), feeders & set(jobs)


@pytest.mark.workflow
def test_a_mixed_precision_run_records_it(tmp_path):
    """A real run under mixed_bfloat16 records it in metrics.json and in the results' label."""
    wf = Workflow(tmp_path, tiny_config({"precision": "mixed_bfloat16"}))
    wf.run("results/coreset/control/full/seed0/metrics.json")
    metrics = json.loads((tmp_path / "results/coreset/control/full/seed0/metrics.json").read_text())
    assert metrics["precision"] == "mixed_bfloat16"
    assert 0.0 <= metrics["test"]["score"] <= 1.0
    # the label every figure and the summary carry (shown here through the Kaggle message)
    p = wf.run("-n", "-p", "results/digits/kaggle/submitted_simple.txt")
    assert "(tiny, mixed_bfloat16 config)" in p.stdout + p.stderr
