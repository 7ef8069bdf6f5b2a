"""anatomy.data.sources and anatomy.data.mnist: npz validation, verified downloads, safe archives."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from anatomy.data.mnist import build_mnist
from anatomy.data.sources import (
    DataError,
    DownloadError,
    download,
    load_npz_splits,
    read_tar_files,
    safe_tar_members,
    verify_checksum,
)
from anatomy.io import read_dataset_h5, read_h5_attrs, sha256_file, write_dataset_h5

MNIST_SHAPE = (28, 28, 1)


def _arrays(n_train=6, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.int64),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.int64),
    }


def _npz(path, **overrides):
    arrays = _arrays()
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def _load(path):
    return load_npz_splits(path, image_shape=MNIST_SHAPE, num_classes=10)


# --------------------------------------------------------------------- load_npz_splits


def test_load_npz_good_adds_channel_axis(tmp_path):
    arrays = _arrays()
    path = _npz(tmp_path / "m.npz")
    splits = _load(path)
    assert set(splits) == {"train", "test"}
    for split in ("train", "test"):
        x, y = splits[split]
        assert x.shape == (len(arrays[f"x_{split}"]), 28, 28, 1)
        assert x.dtype == np.uint8
        assert y.dtype == np.int64
        np.testing.assert_array_equal(x[..., 0], arrays[f"x_{split}"])
        np.testing.assert_array_equal(y, arrays[f"y_{split}"])


def test_load_npz_missing_array_names_file_and_key(tmp_path):
    path = _npz(tmp_path / "m.npz", x_train=None)
    with pytest.raises(DataError) as e:
        _load(path)
    assert str(path) in str(e.value)
    assert "x_train" in str(e.value)


def test_load_npz_wrong_shape(tmp_path):
    path = _npz(tmp_path / "m.npz", x_test=np.zeros((4, 27, 28), np.uint8))
    with pytest.raises(DataError, match="x_test") as e:
        _load(path)
    assert "shape" in str(e.value) and str(path) in str(e.value)


def test_load_npz_wrong_dtype(tmp_path):
    path = _npz(tmp_path / "m.npz", x_train=np.zeros((6, 28, 28), np.float32))
    with pytest.raises(DataError, match="x_train") as e:
        _load(path)
    assert "float32" in str(e.value) and "uint8" in str(e.value)


def test_load_npz_label_out_of_range_names_array_and_row(tmp_path):
    y = np.array([0, 1, 2, 10, 3, 4])
    path = _npz(tmp_path / "m.npz", y_train=y)
    with pytest.raises(DataError) as e:
        _load(path)
    msg = str(e.value)
    assert "y_train" in msg and "row 3" in msg and "10" in msg and str(path) in msg


def test_load_npz_negative_label(tmp_path):
    path = _npz(tmp_path / "m.npz", y_test=np.array([0, -1, 2, 3]))
    with pytest.raises(DataError, match=r"y_test.*row 1"):
        _load(path)


def test_load_npz_empty_array(tmp_path):
    path = _npz(tmp_path / "m.npz", x_test=np.zeros((0, 28, 28), np.uint8), y_test=np.zeros(0, np.int64))
    with pytest.raises(DataError, match="x_test.*empty"):
        _load(path)


def test_load_npz_mismatched_lengths(tmp_path):
    path = _npz(tmp_path / "m.npz", y_train=np.arange(5) % 10)
    with pytest.raises(DataError) as e:
        _load(path)
    assert "x_train" in str(e.value) and "y_train" in str(e.value) and "6" in str(e.value) and "5" in str(e.value)


def test_load_npz_labels_n_by_1_accepted(tmp_path):
    arrays = _arrays()
    path = _npz(tmp_path / "m.npz", y_train=arrays["y_train"][:, None], y_test=arrays["y_test"][:, None])
    splits = _load(path)
    assert splits["train"][1].shape == (6,)
    np.testing.assert_array_equal(splits["train"][1], arrays["y_train"])
    np.testing.assert_array_equal(splits["test"][1], arrays["y_test"])


def test_load_npz_not_an_npz(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match="not a readable"):
        _load(path)


class _Touch:
    """Unpickling this creates a marker file: proof that the loader unpickled something."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_load_npz_never_unpickles(tmp_path):
    marker = tmp_path / "unpickled"
    y = np.array([0, 1, 2, 3, 4, _Touch(marker)], dtype=object)
    path = _npz(tmp_path / "m.npz", y_train=y)
    with pytest.raises(ValueError):
        _load(path)
    assert not marker.exists()


