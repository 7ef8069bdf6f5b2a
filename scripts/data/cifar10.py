"""Rule cifar10_tfrecords: CIFAR-10 (embedded | download | npz) -> TFRecord shards + manifest."""
from pathlib import Path

from anatomy.data.cifar10 import build_cifar10
from anatomy.logs import log_step

with log_step(snakemake):
    p = snakemake.params.cifar10
    counts = build_cifar10(Path(snakemake.output.manifest).parent, source=p["source"], shards=p["shards"],
                           npz=snakemake.input.get("source"))
    print(f"cifar10 TFRecords written from {p['source']}: {counts}")
