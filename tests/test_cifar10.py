"""anatomy.data.cifar10: the binary batch format, the archive reader, TFRecord shards + manifest."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest

from anatomy.data.cifar10 import (
    CLASSES,
    RECORD,
    TEST_BATCH,
    TRAIN_BATCHES,
    build_cifar10,
    load_binary_archive,
    parse_binary_batch,
    read_cifar10,
    shard_names,
)
from anatomy.data.sources import DataError


def _images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)


def _batch_bytes(x, y) -> bytes:
    """The official binary layout, built independently: label byte, then R, G, B planes row by row."""
    out = bytearray()
    for img, label in zip(x, y):
        out.append(int(label))
        for c in range(3):
            for r in range(32):
                for col in range(32):
                    out.append(int(img[r, col, c]))
    return bytes(out)


# --------------------------------------------------------------------- binary batches


def test_parse_binary_batch_hwc():
    x, y = _images(3, seed=0)
    raw = _batch_bytes(x, y)
    assert len(raw) == 3 * RECORD
    px, py = parse_binary_batch("b.bin", raw)
    assert px.shape == (3, 32, 32, 3) and px.dtype == np.uint8
    assert py.dtype == np.int64
    np.testing.assert_array_equal(px, x)
    np.testing.assert_array_equal(py, y)
    assert px.flags.c_contiguous


def test_parse_binary_batch_channel_order():
    # One record whose red plane is 1, green 2, blue 3: HWC pixel must be (1, 2, 3).
    raw = bytes([7]) + bytes([1]) * 1024 + bytes([2]) * 1024 + bytes([3]) * 1024
    px, py = parse_binary_batch("b.bin", raw)
    assert py.tolist() == [7]
    assert (px[0] == np.array([1, 2, 3], np.uint8)).all()


@pytest.mark.parametrize("cut", [1, RECORD - 1, RECORD + 1])
def test_parse_binary_batch_truncated(cut):
    x, y = _images(2, seed=1)
    raw = _batch_bytes(x, y)[:-cut]
    with pytest.raises(DataError, match="b.bin.*truncated"):
        parse_binary_batch("b.bin", raw)


def test_parse_binary_batch_bad_label():
    x, y = _images(3, seed=2)
    y[1] = 11
    with pytest.raises(DataError, match=r"b.bin: record 1 has label 11"):
        parse_binary_batch("b.bin", _batch_bytes(x, y))


def test_parse_binary_batch_bad_label_message_matches_record():
    x, y = _images(3, seed=2)
    y[:] = [0, 12, 200]
    with pytest.raises(DataError, match=r"record 1 has label 12\b"):
        parse_binary_batch("b.bin", _batch_bytes(x, y))


def test_parse_binary_batch_empty_file():
    with pytest.raises(DataError, match="b.bin"):
        parse_binary_batch("b.bin", b"")


# --------------------------------------------------------------------- the archive


def _archive(path, batches: dict[str, bytes], folder="cifar-10-batches-bin"):
    with tarfile.open(path, "w:gz") as tar:
        d = tarfile.TarInfo(folder)
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
        for name, data in batches.items():
            ti = tarfile.TarInfo(f"{folder}/{name}")
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        readme = b"fake"
        ti = tarfile.TarInfo(f"{folder}/batches.meta.txt")
        ti.size = len(readme)
        tar.addfile(ti, io.BytesIO(readme))
    return path


def test_load_binary_archive_concatenates(tmp_path):
    parts = {name: _images(k + 1, seed=10 + k) for k, name in enumerate(TRAIN_BATCHES)}
    test = _images(2, seed=99)
    arc = _archive(tmp_path / "cifar-10-binary.tar.gz",
                   {**{n: _batch_bytes(*parts[n]) for n in TRAIN_BATCHES}, TEST_BATCH: _batch_bytes(*test)})
    splits = load_binary_archive(arc)
    assert set(splits) == {"train", "test"}
    xtr, ytr = splits["train"]
    assert len(xtr) == sum(range(1, 6))
    np.testing.assert_array_equal(xtr, np.concatenate([parts[n][0] for n in TRAIN_BATCHES]))
    np.testing.assert_array_equal(ytr, np.concatenate([parts[n][1] for n in TRAIN_BATCHES]))
    np.testing.assert_array_equal(splits["test"][0], test[0])
    np.testing.assert_array_equal(splits["test"][1], test[1])


def test_load_binary_archive_missing_batch(tmp_path):
    batches = {n: _batch_bytes(*_images(1, seed=0)) for n in TRAIN_BATCHES[:-1] + [TEST_BATCH]}
    arc = _archive(tmp_path / "c.tar.gz", batches)
    with pytest.raises(DataError, match="data_batch_5.bin"):
        load_binary_archive(arc)


# --------------------------------------------------------------------- TFRecord shards


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    xtr, ytr = _images(10, seed=3)
    xte, yte = _images(4, seed=4)
    npz = root / "cifar.npz"
    np.savez(npz, x_train=xtr, y_train=ytr[:, None], x_test=xte, y_test=yte)
    out = root / "out"
    counts = build_cifar10(out, source="npz", shards=2, npz=npz)
    return {"out": out, "npz": npz, "counts": counts, "train": (xtr, ytr), "test": (xte, yte)}


def test_build_cifar10_manifest(built):
    out = built["out"]
    assert built["counts"] == {"train": 10, "test": 4}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 10, "test": 4}
    assert manifest["shards"] == {
        "train": ["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"],
        "test": ["test-00000-of-00002.tfrecord", "test-00001-of-00002.tfrecord"],
    }
    assert manifest["shards"]["train"] == shard_names("train", 2)
    assert manifest["classes"] == CLASSES
    assert len(CLASSES) == 10 and CLASSES[0] == "airplane" and CLASSES[-1] == "truck"
    assert manifest["image_shape"] == [32, 32, 3]
    assert manifest["source"] == "npz:cifar.npz"
    assert manifest["sha256"] == hashlib.sha256(built["npz"].read_bytes()).hexdigest()
    names = manifest["shards"]["train"] + manifest["shards"]["test"]
    assert sorted(manifest["checksums"]) == sorted(names)
    for name in names:
        assert manifest["checksums"][name] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    # nothing else in the folder (no leftover temporary files)
    assert sorted(p.name for p in out.iterdir()) == sorted(names + ["manifest.json"])


@pytest.mark.parametrize("split", ["train", "test"])
def test_read_cifar10_roundtrip(built, split):
    idx, x, y = read_cifar10(built["out"] / "manifest.json", split)
    ex, ey = built[split]
    np.testing.assert_array_equal(idx, np.arange(len(ex)))
    assert x.dtype == np.uint8 and x.shape == ex.shape
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)


def test_read_cifar10_unknown_split(built):
    with pytest.raises(DataError, match="valid"):
        read_cifar10(built["out"] / "manifest.json", "valid")


def _record_boundary(data: bytes, records: int) -> int:
    """Byte offset just past the first ``records`` TFRecord records (u64 length, u32 crc, data, u32 crc)."""
    pos = 0
    for _ in range(records):
        pos += 8 + 4 + int.from_bytes(data[pos:pos + 8], "little") + 4
    return pos


@pytest.mark.parametrize("keep", [0.5, 0.9, "boundary"])
def test_read_cifar10_truncated_shard(built, tmp_path, keep):
    out = tmp_path / "copy"
    out.mkdir()
    for p in built["out"].iterdir():
        (out / p.name).write_bytes(p.read_bytes())
    shard = out / "train-00001-of-00002.tfrecord"
    data = shard.read_bytes()
    # "boundary": drop whole records, which no CRC can notice; only the manifest's count can
    cut = _record_boundary(data, 3) if keep == "boundary" else int(len(data) * keep)
    assert 0 < cut < len(data)
    shard.write_bytes(data[:cut])
    with pytest.raises(DataError, match="train"):
        read_cifar10(out / "manifest.json", "train")
    # the other split is untouched and still reads
    assert len(read_cifar10(out / "manifest.json", "test")[0]) == 4