def test_load_npz_object_array_is_data_error_naming_file(tmp_path):
    path = _npz(tmp_path / "m.npz", y_train=np.array([0, 1, 2, 3, 4, None], dtype=object))
    with pytest.raises(DataError) as e:
        _load(path)
    assert str(path) in str(e.value) and "y_train" in str(e.value)


# --------------------------------------------------------------------- checksums and downloads


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_verify_checksum_ok_and_mismatch(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"hello")
    assert verify_checksum(f, _sha256(b"hello").upper()) == _sha256(b"hello")
    with pytest.raises(DataError, match="checksum mismatch"):
        verify_checksum(f, _sha256(b"hellO"))
    with pytest.raises(DataError, match="md5"):
        verify_checksum(f, "0" * 32, algorithm="md5")


def test_download_file_url_correct_checksum(tmp_path):
    src = tmp_path / "src" / "data.bin"
    src.parent.mkdir()
    payload = b"some bytes" * 1000
    src.write_bytes(payload)
    dest_dir = tmp_path / "dl"
    dest = download(src.as_uri(), dest_dir / "data.bin", checksum=_sha256(payload))
    assert dest == dest_dir / "data.bin"
    assert dest.read_bytes() == payload
    assert sorted(p.name for p in dest_dir.iterdir()) == ["data.bin"]


def test_download_wrong_checksum_leaves_nothing(tmp_path):
    src = tmp_path / "src" / "data.bin"
    src.parent.mkdir()
    src.write_bytes(b"payload")
    dest_dir = tmp_path / "dl"
    with pytest.raises(DataError, match="checksum mismatch"):
        download(src.as_uri(), dest_dir / "data.bin", checksum=_sha256(b"other"))
    assert not (dest_dir / "data.bin").exists()
    assert list(dest_dir.iterdir()) == []


def test_download_wrong_checksum_keeps_existing_dest_untouched(tmp_path):
    # A failed download must not damage or replace a file of the same name.
    src = tmp_path / "src.bin"
    src.write_bytes(b"new")
    dest = tmp_path / "dl" / "data.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    with pytest.raises(DataError):
        download(src.as_uri(), dest, checksum=_sha256(b"x"))
    assert sorted(p.name for p in dest.parent.iterdir()) == ["data.bin"]


def test_download_unreachable_url(tmp_path):
    url = "http://127.0.0.1:9/x.npz"
    dest_dir = tmp_path / "dl"
    with pytest.raises(DownloadError) as e:
        download(url, dest_dir / "x.npz", checksum="0" * 64, hint="Try the npz source instead.", timeout=2)
    msg = str(e.value)
    assert url in msg
    assert "Try the npz source instead." in msg
    assert list(dest_dir.iterdir()) == []


def test_download_missing_local_file(tmp_path):
    url = (tmp_path / "absent.npz").as_uri()
    with pytest.raises(DownloadError, match="absent.npz"):
        download(url, tmp_path / "dl" / "x.npz", checksum="0" * 64)
    assert list((tmp_path / "dl").iterdir()) == []


# --------------------------------------------------------------------- build_mnist and HDF5


