"""The classic Keras MNIST CNN (keras examples ``mnist_cnn.py``), used by the crops study."""

from __future__ import annotations

import keras
from keras import layers


def mnist_cnn(input_shape=(28, 28, 1), num_classes: int = 10) -> keras.Model:
    """Conv2D 32 3x3 relu, Conv2D 64 3x3 relu, MaxPool 2, Dropout 0.25, Flatten,
    Dense 128 relu, Dropout 0.5, Dense 10 softmax."""
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def compile_mnist_cnn(model: keras.Model, *, learning_rate: float, loss: str) -> keras.Model:
    """Adam at ``learning_rate`` on one-hot labels.

    Both accuracies are tracked by name: ``accuracy`` is the categorical one
    (argmax matches). ``binary_accuracy`` is what Keras' ``metrics=["accuracy"]``
    silently resolved to in the seed, whose loss was binary cross-entropy: it
    scores each of the ten outputs separately and is about 0.9 for a model
    that is always wrong, so the two are reported side by side.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss,
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"), keras.metrics.BinaryAccuracy(name="binary_accuracy")],
    )
    return model
