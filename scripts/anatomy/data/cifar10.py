"""CIFAR-10 -> TFRecord shards + manifest.json (docs/design.md, "Dataset files").

One ``tf.train.Example`` per image: ``index`` (int64, position in its split),
``image`` (raw uint8 bytes, 32x32x3), ``label`` (int64). ``index`` lets a
variant (corrupted labels, permuted pixels) override one record by position
without copying the set. The download is the official *binary* version: raw
bytes, no unpickling.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from anatomy.io import atomic_path, sha256_file, write_json
from anatomy.data.sources import DataError, download, load_npz_splits, read_tar_files

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # published on the dataset's home page
IMAGE_SHAPE = (32, 32, 3)
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_BATCHES = [f"data_batch_{i}.bin" for i in range(1, 6)]
TEST_BATCH = "test_batch.bin"
RECORD = 1 + 32 * 32 * 3


def shard_names(split: str, shards: int) -> list[str]:
    return [f"{split}-{i:05d}-of-{shards:05d}.tfrecord" for i in range(shards)]


def parse_binary_batch(name: str, raw: bytes):
    """Decode one file of the binary version: 1 label byte + 3072 CHW pixel bytes per image."""
    if len(raw) % RECORD:
        raise DataError(f"{name}: {len(raw)} bytes is not a multiple of the {RECORD}-byte record; truncated file")
    if not raw:
        raise DataError(f"{name}: empty file, expected {RECORD}-byte records")
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
    y = arr[:, 0].astype(np.int64)
    if y.max() > 9:
        bad = int(np.argmax(y > 9))
        raise DataError(f"{name}: record {bad} has label {y[bad]}, outside 0..9")
    x = arr[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), y


def load_binary_archive(archive):
    files = read_tar_files(archive, TRAIN_BATCHES + [TEST_BATCH])
    parts = [parse_binary_batch(n, files[n]) for n in TRAIN_BATCHES]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return {"train": train, "test": parse_binary_batch(TEST_BATCH, files[TEST_BATCH])}


def build_cifar10(out_dir, *, source: str, shards: int, npz=None, url: str = URL, md5: str = MD5) -> dict:
    """Build shards + manifest under ``out_dir`` from ``source`` in {embedded, download, npz}."""
    if source not in ("embedded", "npz", "download"):
        raise ValueError(f"data.cifar10.source: unknown source '{source}' (use embedded, download or npz)")
    with tempfile.TemporaryDirectory(prefix="cifar10-") as tmpdir:
        if source == "download":
            src = download(
                url, Path(tmpdir) / "cifar-10-binary.tar.gz", checksum=md5, algorithm="md5",
                hint="Without network, fetch cifar-10-binary.tar.gz elsewhere and convert it to a keras-layout "
                "npz, then set data.cifar10.source: npz and data.cifar10.path",
            )
            splits = load_binary_archive(src)
        else:
            src = Path(npz)
            splits = load_npz_splits(src, image_shape=IMAGE_SHAPE, num_classes=10)
        source_sha = sha256_file(src)
    return write_tfrecords(out_dir, splits, shards=shards, source=f"{source}:{src.name}", sha256=source_sha)


def write_tfrecords(out_dir, splits: dict, *, shards: int, source: str, sha256: str) -> dict:
    import tensorflow as tf

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"source": source, "sha256": sha256, "classes": CLASSES, "image_shape": list(IMAGE_SHAPE),
                "counts": {}, "shards": {}, "checksums": {}}
    for split, (x, y) in splits.items():
        names = shard_names(split, shards)
        bounds = np.linspace(0, len(x), shards + 1).astype(int)
        for name, lo, hi in zip(names, bounds[:-1], bounds[1:]):
            with atomic_path(out_dir / name) as tmp:
                with tf.io.TFRecordWriter(str(tmp)) as w:
                    for i in range(lo, hi):
                        ex = tf.train.Example(features=tf.train.Features(feature={
                            "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
                            "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[x[i].tobytes()])),
                            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(y[i])])),
                        }))
                        w.write(ex.SerializeToString())
            manifest["checksums"][name] = sha256_file(out_dir / name)
        manifest["counts"][split] = int(len(x))
        manifest["shards"][split] = names
    write_json(out_dir / "manifest.json", manifest)  # last: its presence means the set is whole
    return manifest["counts"]


def read_cifar10(manifest_path, split: str):
    """Read one split back into memory: ``(index, x uint8 N x 32 x 32 x 3, y int64)`` ordered by index."""
    import tensorflow as tf

    manifest_path = Path(manifest_path)
    manifest = json.loads(manifest_path.read_text())
    if split not in manifest.get("shards", {}):
        raise DataError(f"{manifest_path}: no split '{split}'")
    files = [str(manifest_path.parent / n) for n in manifest["shards"][split]]
    spec = {"index": tf.io.FixedLenFeature([], tf.int64), "image": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64)}
    n = manifest["counts"][split]
    idx = np.empty(n, np.int64)
    x = np.empty((n, 32, 32, 3), np.uint8)
    y = np.empty(n, np.int64)
    k = 0
    try:
        ds = tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, spec)).batch(1024)
        for b in ds.as_numpy_iterator():
            m = len(b["index"])
            if k + m > n:
                break
            idx[k:k + m] = b["index"]
            y[k:k + m] = b["label"]
            x[k:k + m] = np.frombuffer(b"".join(b["image"]), np.uint8).reshape(m, 32, 32, 3)
            k += m
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, ValueError) as e:
        raise DataError(f"{manifest_path.parent}: TFRecord shards of '{split}' are damaged ({str(e).splitlines()[0]}); delete the folder and rerun") from e
    if k != n:
        raise DataError(f"{manifest_path}: manifest says {n} '{split}' records, the shards hold {k}; truncated shard")
    order = np.argsort(idx, kind="stable")
    return idx[order], x[order], y[order]
