"""Shared figure helpers: the style file, a subtitle naming data and scale, atomic PNG writes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from anatomy.io import atomic_path  # noqa: E402

STYLE = Path(__file__).with_name("anatomy.mplstyle")
plt.style.use(STYLE)


def titled(fig, title: str, provenance: str) -> None:
    """Title on the first line, the data and scale that produced it on the second."""
    fig.suptitle(f"{title}\n{provenance}", fontsize=11)


def thumbnail_grid(n: int, *, cols: int, width: float, height: float, extra: float = 0.8):
    """A figure for ``n`` thumbnails in at most ``cols`` columns, every axis off: (figure, flat axes)."""
    cols = min(cols, max(1, n))
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + extra), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    return fig, axes.ravel()


def save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
