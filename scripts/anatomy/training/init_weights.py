"""Shared initial weights: one file per (model, seed) that every variant starts from."""

from __future__ import annotations

import hashlib

import numpy as np

BUILDERS = {
    "vgg_like": "anatomy.models.vgg:vgg_like",
    "mnist_cnn": "anatomy.models.mnist_cnn:mnist_cnn",
    "cnn_medium": "anatomy.models.cnn_medium:cnn_medium",
    "residual_unet": "anatomy.models.unet:residual_unet",
}


def write_initial_weights(model_name: str, path, *, seed: int, kwargs: dict | None = None) -> None:
    import importlib

    from anatomy.io import atomic_path
    from anatomy.training.setup import RunSettings, configure_tensorflow

    # GPU memory growth on, as in the trainings: this job may run beside them on a shared card
    configure_tensorflow(RunSettings(threads=1, seed=seed))
    module, fn = BUILDERS[model_name].split(":")
    model = getattr(importlib.import_module(module), fn)(**(kwargs or {}))
    with atomic_path(path) as tmp:
        target = tmp.with_name(tmp.name + ".weights.h5")
        model.save_weights(target)
        target.replace(tmp)


def weights_fingerprint(arrays) -> str:
    """A short sha256 of a model's weights (shapes, dtypes and values): equal only for equal starts."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]
