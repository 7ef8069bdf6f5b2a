"""Study 1 (crops): which 9x9 windows of MNIST teach the Keras CNN best.

The seed trained the classic Keras MNIST CNN from one saved set of initial
weights on full images, then on images where "everything but a 9x9 window" was
zeroed. Its loop zeroed only two blocks (above-left and below-right of the
window), which :func:`as_published_mask` reproduces beside the true
:func:`window_mask`.
"""

from __future__ import annotations

import numpy as np

SIDE = 28


def window_mask(i: int, j: int, size: int, side: int = SIDE) -> np.ndarray:
    """Keep exactly the ``size`` x ``size`` window whose top-left pixel is (i, j)."""
    _check(i, j, size, side)
    keep = np.zeros((side, side), dtype=bool)
    keep[i:i + size, j:j + size] = True
    return keep


def as_published_mask(i: int, j: int, size: int, side: int = SIDE) -> np.ndarray:
    """What the seed's loop kept: zero ``[:i, :j]`` and ``[i+size:, j+size:]`` only.

    Everything above-right and below-left of the window stays visible.
    """
    _check(i, j, size, side)
    keep = np.ones((side, side), dtype=bool)
    keep[:i, :j] = False
    keep[i + size:, j + size:] = False
    return keep


MASKS = {"window": window_mask, "as_published": as_published_mask}


def make_mask(kind: str, i: int, j: int, size: int) -> np.ndarray:
    try:
        return MASKS[kind](i, j, size)
    except KeyError:
        raise ValueError(f"unknown mask kind '{kind}' (use {', '.join(MASKS)})") from None


def _check(i, j, size, side):
    if size > side or i < 0 or j < 0 or i + size > side or j + size > side:
        raise ValueError(f"a {size}x{size} window at ({i}, {j}) does not fit a {side}x{side} image")


def apply_mask(x: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """Zero the pixels outside ``keep`` in a batch N x H x W x C (uint8 kept as uint8)."""
    if keep is None:
        return x
    return x * keep[None, :, :, None].astype(x.dtype)


def train_crops_run(*, mnist_h5, init_weights, files, params: dict, mask=None, threads: int, seed: int,
                    deterministic: bool) -> dict:
    """Train the CNN once (baseline when ``mask`` is None) under the training contract.

    The MNIST test set serves as validation, as in the seed; both categorical
    and binary accuracy are recorded.
    """
    from anatomy.training.setup import configure_tensorflow

    device = configure_tensorflow(threads=threads, seed=seed, deterministic=deterministic)
    import keras
    from anatomy.io import read_dataset_h5
    from anatomy.models.mnist_cnn import compile_mnist_cnn, mnist_cnn
    from anatomy.training.contract import PublishedStopping, fit_with_contract
    from anatomy.training.pipeline import ArrayData

    x_train, y_train = read_dataset_h5(mnist_h5, "train")
    x_test, y_test = read_dataset_h5(mnist_h5, "test")
    if params.get("train_size"):
        x_train, y_train = x_train[: params["train_size"]], y_train[: params["train_size"]]
    x_train, x_test = apply_mask(x_train, mask), apply_mask(x_test, mask)

    model = mnist_cnn()
    model.load_weights(init_weights)
    compile_mnist_cnn(model, learning_rate=params["learning_rate"], loss=params["loss"])
    onehot = lambda y: keras.ops.one_hot(y, 10)  # noqa: E731
    data = ArrayData(x_train, y_train, batch_size=params["batch_size"], seed=seed, target=onehot)
    val = (x_test.astype("float32") / 255.0, np.eye(10, dtype="float32")[y_test])
    stop = params["stopping"]

    def evaluate(m):
        return m.evaluate(val[0], val[1], batch_size=1000, verbose=0, return_dict=True)

    return fit_with_contract(
        model, data, epochs=stop["max_epochs"], files=files, validation=val,
        callbacks=[PublishedStopping(stop["patience"], stop["ratio"])], evaluate=evaluate,
        info={"params": params, "seed": seed, "validation": "MNIST test set (as published)",
              "train_images": int(len(x_train)), **device},
    )
