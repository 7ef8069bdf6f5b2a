"""The IIC network (the post's TF2 implementation of Ji et al. 2019) and its training wrapper."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from anatomy.models.batchnorm import BatchNorm


HEADS = ("gap_mlp", "flatten_linear")


def iic_net(input_shape=(28, 28, 1), clusters: int = 10, overclusters: int = 50, widths=(32, 64, 128, 256),
            head: str = "gap_mlp") -> keras.Model:
    """Conv(32)-BN-ReLU-MaxPool, Conv(64)-..., Conv(128)-..., Conv(256)-BN-ReLU; two heads, ``z`` (clusters)
    and ``z_over`` (overclusters), each a softmax on the trunk's features.

    ``head``: ``gap_mlp`` is the post's (global average pooling, then Dense 128 relu -> Dense 64 relu ->
    softmax); ``flatten_linear`` is Ji et al.'s own code (the last feature map flattened, one linear layer ->
    softmax per head), which keeps where in the image each feature is and learns several times faster
    (docs/studies.md, study 3).
    """
    if head not in HEADS:
        raise ValueError(f"iic.head: unknown head '{head}' (use {' or '.join(HEADS)})")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for k, w in enumerate(widths):
        x = layers.Conv2D(w, 3, padding="same", use_bias=False)(x)
        # momentum 0.9 = PyTorch's default, which the official IIC code ran with
        x = BatchNorm(momentum=0.9)(x)
        x = layers.ReLU()(x)
        if k < len(widths) - 1:
            x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x) if head == "gap_mlp" else layers.Flatten()(x)
    outs = []
    for name, k in (("z", clusters), ("z_over", overclusters)):
        h = x
        if head == "gap_mlp":
            h = layers.Dense(64, activation="relu")(layers.Dense(128, activation="relu")(h))
        outs.append(layers.Dense(k, activation="softmax", name=name, dtype="float32")(h))
    return keras.Model(inputs, outs, name="iic_net")


def iic_loss(z, z_twin, alpha: float = 1.0, eps: float = 1e-7):
    """IIC objective for one head (the post's form; alpha is the official code's ``lamb``).

    P = sum_batch outer(z, z'), symmetrised, clipped at ``eps``, normalised to 1;
    loss = sum P (alpha ln Pi + alpha ln Pj - ln P). With alpha = 1 this is minus
    the mutual information between the two cluster assignments.
    """
    p = joint_distribution(z, z_twin, eps)
    pi = tf.reduce_sum(p, axis=1, keepdims=True)
    pj = tf.reduce_sum(p, axis=0, keepdims=True)
    return tf.reduce_sum(p * (alpha * tf.math.log(pi) + alpha * tf.math.log(pj) - tf.math.log(p)))


def joint_distribution(z, z_twin, eps: float = 1e-7):
    p = tf.matmul(z, z_twin, transpose_a=True)
    p = (p + tf.transpose(p)) / 2.0
    p = tf.maximum(p, eps)
    return p / tf.reduce_sum(p)


class IICTrainer(keras.Model):
    """Wraps the network with IIC's custom train step; data are ``((x, x_twin), unused)``.

    The total loss is the mean of the two heads' losses, each with its own alpha.
    With ``alpha_warmup_steps`` = W > 0 each alpha is 1 (the mutual information)
    for the first W optimizer steps, then rises linearly to its value over the
    next W; 0 is the post's constant alpha. Why: with alpha > 1 the uniform output
    is an attractor that a freshly initialised net (whose outputs barely depend on
    the image) falls into at once; below a batch size (``uniform_beats_clusters``)
    it is even the optimum. The step count is the optimizer's, so a resumed run
    continues the schedule where it stopped.
    """

    def __init__(self, net: keras.Model, alpha: float, alpha_over: float, alpha_warmup_steps: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.net, self.alpha, self.alpha_over = net, alpha, alpha_over
        self.alpha_warmup_steps = int(alpha_warmup_steps)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.head_trackers = [keras.metrics.Mean(name="loss_z"), keras.metrics.Mean(name="loss_z_over")]

    def call(self, x, training=False):
        return self.net(x, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker, *self.head_trackers]

    def alphas_now(self):
        """(alpha, alpha_over) at the optimizer's current step: 1, then ramped, during the warm-up."""
        if self.alpha_warmup_steps <= 0:
            return self.alpha, self.alpha_over
        w = float(self.alpha_warmup_steps)
        done = tf.clip_by_value((tf.cast(self.optimizer.iterations, tf.float32) - w) / w, 0.0, 1.0)
        return tuple(1.0 + (a - 1.0) * done for a in (self.alpha, self.alpha_over))

    def pair_loss(self, x, x_twin, training: bool, alphas=None):
        both = self.net(tf.concat([x, x_twin], axis=0), training=training)
        n = tf.shape(x)[0]
        alphas = alphas or (self.alpha, self.alpha_over)
        losses = [iic_loss(out[:n], out[n:], a) for out, a in zip(both, alphas)]
        return (losses[0] + losses[1]) / 2.0, losses

    def train_step(self, data):
        (x, x_twin), _ = data
        with tf.GradientTape() as tape:
            loss, heads = self.pair_loss(x, x_twin, training=True, alphas=self.alphas_now())
            scaled = self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16; identity otherwise
        grads = tape.gradient(scaled, self.net.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.net.trainable_variables))
        self.loss_tracker.update_state(loss)
        for t, h in zip(self.head_trackers, heads):
            t.update_state(h)
        return {m.name: m.result() for m in self.metrics}