def test_build_mnist_from_npz_roundtrip(tmp_path):
    arrays = _arrays(n_train=7, n_test=3)
    npz = tmp_path / "mnist.npz"
    np.savez(npz, **arrays)
    out = tmp_path / "out" / "mnist.h5"
    counts = build_mnist(out, source="npz", npz=npz)
    assert counts == {"train": 7, "test": 3}
    for split in ("train", "test"):
        x, y = read_dataset_h5(out, split)
        assert x.shape == (len(arrays[f"x_{split}"]), 28, 28, 1)
        assert x.dtype == np.uint8
        np.testing.assert_array_equal(x[..., 0], arrays[f"x_{split}"])
        np.testing.assert_array_equal(y, arrays[f"y_{split}"])
    attrs = read_h5_attrs(out)
    assert attrs["source"] == "npz:mnist.npz"
    assert attrs["sha256"] == sha256_file(npz)
    assert list(attrs["classes"]) == [str(i) for i in range(10)]
    # only the output, no temporary files beside it
    assert sorted(p.name for p in out.parent.iterdir()) == ["mnist.h5"]


def test_build_mnist_download_wrong_checksum_writes_nothing(tmp_path):
    npz = tmp_path / "mnist.npz"
    np.savez(npz, **_arrays())
    out = tmp_path / "out" / "mnist.h5"
    with pytest.raises(DataError, match="checksum mismatch"):
        build_mnist(out, source="download", url=npz.as_uri(), sha256="0" * 64)
    assert not out.exists()


def test_build_mnist_download_correct_checksum(tmp_path):
    npz = tmp_path / "mnist.npz"
    np.savez(npz, **_arrays())
    out = tmp_path / "mnist.h5"
    build_mnist(out, source="download", url=npz.as_uri(), sha256=sha256_file(npz))
    assert read_h5_attrs(out)["sha256"] == sha256_file(npz)
    assert read_h5_attrs(out)["source"].startswith("download:")


def test_build_mnist_unknown_source(tmp_path):
    with pytest.raises(ValueError, match="data.mnist.source"):
        build_mnist(tmp_path / "m.h5", source="ftp")
    assert not (tmp_path / "m.h5").exists()


def test_read_dataset_h5_truncated_names_path(tmp_path):
    rng = np.random.default_rng(1)
    splits = {s: (rng.integers(0, 256, (300, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 300))
              for s in ("train", "test")}
    path = tmp_path / "d.h5"
    write_dataset_h5(path, splits, source="test", sha256="0" * 64, classes=range(10))
    x, _ = read_dataset_h5(path, "train")
    np.testing.assert_array_equal(x, splits["train"][0])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as e:
        for split in ("train", "test"):
            read_dataset_h5(path, split)
    assert str(path) in str(e.value)


def test_read_dataset_h5_missing_split(tmp_path):
    path = tmp_path / "d.h5"
    write_dataset_h5(path, {"train": (np.zeros((2, 4, 4, 1), np.uint8), np.zeros(2))},
                     source="t", sha256="0", classes=["a"])
    with pytest.raises(ValueError, match="test"):
        read_dataset_h5(path, "test")


def test_read_dataset_h5_not_hdf5(tmp_path):
    path = tmp_path / "d.h5"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="not a readable HDF5"):
        read_dataset_h5(path, "train")


# --------------------------------------------------------------------- archives


