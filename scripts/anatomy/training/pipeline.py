"""tf.data input pipelines whose order depends only on (seed, epoch).

Each epoch's shuffle is drawn from ``(seed, epoch)`` with stateless ops, and
augmentation from ``(seed, epoch, step)``: a job resumed at epoch k sees the
same batches as an uninterrupted run would, so resume does not change results.
Data stay in memory as tensors and are gathered batch by batch (airbench style).

The pipeline is not autotuned by tf.data (``ArrayData.autotune``, default off). With autotuning on, a
fit that ran longer than about a minute could sit idle at its end while the iterator's teardown waited
for the autotuning thread, whose period doubles up to a minute (TensorFlow 2.21): 26 laptop cifar
trainings spent 32 s on average (2-59 s) there before they could evaluate and save. Its knobs are set
instead: the map runs on one tf.data thread per core the process may use (what autotuning chose for the
digits kernel's affine augmentation; one thread was 19% slower there), two batches ahead (with
autotuning off, ``AUTOTUNE`` prefetching was 26% slower for the cifar net on 2 cores).
``python -m anatomy.bench --parts teardown`` times both pipelines.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

PREFETCH_BATCHES = 2


def parallel_calls() -> int:
    """tf.data threads for the map: the cores this process may run on (a SLURM job's, not the node's)."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, len(cores))


def scale_images(x):
    """uint8 -> float32 in [0, 1]."""
    import tensorflow as tf

    return tf.cast(x, tf.float32) / 255.0


@dataclass
class ArrayData:
    """Training data held in memory; batches drawn per epoch from the seed.

    ``preprocess(x_batch)`` maps a uint8 batch to the model's input;
    ``augment(x_batch, seed_pair)`` (optional) is applied to the float batch with
    a stateless seed. ``y`` is mapped by ``target(y_batch)`` (e.g. one-hot).
    """

    x: np.ndarray
    y: np.ndarray
    batch_size: int
    seed: int
    preprocess: Callable = scale_images
    target: Optional[Callable] = None
    augment: Optional[Callable] = None
    autotune: bool = False  # tf.data's autotuning thread (see the module's docstring)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def dataset(self, start_epoch: int, epochs: int):
        import tensorflow as tf

        n = len(self.x)
        xs = tf.constant(self.x)
        ys = tf.constant(self.y)
        seed = tf.constant(self.seed, tf.int64)
        steps = self.steps_per_epoch

        def epoch_indices(e):
            perm = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=tf.stack([seed, e]))
            return tf.data.Dataset.from_tensor_slices(perm).batch(self.batch_size)

        ds = tf.data.Dataset.range(start_epoch, epochs).flat_map(epoch_indices)
        ds = ds.enumerate(start=start_epoch * steps)

        def load(step, idx):
            xb = self.preprocess(tf.gather(xs, idx))
            yb = tf.gather(ys, idx)
            if self.target is not None:
                yb = self.target(yb)
            if self.augment is not None:
                xb = self.augment(xb, tf.stack([seed, step]))
            return xb, yb

        if self.autotune:  # how it ran before: tf.data tunes both knobs
            ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
        else:
            ds = ds.map(load, num_parallel_calls=parallel_calls()).prefetch(PREFETCH_BATCHES)
        options = tf.data.Options()
        options.autotune.enabled = self.autotune
        return ds.with_options(options)
