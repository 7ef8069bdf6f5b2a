"""Benchmarks: every speed claim as a ratio of two sides measured in one run.

``python -m anatomy.bench`` writes ``results/bench/bench.csv`` and prints the
table. Each row runs both sides in this process (or, for the workflow rows,
both Snakemake runs in this run), on the same data, interleaved (A, B, A, B)
with the best of the repeats kept, so that a noisy neighbour hurts both sides
alike. Rows:

- ``pipeline/<model>``: training images/s through the workflow's data path
  (HDF5 / TFRecord file -> in-memory tensors -> tf.data -> ``fit``) vs plain
  ``model.fit`` on NumPy arrays (what the published notebooks did).
- ``augment/digits``, ``augment/cifar``: the batched affine transform and the
  batched pad-crop-flip vs per-image loops (scikit-image ``AffineTransform`` +
  ``warp``, NumPy pad/crop/flip); ``augment/digits_vs_training`` compares the
  augmentation's throughput with the training step it feeds.
- ``synthetic/ellipses``: pairs/s of the vectorised generator vs a per-image
  loop like the published one.
- ``flops/<model>``: achieved FLOP/s of a training step (FLOPs counted from the
  layer shapes) as a fraction of the float32 matmul peak measured in this run.
- ``workflow/dag_full``, ``workflow/noop_quick``: Snakemake's DAG build for
  ``config/full.yaml`` and a rerun with nothing to do.
- ``scaling/epoch``, ``scaling/cores``: seconds per epoch against the training
  set size (linear fit), and a small workflow with ``--cores 1`` vs ``--cores 2``.

Nothing here is a test: goals are printed beside the numbers, never asserted.

One module per family (``pipeline``, ``augment``, ``synthetic``, ``flops``,
``workflow``, ``scaling``, ``startup``), the helpers they share in ``common``
and the command line in ``cli``.
"""
