"""anatomy.models.batchnorm.BatchNorm: Keras's BatchNormalization with TensorFlow's fused kernel in training,
the same mathematics to float32 rounding."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from anatomy.models.batchnorm import BatchNorm

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _pair(shape, momentum=0.9, seed=0, **kwargs):
    """Keras's layer and ours, built on ``shape`` with the same gamma and beta (not the initial 1 and 0)."""
    rng = np.random.default_rng(seed)
    layers = keras.layers.BatchNormalization(momentum=momentum, **kwargs), BatchNorm(momentum=momentum, **kwargs)
    gamma, beta = rng.normal(1, 0.2, shape[-1]), rng.normal(0, 0.2, shape[-1])
    for layer in layers:
        layer.build(shape)
        layer.gamma.assign(gamma.astype("float32"))
        layer.beta.assign(beta.astype("float32"))
    return layers


def _step(layer, x, dy, training=True):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        s = tf.reduce_sum(tf.cast(y, tf.float32) * dy)
    grads = tape.gradient(s, [x, layer.gamma, layer.beta])
    return [np.asarray(y, np.float32), *(np.asarray(g) for g in grads),
            layer.moving_mean.numpy(), layer.moving_variance.numpy()]


def test_a_training_step_matches_keras_batchnorm_to_float32_rounding():
    """Output, the gradients to the input, gamma and beta, and both moving statistics, over three steps
    (so the moving averages compound), on inputs far from zero mean and unit variance."""
    rng = np.random.default_rng(1)
    shape = (64, 8, 8, 5)
    keras_bn, ours = _pair(shape)
    for _ in range(3):
        x = rng.normal(2.0, 3.0, shape).astype("float32")
        dy = rng.normal(size=shape).astype("float32")
        for name, a, b in zip(("y", "dx", "dgamma", "dbeta", "moving_mean", "moving_variance"),
                              _step(keras_bn, x, dy), _step(ours, x, dy)):
            np.testing.assert_allclose(b, a, err_msg=name, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(a).max()))
    assert not np.allclose(ours.moving_variance.numpy(), 1.0)  # the statistics did move


def test_the_moving_variance_is_the_biased_batch_variance_as_in_keras():
    """One step at momentum 0 leaves the batch's own statistics: the variance divides by n, not n - 1."""
    x = np.arange(2 * 2 * 2 * 1, dtype="float32").reshape(2, 2, 2, 1)  # 8 values, 0..7
    layer = BatchNorm(momentum=0.0)
    layer(tf.constant(x), training=True)
    assert layer.moving_mean.numpy()[0] == pytest.approx(3.5)
    assert layer.moving_variance.numpy()[0] == pytest.approx(np.var(np.arange(8)), rel=1e-6)  # 5.25, not 6.0


@pytest.mark.parametrize("case", ["inference", "frozen", "dense input", "no scale"])
def test_everything_but_a_training_step_on_images_is_keras_own_code(case):
    rng = np.random.default_rng(2)
    shape, kwargs, training = (16, 4, 4, 3), {}, True
    if case == "dense input":
        shape = (16, 6)
    if case == "no scale":
        kwargs = {"scale": False}
    keras_bn, ours = _pair(shape, **kwargs) if case != "no scale" else (
        keras.layers.BatchNormalization(momentum=0.9, scale=False), BatchNorm(momentum=0.9, scale=False))
    for layer in (keras_bn, ours):
        if not layer.built:
            layer.build(shape)
        layer.trainable = case != "frozen"
    if case == "inference":
        training = False
    x = rng.normal(1.0, 2.0, shape).astype("float32")
    a, b = keras_bn(x, training=training), ours(x, training=training)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.array_equal(keras_bn.moving_variance.numpy(), ours.moving_variance.numpy())


def test_a_model_trains_with_any_batch_size_and_reloads_in_safe_mode(tmp_path):
    """model.fit traces the layer with an unknown batch size (the last batch is smaller), and the saved
    model loads with Keras's safe mode (the class is registered) and predicts the same."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2))
    x = BatchNorm(momentum=0.9)(keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs))
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(keras.layers.ReLU()(x)))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(3)
    xs, ys = rng.normal(size=(50, 6, 6, 2)).astype("float32"), rng.integers(0, 3, 50)
    hist = model.fit(xs, ys, batch_size=16, epochs=2, verbose=0).history  # 16, 16, 16, 2
    assert np.all(np.isfinite(hist["loss"]))
    model.save(tmp_path / "m.keras")
    back = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(back.layers[2], BatchNorm)
    np.testing.assert_array_equal(back.predict(xs, verbose=0), model.predict(xs, verbose=0))


def test_under_mixed_bfloat16_it_computes_in_float32_and_returns_the_policys_dtype():
    before = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        shape = (32, 4, 4, 3)
        keras_bn, ours = _pair(shape)
        rng = np.random.default_rng(4)
        x = tf.cast(tf.constant(rng.normal(1.0, 2.0, shape).astype("float32")), tf.bfloat16)
        a, b = keras_bn(x, training=True), ours(x, training=True)
        assert b.dtype == tf.bfloat16 and ours.moving_mean.dtype == "float32"
        np.testing.assert_allclose(np.asarray(tf.cast(b, tf.float32)), np.asarray(tf.cast(a, tf.float32)),
                                   rtol=1e-2, atol=1e-2)
        np.testing.assert_allclose(ours.moving_variance.numpy(), keras_bn.moving_variance.numpy(), **TOL)
    finally:
        keras.mixed_precision.set_global_policy(before)


def test_a_training_step_on_images_runs_the_fused_kernel_and_keras_layer_does_not():
    def op_types(layer, training):
        layer.build((None, 4, 4, 3))
        f = tf.function(lambda x: layer(x, training=training))
        return {op.type for op in f.get_concrete_function(tf.TensorSpec((None, 4, 4, 3))).graph.get_operations()}

    assert "FusedBatchNormV3" in op_types(BatchNorm(), True)
    assert "FusedBatchNormV3" not in op_types(keras.layers.BatchNormalization(), True)
    assert "FusedBatchNormV3" not in op_types(BatchNorm(), False)  # inference: Keras's own arithmetic
