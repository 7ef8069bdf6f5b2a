"""The training input pipeline (anatomy.training.pipeline): its tf.data knobs and the batches it draws."""

from __future__ import annotations

import numpy as np


def _data(**kwargs):
    from anatomy.training.pipeline import ArrayData

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 6, 6, 1), dtype=np.uint8)
    return ArrayData(x, np.arange(50), batch_size=8, seed=4, **kwargs)


def test_the_pipeline_runs_without_tf_datas_autotuning_thread_and_sets_its_knobs():
    """The autotuning thread held every long fit's end for up to 60 s (TensorFlow 2.21): it is off,
    and the map's threads and the prefetch depth are set instead of AUTOTUNE (which, with autotuning
    off, means one thread per core and was 26% slower for the cifar net)."""
    import tensorflow as tf

    from anatomy.training.pipeline import PREFETCH_BATCHES, parallel_calls

    def knobs(ds):  # (map threads, prefetch depth): tf.data has no public accessor for them
        prefetch = ds._input_dataset  # noqa: SLF001 - under the options
        return int(prefetch._input_dataset._num_parallel_calls), int(prefetch._buffer_size)  # noqa: SLF001

    ours, tuned = _data().dataset(0, 2), _data(autotune=True).dataset(0, 2)
    assert ours.options().autotune.enabled is False
    assert knobs(ours) == (parallel_calls(), PREFETCH_BATCHES) and PREFETCH_BATCHES >= 1
    assert tuned.options().autotune.enabled is True and knobs(tuned) == (tf.data.AUTOTUNE, tf.data.AUTOTUNE)


def test_map_threads_are_the_cores_this_process_may_use_not_the_machines(monkeypatch):
    from anatomy.training import pipeline

    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 64)  # a cluster node
    monkeypatch.setattr(pipeline.os, "sched_getaffinity", lambda pid: {3, 4, 5}, raising=False)  # the job's cores
    assert pipeline.parallel_calls() == 3
    monkeypatch.delattr(pipeline.os, "sched_getaffinity")  # macOS has no affinity: every core
    assert pipeline.parallel_calls() == 64


def test_with_or_without_autotuning_the_batches_are_the_same_and_follow_the_seed_and_epoch():
    def batches(data, start=0):
        return [(x.numpy(), y.numpy()) for x, y in data.dataset(start, 3)]

    ours, tuned = batches(_data()), batches(_data(autotune=True))
    assert len(ours) == 3 * 7  # 50 images in batches of 8, three epochs
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(ours, tuned))
    assert sorted(np.concatenate([y for _, y in ours[:7]]).tolist()) == list(range(50))  # an epoch is a permutation
    assert not np.array_equal(ours[0][1], ours[7][1])  # each epoch its own order
    resumed = batches(_data(), start=1)  # a job resumed after epoch 1 sees the batches it would have seen
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(ours[7:], resumed))