def _tar(path, members):
    """members: list of (TarInfo-kwargs, bytes or None)."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            ti = tarfile.TarInfo(info.pop("name"))
            for k, v in info.items():
                setattr(ti, k, v)
            if data is not None:
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            else:
                tar.addfile(ti)
    return path


def test_read_tar_files_good(tmp_path):
    arc = _tar(tmp_path / "a.tar.gz", [
        ({"name": "folder", "type": tarfile.DIRTYPE}, None),
        ({"name": "folder/a.bin"}, b"AAA"),
        ({"name": "folder/b.bin"}, b"BBBB"),
        ({"name": "folder/c.bin"}, b"C"),
    ])
    assert read_tar_files(arc, ["a.bin", "b.bin"]) == {"a.bin": b"AAA", "b.bin": b"BBBB"}
    with tarfile.open(arc, "r:gz") as tar:
        assert [m.name for m in safe_tar_members(arc, tar)] == ["folder/a.bin", "folder/b.bin", "folder/c.bin"]


def test_read_tar_files_missing_member(tmp_path):
    arc = _tar(tmp_path / "a.tar.gz", [({"name": "a.bin"}, b"A")])
    with pytest.raises(DataError, match="lacks.*z.bin"):
        read_tar_files(arc, ["a.bin", "z.bin"])


@pytest.mark.parametrize("name", ["../evil.bin", "folder/../../evil.bin", "./../evil.bin", ".."])
def test_tar_member_escaping_refused(tmp_path, name):
    arc = _tar(tmp_path / "a.tar.gz", [({"name": "ok.bin"}, b"ok"), ({"name": name}, b"evil")])
    with pytest.raises(DataError, match="escape") as e:
        read_tar_files(arc, ["ok.bin"])
    assert str(arc) in str(e.value)
    with tarfile.open(arc, "r:gz") as tar, pytest.raises(DataError, match="escape"):
        safe_tar_members(arc, tar)


def test_tar_absolute_member_refused(tmp_path):
    arc = _tar(tmp_path / "a.tar.gz", [({"name": "/etc/x"}, b"root")])
    with tarfile.open(arc, "r:gz") as tar:
        assert tar.getnames() == ["/etc/x"]  # the archive really holds an absolute name
    with pytest.raises(DataError, match="escape"):
        read_tar_files(arc, ["x"])


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_tar_link_member_refused(tmp_path, kind):
    arc = _tar(tmp_path / "a.tar.gz", [
        ({"name": "data.bin"}, b"data"),
        ({"name": "link.bin", "type": kind, "linkname": "/etc/passwd"}, None),
    ])
    with pytest.raises(DataError, match="link") as e:
        read_tar_files(arc, ["data.bin"])
    assert "link.bin" in str(e.value)


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_truncated_tar_gz(tmp_path, fraction):
    rng = np.random.default_rng(0)
    members = [({"name": f"d/{n}.bin"}, rng.integers(0, 256, 20000, dtype=np.uint8).tobytes()) for n in "abc"]
    arc = _tar(tmp_path / "a.tar.gz", members)
    data = arc.read_bytes()
    arc.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(DataError) as e:
        read_tar_files(arc, ["a.bin", "b.bin", "c.bin"])
    assert str(arc) in str(e.value)


def test_not_a_tar_gz(tmp_path):
    arc = tmp_path / "a.tar.gz"
    arc.write_bytes(b"plain text, not gzip")
    with pytest.raises(DataError, match="not a readable"):
        read_tar_files(arc, ["a.bin"])


# --------------------------------------------------------------------- empty splits, no network


def test_read_dataset_h5_empty_split_names_path_and_split(tmp_path):
    path = tmp_path / "d.h5"
    write_dataset_h5(path, {"train": (np.zeros((3, 4, 4, 1), np.uint8), np.zeros(3, np.int64)),
                            "test": (np.zeros((0, 4, 4, 1), np.uint8), np.zeros(0, np.int64))},
                     source="t", sha256="0", classes=["a"])
    assert len(read_dataset_h5(path, "train")[0]) == 3
    with pytest.raises(ValueError) as e:
        read_dataset_h5(path, "test")
    assert str(path) in str(e.value) and "'test' is empty" in str(e.value)


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_no_network_tells_the_user_to_use_a_local_file(tmp_path, dataset):
    url = "http://127.0.0.1:9/archive"  # nothing listens on the discard port: refused at once
    if dataset == "mnist":
        build = lambda: build_mnist(tmp_path / "out" / "mnist.h5", source="download", url=url)  # noqa: E731
    else:
        from anatomy.data.cifar10 import build_cifar10

        build = lambda: build_cifar10(tmp_path / "out", source="download", shards=1, url=url)  # noqa: E731
    with pytest.raises(DownloadError) as e:
        build()
    msg = str(e.value)
    assert url in msg and "Without network" in msg
    assert f"data.{dataset}.source: npz" in msg and f"data.{dataset}.path" in msg
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
