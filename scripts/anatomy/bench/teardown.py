"""Rows ``teardown/*``: the workflow's training pipeline (:class:`anatomy.training.pipeline.ArrayData`,
tf.data's autotuning thread off) vs the same pipeline with that thread on (how it ran until then).

With autotuning on, a study's training sat idle after its last epoch until the autotuning thread's next
tick (its period doubles up to a minute; TensorFlow 2.21): 26 laptop cifar trainings at c50b220 spent 32 s
on average (2-59 s) between their last epoch and their evaluation. A bare ``fit`` here (no per-epoch
evaluation, one process) did not wait on either side in two tries of 150 s, so the wait is measured where
it happened, in the studies' ``metrics.json`` (``wall_seconds_this_run`` minus ``train_seconds``), and
these rows check that turning autotuning off costs no speed:

- ``teardown/vgg``, ``teardown/cnn_medium_affine``: images/s of a training epoch through each pipeline
  (the cifar net on its preprocessing; the digits net with the kernel's affine augmentation, the heaviest
  map of the studies), interleaved: turning autotuning off must not slow the steps. Both sides draw the
  same batches (tests/test_pipeline.py).
"""

from __future__ import annotations

import numpy as np

from anatomy.bench.common import row, side_by_side, study_models


def bench_teardown(cfg: dict, *, scale: float, repeats: int, device: str) -> list:
    from anatomy.studies.cifar import normalize
    from anatomy.training.augment import augment_batch
    from anatomy.training.pipeline import ArrayData

    rng = np.random.default_rng(0)
    models = study_models(cfg)
    aug = cfg["digits"]["augmentation"]
    setups = {  # name: (model key, images, preprocess, augment)
        "vgg": ("vgg", rng.integers(0, 256, (4096, 32, 32, 3), dtype=np.uint8), normalize, None),
        "cnn_medium_affine": ("cnn_medium", rng.integers(0, 256, (4096, 28, 28, 1), dtype=np.uint8), None,
                              lambda xb, s: augment_batch(xb, s, aug)),
    }
    rows = []
    steps = max(2, int(round(60 * scale)))
    for name, (key, images, preprocess, augment) in setups.items():
        what, build, _, b, _ = models[key]
        model = build()
        n = min(len(images), b * steps)
        labels = rng.integers(0, 10, n)
        kwargs = {"preprocess": preprocess} if preprocess is not None else {}

        def fit(autotune, model=model, images=images[:n], labels=labels, b=b, kwargs=kwargs, augment=augment):
            model.fit(ArrayData(images, labels, batch_size=b, seed=0, augment=augment, autotune=autotune,
                                **kwargs).dataset(0, 1), epochs=1, verbose=0)
            return len(images)

        fit(False), fit(True)  # tracing
        r_ours, r_theirs = side_by_side(lambda: fit(False), lambda: fit(True), repeats)
        rows.append(row(f"teardown/{name}", f"{what} training, batch {b}: pipeline without vs with tf.data "
                        "autotuning", r_ours, r_theirs, "images/s", goal=0.95, device=device))
    return rows
