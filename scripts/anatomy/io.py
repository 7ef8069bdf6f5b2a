"""Small file helpers shared by every step: atomic writes, JSON, HDF5 datasets.

Every writer goes through a temporary file in the target's folder followed by
``os.replace``, so a killed job never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_npz(path, *, compressed: bool = False, **arrays) -> None:
    """``np.savez`` (or ``savez_compressed``) of ``arrays`` to ``path``, atomically: a reader never sees half a file."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def write_dataset_h5(path, splits: dict, *, source: str, sha256: str, classes) -> None:
    """Write ``{"train": (x, y), "test": (x, y)}`` to HDF5 (docs/design.md, "Dataset files").

    ``x`` is uint8 N x H x W x C, ``y`` integer labels or uint8 masks. Chunked
    (a few hundred images per chunk) and gzip-compressed.
    """
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["source"] = source
            f.attrs["sha256"] = sha256
            f.attrs["classes"] = np.asarray([str(c) for c in classes], dtype=h5py.string_dtype())
            for name, (x, y) in splits.items():
                g = f.create_group(name)
                for key, arr in (("x", x), ("y", y)):
                    arr = np.asarray(arr)
                    chunk = (min(len(arr), 256),) + arr.shape[1:] if len(arr) else None
                    g.create_dataset(key, data=arr, chunks=chunk, compression="gzip", compression_opts=4)


def read_dataset_h5(path, split: str):
    """Return ``(x, y)`` of one split, read-only (safe for parallel readers)."""
    import h5py

    try:
        f = h5py.File(path, "r", locking=False)
    except OSError as e:
        raise ValueError(f"{path}: not a readable HDF5 dataset file ({e}); delete it and rerun the workflow") from e
    with f:
        if split not in f or "x" not in f[split] or "y" not in f[split]:
            raise ValueError(f"{path}: missing group '{split}' with arrays 'x' and 'y'")
        try:
            x, y = f[split]["x"][...], f[split]["y"][...]
        except OSError as e:
            raise ValueError(f"{path}: split '{split}' cannot be read ({e}); the file is damaged, delete it and rerun") from e
    if len(x) == 0:
        raise ValueError(f"{path}: split '{split}' is empty")
    if len(x) != len(y):
        raise ValueError(f"{path}: split '{split}' has {len(x)} images but {len(y)} labels")
    return x, y



def split_size(path, split: str) -> int:
    """How many images one split of a dataset file holds, read from its label array's shape (no pixels)."""
    import h5py

    with h5py.File(path, "r", locking=False) as f:
        return int(f[split]["y"].shape[0])


def read_h5_attrs(path) -> dict:
    """A dataset file's attributes (source, sha256, classes) as plain Python values, without HDF5's file lock."""
    import h5py

    with h5py.File(path, "r", locking=False) as f:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}


def run_and_seed(path) -> tuple[str, int]:
    """(run, seed) of a run's file, ``.../<run>/seed<s>/<file>``: the training rules' folder layout."""
    folder = Path(path).parent
    return folder.parent.name, int(folder.name.removeprefix("seed"))
