"""The residual U-Net of the coreset study, and its loss (binary cross-entropy + Dice).

The architecture is the one the post used (the "U-net with simple ResNet
blocks" popular in Kaggle's TGS Salt and Airbus Ship competitions): per level a
Conv 3x3 and two residual blocks (BN-ReLU, conv-BN-ReLU, conv-BN, add), the
second followed by BN-ReLU; MaxPool + Dropout on the way down, Conv2DTranspose
+ concatenate + Dropout on the way up; a middle block at the bottom; a final
1x1 convolution with a sigmoid. The post: start_neurons 16, four down steps
(128 -> 8), dropout 0.5.
"""

from __future__ import annotations

import keras
from keras import layers

from anatomy.models.batchnorm import BatchNorm


def _bn_relu(x, momentum):
    return layers.Activation("relu")(BatchNorm(momentum=momentum)(x))


def residual_block(x, filters: int, activate: bool = False, momentum: float = 0.99):
    """BN-ReLU, conv-BN-ReLU, conv-BN, add the input (then BN-ReLU when ``activate``)."""
    y = _bn_relu(x, momentum)
    y = _bn_relu(layers.Conv2D(filters, 3, padding="same")(y), momentum)
    y = BatchNorm(momentum=momentum)(layers.Conv2D(filters, 3, padding="same")(y))
    y = layers.Add()([y, x])
    return _bn_relu(y, momentum) if activate else y


def _level(x, filters: int, momentum: float):
    x = layers.Conv2D(filters, 3, padding="same")(x)
    x = residual_block(x, filters, momentum=momentum)
    return residual_block(x, filters, activate=True, momentum=momentum)


def residual_unet(image_size: int, start_neurons: int = 16, depth: int = 4, dropout: float = 0.5,
                  batch_norm_momentum: float = 0.99, channels: int = 3) -> keras.Model:
    """U-Net with ``depth`` down steps; widths start_neurons x 1, 2, 4, ... and x 2**depth in the middle.

    ``batch_norm_momentum`` 0.99 is Keras' default (the post's); the short quick
    runs take fewer steps than the moving statistics need to settle at 0.99, and
    the selection scores pairs in inference mode, so they use a lower value.
    """
    if image_size % (2 ** depth):
        raise ValueError(f"image_size={image_size} is not divisible by 2**depth={2 ** depth} "
                         f"(each of the {depth} down steps halves it)")
    inputs = keras.Input((image_size, image_size, channels), name="image")
    skips, x = [], inputs
    for level in range(depth):
        x = _level(x, start_neurons * 2 ** level, batch_norm_momentum)
        skips.append(x)
        x = layers.Dropout(dropout)(layers.MaxPooling2D(2)(x))
    x = _level(x, start_neurons * 2 ** depth, batch_norm_momentum)  # the middle block
    for level in reversed(range(depth)):
        filters = start_neurons * 2 ** level
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same")(x)
        x = layers.Dropout(dropout)(layers.Concatenate()([x, skips[level]]))
        x = _level(x, filters, batch_norm_momentum)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="mask", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="residual_unet")


def dice_coefficient(y_true, y_pred, smooth: float = 1.0):
    """Soft Dice over the whole batch, smoothed (the post's ``dice_coef``)."""
    from keras import ops

    t = ops.reshape(ops.cast(y_true, "float32"), (-1,))
    p = ops.reshape(y_pred, (-1,))
    inter = ops.sum(t * p)
    return (2.0 * inter + smooth) / (ops.sum(t) + ops.sum(p) + smooth)


def bce_dice_loss(y_true, y_pred):
    """Binary cross-entropy + (1 - Dice), the post's loss."""
    from keras import ops

    y_true = ops.cast(y_true, "float32")
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))
    return bce + 1.0 - dice_coefficient(y_true, y_pred)


def compile_unet(model: keras.Model, *, learning_rate: float, metrics=()) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=bce_dice_loss, metrics=list(metrics))
    return model
