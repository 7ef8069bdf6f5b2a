"""MNIST -> results/data/mnist.h5 (groups train/test, x uint8 N x 28 x 28 x 1)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from anatomy.io import sha256_file, write_dataset_h5
from anatomy.data.sources import download, load_npz_splits

# The file keras.datasets.mnist.load_data() fetches, with keras' published sha256.
URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
IMAGE_SHAPE = (28, 28, 1)
CLASSES = [str(i) for i in range(10)]


def build_mnist(out_h5, *, source: str, npz=None, url: str = URL, sha256: str = SHA256) -> dict:
    """Build the MNIST HDF5 from ``source`` in {"embedded", "download", "npz"}."""
    if source not in ("embedded", "npz", "download"):
        raise ValueError(f"data.mnist.source: unknown source '{source}' (use embedded, download or npz)")
    with tempfile.TemporaryDirectory(prefix="mnist-") as tmpdir:
        if source == "download":
            npz = download(
                url, Path(tmpdir) / "mnist.npz", checksum=sha256,
                hint="Without network, fetch mnist.npz elsewhere and set data.mnist.source: npz "
                "and data.mnist.path: /path/to/mnist.npz",
            )
        else:
            npz = Path(npz)
        splits = load_npz_splits(npz, image_shape=IMAGE_SHAPE, num_classes=10)
        write_dataset_h5(out_h5, splits, source=f"{source}:{npz.name}", sha256=sha256_file(npz), classes=CLASSES)
    return {k: len(v[0]) for k, v in splits.items()}
