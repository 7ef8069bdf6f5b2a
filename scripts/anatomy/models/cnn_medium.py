"""CNNMedium, the Digit Recognizer kernel's network (Chainer there, Keras here)."""

from __future__ import annotations

import keras
from keras import layers

SLOPE = 0.05  # the kernel's leaky ReLU slope


def cnn_medium(input_shape=(28, 28, 1), num_classes: int = 10) -> keras.Model:
    """Six 3x3 valid convolutions (16, 32, 32, 32 with stride 2, 64, 32), Dense 30, Dense 10.

    Leaky ReLU (slope 0.05) after every layer but the last; softmax output
    (the kernel's softmax cross-entropy). 28 -> 26 -> 24 -> 22 -> 10 -> 8 -> 6.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for filters, stride in ((16, 1), (32, 1), (32, 1), (32, 2), (64, 1), (32, 1)):
        x = layers.Conv2D(filters, 3, strides=stride, padding="valid")(x)
        x = layers.LeakyReLU(negative_slope=SLOPE)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(30)(x)
    x = layers.LeakyReLU(negative_slope=SLOPE)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="cnn_medium")


def compile_cnn_medium(model: keras.Model, *, learning_rate: float) -> keras.Model:
    """Adam on integer labels (sparse softmax cross-entropy), accuracy tracked."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model
