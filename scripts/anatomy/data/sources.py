"""Where data comes from: verified downloads, safe archives, validated npz files.

Rules (docs/design.md): every download is checked against its published checksum and
a mismatch leaves nothing behind; archives are read member by member after
refusing any path that would escape the target; nothing downloaded is
unpickled (``np.load(..., allow_pickle=False)``).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """Bad input data: the message names the file and what is wrong."""


class DownloadError(RuntimeError):
    pass


def download(url: str, dest, *, checksum: str, algorithm: str = "sha256", hint: str = "", timeout: float = 60):
    """Download ``url`` to ``dest`` and verify it; on any failure leave no ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise DownloadError(f"could not download {url} ({reason}). {hint}".strip()) from e
        verify_checksum(tmp, checksum, algorithm=algorithm, what=url)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def verify_checksum(path, expected: str, *, algorithm: str = "sha256", what: str | None = None) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    got = h.hexdigest()
    if got != expected.lower():
        raise DataError(
            f"{what or path}: {algorithm} checksum mismatch (expected {expected}, got {got}); "
            "the file is truncated or was tampered with and has been discarded"
        )
    return got


def safe_tar_members(archive, tar: tarfile.TarFile):
    """Return the archive's regular-file members; refuse any path that escapes."""
    members = []
    for m in tar.getmembers():
        name = m.name
        norm = posixpath.normpath(name)
        if name.startswith(("/", "\\")) or norm == ".." or norm.startswith("../") or ":" in name.split("/")[0]:
            raise DataError(f"{archive}: member '{name}' would escape the target folder; refusing the archive")
        if m.issym() or m.islnk():
            raise DataError(f"{archive}: member '{name}' is a link; refusing the archive")
        if m.isfile():
            members.append(m)
    return members


def read_tar_files(archive, names_wanted) -> dict[str, bytes]:
    """Read the wanted members (by basename) from a .tar.gz, after checking every path."""
    out = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in safe_tar_members(archive, tar):
                base = posixpath.basename(m.name)
                if base in names_wanted:
                    out[base] = tar.extractfile(m).read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{archive}: not a readable .tar.gz archive ({e}); it may be truncated") from e
    missing = sorted(set(names_wanted) - set(out))
    if missing:
        raise DataError(f"{archive}: archive lacks {', '.join(missing)}")
    return out


def read_npz_arrays(path, keys) -> dict:
    """Read the arrays ``keys`` from an npz file, never unpickling; :class:`DataError` names the file and array."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from e
    with npz:
        for key in keys:
            if key not in npz.files:
                raise DataError(f"{path}: missing array '{key}' (has: {', '.join(npz.files) or 'none'})")
        out = {}
        for key in keys:
            try:
                out[key] = npz[key]
            except ValueError as e:  # e.g. an object array: refused, never unpickled
                raise DataError(f"{path}: array '{key}' cannot be read without unpickling ({e})") from e
    return out


def load_npz_splits(path, *, image_shape: tuple, num_classes: int):
    """Load a keras-layout npz (x_train, y_train, x_test, y_test) and validate it.

    Grey images may come as N x H x W; they are returned as N x H x W x 1.
    Labels may be N or N x 1. Raises :class:`DataError` naming the file and array.
    """
    path = Path(path)
    arrays = read_npz_arrays(path, ["x_train", "y_train", "x_test", "y_test"])
    splits = {}
    for split in ("train", "test"):
        xs, ys = f"x_{split}", f"y_{split}"
        x, y = arrays[xs], arrays[ys]
        if x.dtype != np.uint8:
            raise DataError(f"{path}: array '{xs}' has dtype {x.dtype}, expected uint8")
        if x.ndim == len(image_shape) and image_shape[-1] == 1:
            x = x[..., None]
        if x.ndim != len(image_shape) + 1 or tuple(x.shape[1:]) != tuple(image_shape):
            raise DataError(f"{path}: array '{xs}' has shape {x.shape}, expected (N, {', '.join(map(str, image_shape))})")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: array '{ys}' has shape {y.shape} and dtype {y.dtype}, expected a flat integer vector")
        if len(x) == 0:
            raise DataError(f"{path}: array '{xs}' is empty")
        if len(y) != len(x):
            raise DataError(f"{path}: '{xs}' has {len(x)} images but '{ys}' has {len(y)} labels")
        if y.min() < 0 or y.max() >= num_classes:
            bad = int(np.flatnonzero((y < 0) | (y >= num_classes))[0])
            raise DataError(f"{path}: array '{ys}' row {bad} holds label {y[bad]}, outside 0..{num_classes - 1}")
        splits[split] = (np.ascontiguousarray(x), y.astype(np.int64))
    return splits
