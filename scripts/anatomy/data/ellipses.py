"""Synthetic "ships at sea" for the coreset study (Study 4).

After the Airbus Ship Detection follow-up post: a 128x128 RGB sea of uniform
noise in one of two ranges, one "ship" (a rotated ellipse, radii 10..20 px)
filled with noise from the *other* range, and a distractor (an axis-aligned
rectangle, sides 10..40 px) of the ship's colour that must not touch the ship.
The mask is the ellipse only. Sizes are given in pixels of the post's 128-px
image and scaled by ``image_size / 128``, so small quick images keep the
proportions.

Differences from the post's code, on purpose:
- the rectangle is re-drawn until it neither overlaps nor touches the ellipse
  (checked on the ellipse dilated by one pixel, 8-connected); the post compared
  row and column projections separately and shifted once without re-checking,
  so some of its rectangles still touched the ship;
- pixel values are drawn as uint8 directly: the low range is {0..191}, the high
  range {64..254}, i.e. exactly the uint8 values whose ``x / 255`` lies in
  [0, 0.75) and [0.25, 1).

Everything is vectorised over images (chunks of ``chunk`` images) and seeded.
"""

from __future__ import annotations

import numpy as np

PUBLISHED_SIZE = 128  # the post's image side; radii and sides below are in its pixels
LOW = (0, 192)     # uint8 values v with v / 255 in [0, 0.75)   (numpy's half-open integers)
HIGH = (64, 255)   # uint8 values v with v / 255 in [0.25, 1)


def scaled_ranges(section: dict) -> dict:
    """Radii and rectangle sides in pixels of an ``image_size`` image."""
    s = section["image_size"] / PUBLISHED_SIZE
    r_min, r_max = (float(v) * s for v in section["radius"])
    w_min, w_max = (max(1, int(round(float(v) * s))) for v in section["rectangle"])
    if 2 * r_max + 1 > section["image_size"]:
        raise ValueError(f"data.ellipses: radius {section['radius']} scaled to {r_max:.1f} px does not fit a "
                         f"{section['image_size']}-px image")
    return {"radius": (r_min, r_max), "rectangle": (w_min, w_max)}


def ellipse_masks(shape: int, cy, cx, r_radius, c_radius, rotation) -> np.ndarray:
    """Boolean N x S x S masks: skimage ``draw.ellipse`` (same inequality), for many ellipses at once.

    Centres are integers, so the result equals ``skimage.draw.ellipse`` pixel for pixel.
    """
    rows = np.arange(shape, dtype=np.float64)[None, :, None]
    cols = np.arange(shape, dtype=np.float64)[None, None, :]
    cy, cx, rr, cr, rot = (np.asarray(v, np.float64)[:, None, None] for v in (cy, cx, r_radius, c_radius, rotation))
    rot = rot % np.pi
    sin, cos = np.sin(rot), np.cos(rot)
    r, c = rows - cy, cols - cx
    d = ((r * cos + c * sin) / rr) ** 2 + ((r * sin - c * cos) / cr) ** 2
    return d < 1


def dilate(masks: np.ndarray) -> np.ndarray:
    """One-pixel 8-connected dilation of N x S x S boolean masks."""
    p = np.pad(masks, ((0, 0), (1, 1), (1, 1)))
    s = masks.shape[1]
    out = np.zeros_like(masks)
    for dr in range(3):
        for dc in range(3):
            out |= p[:, dr:dr + s, dc:dc + s]
    return out


def _box_sums(prefix, r0, c0, h, w):
    """Sums of masks over boxes [r0, r0+h) x [c0, c0+w) from N x (S+1) x (S+1) prefix sums."""
    n = np.arange(len(r0))
    return (prefix[n, r0 + h, c0 + w] - prefix[n, r0, c0 + w] - prefix[n, r0 + h, c0] + prefix[n, r0, c0])


