"""Kaggle Digit Recognizer CSVs: read with validation, write, derive from MNIST.

Competition format: ``train.csv`` with header ``label,pixel0,...,pixel783`` and
one row per image; ``test.csv`` with ``pixel0,...,pixel783``. The ``derived``
source pools MNIST's train and test (as the competition did with its 70,000
images) and splits them 60/40 with a seed (42,000 / 28,000 at full scale),
keeping the test labels apart in ``test_labels.csv`` (``ImageId,Label``) so
that submissions can be scored locally.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from anatomy.io import atomic_path
from anatomy.data.sources import DataError

PIXELS = [f"pixel{i}" for i in range(784)]
TRAIN_HEADER = ["label"] + PIXELS


def read_digits_csv(path, *, labelled: bool):
    """Read and validate one competition CSV -> ``(x uint8 N x 28 x 28 x 1, y int64 or None)``.

    Any problem raises :class:`DataError` naming the file, the line (1 = header)
    and the column.
    """
    path = Path(path)
    expected = TRAIN_HEADER if labelled else PIXELS
    if not path.exists():
        raise DataError(f"{path}: file not found")
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    header = lines[0].split(",") if lines else []
    if header != expected:
        for pos, (got, want) in enumerate(zip(header + [None] * len(expected), expected + [None] * len(header))):
            if got != want:
                break
        raise DataError(
            f"{path}: line 1 (header): column {pos + 1} is {got!r}, expected {want!r} "
            f"(the header must be {'label,' if labelled else ''}pixel0,...,pixel783: {len(expected)} columns, got {len(header)})"
        )
    for n, line in enumerate(lines[1:], start=2):
        fields = line.count(",") + 1
        if not line.strip():
            raise DataError(f"{path}: line {n} is blank: column '{expected[0]}' and every other is empty "
                            "(a blank line in the data)")
        if fields != len(expected):
            raise DataError(f"{path}: line {n} has {fields} fields, expected {len(expected)} "
                            f"({'a missing' if fields < len(expected) else 'an extra'} column; "
                            f"the last column is '{expected[-1]}')")
    try:
        # index_col=False: a row with one field too many is an error, never an implicit index.
        df = pd.read_csv(path, skip_blank_lines=False, dtype=str, keep_default_na=False, na_filter=False,
                         engine="c", low_memory=False, index_col=False)
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: {e} (line numbers count the header as line 1)") from e
    if len(df) == 0:
        raise DataError(f"{path}: no data rows")
    if list(df.columns) != expected:
        raise DataError(f"{path}: a row has more fields than the header's {len(expected)} columns")
    values = df.to_numpy().astype(str)
    try:
        # ASCII only: str.isdigit alone would accept '²', '٣' or full-width digits.
        raw = np.char.encode(values, "ascii")
    except UnicodeEncodeError:
        r, c = next((r, c) for r, row in enumerate(values) for c, v in enumerate(row) if not v.isascii())
        raise DataError(f"{path}: line {r + 2}, column '{expected[c]}' is {values[r, c]!r}, "
                        "not a non-negative integer") from None
    # Every cell must be a plain non-negative integer.
    ok = np.char.isdigit(raw)
    if not ok.all():
        r, c = np.argwhere(~ok)[0]
        cell = values[r, c]
        what = "is empty (a short row or a blank line)" if cell == "" else f"is {cell!r}, not a non-negative integer"
        raise DataError(f"{path}: line {r + 2}, column '{expected[c]}' {what}")
    limits = np.full(len(expected), 255)
    if labelled:
        limits[0] = 9
    too_long = np.char.str_len(raw) > 3  # also keeps huge numbers from overflowing int64
    ints = np.where(too_long, b"999", raw).astype(np.int64)
    bad = ints > limits
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"{path}: line {r + 2}, column '{expected[c]}' is {values[r, c]}, outside 0..{limits[c]}")
    if labelled:
        y, px = ints[:, 0], ints[:, 1:]
    else:
        y, px = None, ints
    return px.astype(np.uint8).reshape(-1, 28, 28, 1), y


def write_digits_csv(path, x, y=None) -> None:
    """Images (N x H x W[ x C], uint8) and, where given, labels as a Kaggle-layout CSV: [label,] pixel0, ..."""
    px = np.asarray(x, dtype=np.uint8).reshape(len(x), -1)
    pixels = [f"pixel{i}" for i in range(px.shape[1])]
    cols = pixels if y is None else ["label", *pixels]
    data = px if y is None else np.concatenate([np.asarray(y, np.int64)[:, None], px.astype(np.int64)], axis=1)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            f.write(",".join(cols) + "\n")
            np.savetxt(f, data, fmt="%d", delimiter=",")


def write_labels_csv(path, y) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame({"ImageId": np.arange(1, len(y) + 1), "Label": np.asarray(y, np.int64)}).to_csv(tmp, index=False)


def derive_split(x, y, *, train_fraction: float, seed: int):
    """Seeded split of a pooled labelled set into competition-shaped train / test."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_train = int(round(train_fraction * len(x)))
    if not 0 < n_train < len(x):
        raise ValueError(f"data.digits.train_fraction={train_fraction} leaves an empty train or test set")
    tr, te = order[:n_train], order[n_train:]
    return (x[tr], y[tr]), (x[te], y[te])


def build_digits(out_dir, *, source: str, seed: int, train_fraction: float = 0.6, mnist_h5=None, path=None) -> dict:
    """Write train.csv, test.csv and test_labels.csv (header only when labels are unknown)."""
    from anatomy.io import read_dataset_h5

    out_dir = Path(out_dir)
    if source == "derived":
        parts = [read_dataset_h5(mnist_h5, s) for s in ("train", "test")]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        (xtr, ytr), (xte, yte) = derive_split(x, y, train_fraction=train_fraction, seed=seed)
    elif source == "kaggle":
        xtr, ytr = read_digits_csv(Path(path) / "train.csv", labelled=True)
        xte, _ = read_digits_csv(Path(path) / "test.csv", labelled=False)
        yte = np.zeros(0, np.int64)  # the competition keeps its test labels
    else:
        raise ValueError(f"data.digits.source: unknown source '{source}' (use derived or kaggle)")
    write_digits_csv(out_dir / "train.csv", xtr, ytr)
    write_digits_csv(out_dir / "test.csv", xte)
    write_labels_csv(out_dir / "test_labels.csv", yte)
    return {"train": len(xtr), "test": len(xte), "test_labels": len(yte)}
