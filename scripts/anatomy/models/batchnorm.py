"""BatchNormalization whose training step uses TensorFlow's fused kernel.

Keras 3 normalises a batch with separate operations (the batch's moments, then ``tf.nn.batch_normalization``)
and differentiates through each of them; TensorFlow's fused kernel (oneDNN on a CPU, cuDNN on a GPU) does
the same arithmetic in one pass forward and one backward. On a CPU the separate operations cost about half
of an IIC training step and a third of a VGG-like one (``python -m anatomy.bench --parts batchnorm``).

The mathematics is Keras's: batch statistics in training, moving statistics updated with ``momentum`` from
the batch mean and the *biased* batch variance (the kernel returns the unbiased one, which is rescaled),
moving statistics in inference, computed in float32 under a mixed-precision policy. Outputs, gradients and
moving statistics agree with ``keras.layers.BatchNormalization`` to float32 rounding, not bit for bit (the
kernel sums in another order); tests/test_models.py checks this.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="anatomy")
class BatchNorm(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` with the fused kernel for a training step on 4-D channels-last
    input (every BN of this project's networks but the VGG-like net's dense one). Anything else (inference,
    a frozen layer, another rank or axis, a mask, renorm, synchronised statistics, another backend) is
    Keras's own code."""

    def _fused(self, inputs, training, mask) -> bool:
        return bool(training and self.trainable and mask is None and not self.renorm and not self.synchronized
                    and self.center and self.scale and len(inputs.shape) == 4
                    and self.axis in (3, -1) and keras.backend.backend() == "tensorflow"
                    and keras.backend.standardize_dtype(inputs.dtype) in ("float16", "bfloat16", "float32"))

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = ops.cast(inputs, "float32")  # as Keras: statistics in float32 under a mixed-precision policy
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, ops.cast(self.gamma, "float32"), ops.cast(self.beta, "float32"), epsilon=self.epsilon,
            data_format="NHWC", is_training=True)
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)  # values per channel
        variance = variance * (n - 1.0) / tf.maximum(n, 1.0)  # unbiased -> biased, as Keras keeps it
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(y, self.compute_dtype)
