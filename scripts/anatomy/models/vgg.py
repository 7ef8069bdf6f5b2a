"""The VGG-like CIFAR-10 net of "CIFAR10 and many graphs", with or without BatchNorm.

Blocks of ``convs_per_block`` 3x3 convolutions (BN before each ReLU when
``batchnorm``) and a 2x2 max-pool; then a hidden dense layer (BN before its
ReLU) and a last dense layer with neither BN nor nonlinearity (logits). L2
weight decay on every kernel. ``noise`` inserts :class:`NoisyBN` after each BN
(Santurkar et al. 2018).
"""

from __future__ import annotations

import keras
from keras import layers, regularizers

from anatomy.models.batchnorm import BatchNorm


@keras.saving.register_keras_serializable(package="anatomy")
class NoisyBN(layers.Layer):
    """Time-varying noise injected after BatchNorm, before the nonlinearity, in training only.

    After Santurkar et al. 2018 ("How does batch normalization help
    optimization?", Sec. 2.1): at every step each channel gets a fresh scale
    s ~ U(1, scale_max) and shift m ~ U(-shift, shift), so the activations the
    next layer sees have non-zero mean and non-unit variance that change every
    step ("internal covariate shift" on purpose). Identity at test time.
    """

    def __init__(self, shift: float = 1.0, scale_max: float = 2.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.shift, self.scale_max = float(shift), float(scale_max)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training:
            return x
        shape = [1] * (len(x.shape) - 1) + [x.shape[-1]]
        s = keras.random.uniform(shape, 1.0, self.scale_max, dtype=x.dtype, seed=self.seed_generator)
        m = keras.random.uniform(shape, -self.shift, self.shift, dtype=x.dtype, seed=self.seed_generator)
        return x * s + m

    def get_config(self):
        return {**super().get_config(), "shift": self.shift, "scale_max": self.scale_max, "seed": self.seed}


def vgg_like(*, widths=(64, 128, 256), convs_per_block: int = 2, dense: int = 256, batchnorm: bool = True,
             noise: dict | None = None, weight_decay: float = 1e-4, input_shape=(32, 32, 3),
             num_classes: int = 10) -> keras.Model:
    reg = regularizers.l2(weight_decay) if weight_decay else None
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs

    def norm_act(x):
        if batchnorm:
            x = BatchNorm()(x)
            if noise:
                x = NoisyBN(**noise)(x)
        return layers.ReLU()(x)

    for w in widths:
        for _ in range(convs_per_block):
            x = layers.Conv2D(w, 3, padding="same", use_bias=not batchnorm, kernel_regularizer=reg)(x)
            x = norm_act(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense, use_bias=not batchnorm, kernel_regularizer=reg)(x)
    x = norm_act(x)
    outputs = layers.Dense(num_classes, kernel_regularizer=reg, name="logits", dtype="float32")(x)
    name = "vgg_like_" + ("noisy_bn" if noise else "bn" if batchnorm else "no_bn")
    return keras.Model(inputs, outputs, name=name)
