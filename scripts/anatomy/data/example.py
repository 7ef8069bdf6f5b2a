"""The example dataset that ships in the repo (resources/example/): bars whose label sits in one corner.

16 x 16 grey images of three classes. The class is the orientation of a bar
(horizontal, vertical or diagonal) drawn somewhere inside :data:`SIGNAL`, the
bottom-right 8 x 8 quarter; every image also holds a bar of random orientation
in one of the other three quarters, and sparse noise everywhere. Only the
bottom-right quarter tells the classes apart, so a window heatmap should peak
there. Written as Kaggle-layout CSVs (text, so the repo holds no binary blob)
by :func:`write_example`, seeded: rerunning it rewrites the same files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anatomy.data.digits import write_digits_csv

SHAPE = (16, 16)
CLASSES = ["horizontal", "vertical", "diagonal"]
SIGNAL = (slice(8, 16), slice(8, 16))  # rows, cols of the quarter that carries the label
QUARTERS = [(0, 0), (0, 8), (8, 0)]  # top-left corners of the distractor quarters
BAR = 5  # bar length in pixels


def _bar(img, orientation: int, top: int, left: int, rng) -> None:
    """Draw a BAR-pixel bar of the given orientation at a random place inside the 8 x 8 quarter at (top, left)."""
    r, c = top + rng.integers(0, 8 - BAR + 1), left + rng.integers(0, 8 - BAR + 1)
    steps = np.arange(BAR)
    rows, cols = [(r + 2 + 0 * steps, c + steps), (r + steps, c + 2 + 0 * steps), (r + steps, c + steps)][orientation]
    img[rows, cols] = rng.integers(160, 256)


def example_images(n: int, *, seed: int):
    """``n`` images (uint8 n x 16 x 16) and their labels (0..2, balanced)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(CLASSES)
    rng.shuffle(y)
    x = np.where(rng.random((n, *SHAPE)) < 0.08, rng.integers(0, 100, (n, *SHAPE)), 0).astype(np.uint8)
    for img, label in zip(x, y):
        _bar(img, label, SIGNAL[0].start, SIGNAL[1].start, rng)
        top, left = QUARTERS[rng.integers(len(QUARTERS))]
        _bar(img, rng.integers(len(CLASSES)), top, left, rng)
    return x, y


def write_example(folder, *, n_train: int = 300, n_test: int = 150, seed: int = 0) -> None:
    """Write ``folder``/train.csv and test.csv (config/datasets/example.yaml reads them)."""
    folder = Path(folder)
    for name, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        write_digits_csv(folder / f"{name}.csv", *example_images(n, seed=s))