def place_rectangles(forbidden: np.ndarray, rng, side_range, max_tries: int = 1000):
    """Top-left corner and size of one rectangle per image, inside it and off ``forbidden``.

    Candidates are drawn for every image still without a rectangle and tested
    all at once with prefix sums; an image whose draw fails draws again (size
    and place), until every image has one.
    """
    n, s, _ = forbidden.shape
    prefix = np.zeros((n, s + 1, s + 1), np.int32)
    prefix[:, 1:, 1:] = forbidden.cumsum(1).cumsum(2)
    out = np.zeros((n, 4), np.int64)  # r0, c0, h, w
    todo = np.arange(n)
    for _ in range(max_tries):
        if not len(todo):
            return out
        h = rng.integers(side_range[0], side_range[1] + 1, len(todo))
        w = rng.integers(side_range[0], side_range[1] + 1, len(todo))
        r0 = rng.integers(0, s - h + 1)
        c0 = rng.integers(0, s - w + 1)
        ok = _box_sums(prefix[todo], r0, c0, h, w) == 0
        out[todo[ok]] = np.stack([r0, c0, h, w], 1)[ok]
        todo = todo[~ok]
    raise RuntimeError(f"{len(todo)} images found no place for a rectangle in {max_tries} tries")


def make_ellipses(n: int, section: dict, rng: np.random.Generator, chunk: int = 500):
    """``n`` images, masks and the parameters that drew them.

    Returns ``x`` (uint8 N x S x S x 3), ``y`` (uint8 N x S x S x 1, 1 on the
    ellipse) and ``params`` (dict of arrays: sea_low, cy, cx, r_radius,
    c_radius, rotation, rect = r0, c0, h, w).
    """
    s = section["image_size"]
    ranges = scaled_ranges(section)
    xs, ys, params = [], [], []
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        r_min, r_max = ranges["radius"]
        lo, hi = int(np.ceil(r_max)), int(np.floor(s - 1 - r_max))
        p = {
            "sea_low": rng.random(m) < 0.5,  # sea in [0, 0.75) (ship in [0.25, 1)) or the reverse
            "cy": rng.integers(lo, hi + 1, m),
            "cx": rng.integers(lo, hi + 1, m),
            "r_radius": rng.uniform(r_min, r_max, m),
            "c_radius": rng.uniform(r_min, r_max, m),
            "rotation": rng.uniform(0, np.pi, m),
        }
        ship = ellipse_masks(s, p["cy"], p["cx"], p["r_radius"], p["c_radius"], p["rotation"])
        p["rect"] = place_rectangles(dilate(ship), rng, ranges["rectangle"])
        rect = rectangle_masks(s, p["rect"])
        low = rng.integers(*LOW, (m, s, s, 3), dtype=np.uint8)
        high = rng.integers(*HIGH, (m, s, s, 3), dtype=np.uint8)
        sea_low = p["sea_low"][:, None, None, None]
        coloured = (ship | rect)[..., None]
        sea = np.where(sea_low, low, high)
        boat = np.where(sea_low, high, low)
        xs.append(np.where(coloured, boat, sea))
        ys.append(ship[..., None].astype(np.uint8))
        params.append(p)
    merged = {k: np.concatenate([p[k] for p in params]) for k in params[0]}
    return np.concatenate(xs), np.concatenate(ys), merged


def rectangle_masks(shape: int, rects) -> np.ndarray:
    rects = np.asarray(rects)
    idx = np.arange(shape)
    r0, c0, h, w = (rects[:, k, None] for k in range(4))
    rows = (idx >= r0) & (idx < r0 + h)
    cols = (idx >= c0) & (idx < c0 + w)
    return rows[:, :, None] & cols[:, None, :]


def build_ellipses(train_path, test_path, section: dict, *, seed: int) -> dict:
    """Write the train and the independent test set (HDF5, docs/design.md "Dataset files")."""
    from anatomy.io import write_dataset_h5

    # Two independent streams of one seed: the test set is not a continuation of train.
    train_rng, test_rng = (np.random.default_rng([seed, k]) for k in (0, 1))
    counts = {}
    for path, n, rng, split in ((train_path, section["train_size"], train_rng, "train"),
                                (test_path, section["test_size"], test_rng, "test")):
        x, y, _ = make_ellipses(n, section, rng)
        write_dataset_h5(path, {split: (x, y)}, source=f"synthetic:ellipses seed={seed} split={split}",
                         sha256="", classes=["sea", "ship"])
        counts[split] = int(n)
        print(f"{split}: {n} images {x.shape[1]}x{x.shape[2]}, ship pixels {y.mean():.3%}", flush=True)
    return counts
