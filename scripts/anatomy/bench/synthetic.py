"""Rows ``synthetic/*``: the vectorised ship generator vs a per-image loop like the published one."""

from __future__ import annotations

import numpy as np

from anatomy.bench.common import best_rate, row, side_by_side


def published_ellipses_loop(n: int, size: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A straightforward per-image generator like the post's: two full noise images per pair,
    skimage draw.ellipse / draw.polygon, overlap tested with Python sets, redrawn until disjoint."""
    from skimage import draw

    rng = np.random.default_rng(seed)
    s = size / 128.0
    r_min, r_max = 10 * s, 20 * s
    w_min, w_max = int(round(10 * s)), int(round(40 * s))
    xs = np.empty((n, size, size, 3), np.float32)
    ys = np.zeros((n, size, size, 1), np.uint8)
    for k in range(n):
        low = rng.uniform(0.0, 0.75, (size, size, 3))
        high = rng.uniform(0.25, 1.0, (size, size, 3))
        sea, boat = (low, high) if rng.random() < 0.5 else (high, low)
        cy, cx = rng.integers(int(np.ceil(r_max)), int(size - 1 - r_max) + 1, 2)
        rr, cc = draw.ellipse(cy, cx, rng.uniform(r_min, r_max), rng.uniform(r_min, r_max), shape=(size, size),
                              rotation=rng.uniform(0, np.pi))
        ship = set(zip(rr.tolist(), cc.tolist()))
        while True:
            h, w = rng.integers(w_min, w_max + 1, 2)
            r0, c0 = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
            pr, pc = draw.polygon([r0, r0, r0 + h, r0 + h], [c0, c0 + w, c0 + w, c0], shape=(size, size))
            if not ship & set(zip(pr.tolist(), pc.tolist())):
                break
        img = sea.copy()
        img[rr, cc] = boat[rr, cc]
        img[pr, pc] = boat[pr, pc]
        xs[k] = img
        ys[k, rr, cc, 0] = 1
    return xs, ys


def bench_synthetic(*, scale: float, repeats: int) -> list:
    from anatomy.data.ellipses import make_ellipses

    section = {"image_size": 128, "radius": [10, 20], "rectangle": [10, 40]}
    n = max(50, int(round(1000 * scale)))
    ours = lambda: len(make_ellipses(n, section, np.random.default_rng(0))[0])  # noqa: E731
    theirs = lambda: len(published_ellipses_loop(max(20, n // 4)))  # noqa: E731
    ours(), theirs()
    r_ours, r_theirs = side_by_side(ours, theirs, repeats)
    rng = np.random.default_rng(1)
    floor = best_rate(lambda: len(rng.integers(0, 192, (n, 128, 128, 3), dtype=np.uint8)), repeats)
    return [row("synthetic/ellipses", "ship images + masks at 128 px: vectorised generator vs per-image loop",
                r_ours, r_theirs, "pairs/s", goal=5),
            row("synthetic/ellipses_vs_floor", "vectorised generator vs drawing one uint8 noise image per pair "
                "(the floor)", r_ours, floor, "pairs/s", notes="ratio < 1; 1 would be the floor")]
