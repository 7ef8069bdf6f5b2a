"""Study 1 (crops): which 9x9 windows of MNIST teach the Keras CNN best.

The article trained the classic Keras MNIST CNN from one saved set of initial
weights on full images, then on images where "everything but a 9x9 window" was
zeroed. Its loop zeroed only two blocks (above-left and below-right of the
window), which :func:`as_published_mask` reproduces beside the true
:func:`window_mask`.

This module holds the masks and the training step; the tables, the window
ranking, the confirmation tests, stacking and the published claims are
:mod:`anatomy.studies.crops_results`.
"""

from __future__ import annotations

import numpy as np

from anatomy.training.setup import RunSettings

SIDE = 28


def image_shape(side) -> tuple[int, int]:
    """``side`` as (height, width): an int is a square image, a pair is (H, W)."""
    return (side, side) if np.ndim(side) == 0 else (int(side[0]), int(side[1]))


def window_mask(i: int, j: int, size: int, side=SIDE) -> np.ndarray:
    """Keep exactly the ``size`` x ``size`` window whose top-left pixel is (i, j) of a ``side`` image
    (an int: square; or (H, W))."""
    _check(i, j, size, side)
    keep = np.zeros(image_shape(side), dtype=bool)
    keep[i:i + size, j:j + size] = True
    return keep


def as_published_mask(i: int, j: int, size: int, side=SIDE) -> np.ndarray:
    """What the article's loop kept: zero ``[:i, :j]`` and ``[i+size:, j+size:]`` only.

    Everything above-right and below-left of the window stays visible.
    """
    _check(i, j, size, side)
    keep = np.ones(image_shape(side), dtype=bool)
    keep[:i, :j] = False
    keep[i + size:, j + size:] = False
    return keep


MASKS = {"window": window_mask, "as_published": as_published_mask}


def make_mask(kind: str, i: int, j: int, size: int, side=SIDE) -> np.ndarray:
    try:
        return MASKS[kind](i, j, size, side)
    except KeyError:
        raise ValueError(f"unknown mask kind '{kind}' (use {', '.join(MASKS)})") from None


def _check(i, j, size, side):
    h, w = image_shape(side)
    if i < 0 or j < 0 or i + size > h or j + size > w:
        raise ValueError(f"a {size}x{size} window at ({i}, {j}) does not fit a {h}x{w} image")


def apply_mask(x: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """Zero the pixels outside ``keep`` in a batch N x H x W x C (uint8 kept as uint8)."""
    if keep is None:
        return x
    return x * keep[None, :, :, None].astype(x.dtype)


def split_train_validation(x, y, *, validation_size: int, seed: int):
    """A stratified, seeded hold-out carved from the training set (shared by every run).

    The seed monitored the MNIST test set for its stopping rule and reported the
    best value seen; here stopping and the choice of windows for stacking use
    this split, and the test set is only scored.
    """
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(x))
    tr, va = train_test_split(idx, test_size=validation_size, stratify=y, random_state=seed)
    return np.sort(tr), np.sort(va)


def ink_kept(x: np.ndarray, keep: np.ndarray) -> float:
    """Fraction of the images' total ink (pixel intensity) that the mask keeps."""
    x = x[..., 0].astype(np.float64)
    return float((x * keep).sum() / x.sum())


def train_crops_run(*, mnist_h5, init_weights, files, params: dict, mask=None, run_settings: RunSettings,
                    data_seed: int) -> dict:
    """Train the CNN once (baseline when ``mask`` is None) under the training contract.

    Stopping monitors the held-out split (``val_*``); test accuracy is recorded
    every epoch (``test_accuracy``) so that the article's "best accuracy seen on
    test" can be reported beside the clean number. Writes ``files["predictions"]``:
    the final model's class probabilities on the held-out split and on test.
    """
    from anatomy.training.setup import configure_tensorflow

    device = configure_tensorflow(run_settings)
    seed = run_settings.seed
    import keras
    from anatomy.io import read_dataset_h5, write_npz
    from anatomy.models.mnist_cnn import compile_mnist_cnn, mnist_cnn
    from anatomy.training.contract import EvaluateEachEpoch, PublishedStopping, fit_with_contract
    from anatomy.training.pipeline import ArrayData

    x_all, y_all = read_dataset_h5(mnist_h5, "train")
    x_test, y_test = read_dataset_h5(mnist_h5, "test")
    tr, va = split_train_validation(x_all, y_all, validation_size=params["validation_size"], seed=data_seed)
    if params.get("train_size"):
        tr = tr[: params["train_size"]]
    prep = lambda x: apply_mask(x, mask).astype("float32") / 255.0  # noqa: E731
    onehot = lambda y: np.eye(10, dtype="float32")[y]  # noqa: E731
    x_train, y_train = apply_mask(x_all[tr], mask), y_all[tr]
    val = (prep(x_all[va]), onehot(y_all[va]))
    test = (prep(x_test), onehot(y_test))

    model = mnist_cnn()
    model.load_weights(init_weights)
    compile_mnist_cnn(model, learning_rate=params["learning_rate"], loss=params["loss"])
    data = ArrayData(x_train, y_train, batch_size=params["batch_size"], seed=seed,
                     target=lambda y: keras.ops.one_hot(y, 10))
    stop = params["stopping"]

    def evaluate(m):
        return m.evaluate(*test, batch_size=1000, verbose=0, return_dict=True)

    def finish(m, metrics):
        write_npz(files["predictions"], val=m.predict(val[0], batch_size=1000, verbose=0), val_labels=y_all[va],
                  test=m.predict(test[0], batch_size=1000, verbose=0), test_labels=y_test)

    return fit_with_contract(
        model, data, epochs=stop["max_epochs"], files=files, validation=val,
        callbacks=[EvaluateEachEpoch(test, prefix="test_"), PublishedStopping(stop["patience"], stop["ratio"])],
        evaluate=evaluate, finish=finish,
        info={"params": params, "seed": seed, "validation": f"{len(va)} images held out from the training set",
              "train_images": int(len(tr)), **device},
    )


def write_mask(path, kind: str, i: int, j: int, size: int) -> None:
    """A window variant as a file: the 28x28 boolean keep-mask (784 bytes), never a copy of MNIST."""
    from anatomy.io import atomic_path

    keep = make_mask(kind, i, j, size)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, keep)
