"""Figures of the crops study (computed in anatomy.studies.crops, drawn here)."""

from __future__ import annotations

import numpy as np

from anatomy.plots.style import plt, save, titled
from anatomy.studies.crops import apply_mask, ink_kept, make_mask
from anatomy.studies.crops_results import compared_positions, importance_map


def _baseline_text(stats) -> str:
    return f"full-image baseline {stats['mean']:.4f} ± {stats['spread']:.4f} (sd over {stats['n']} seeds)"


def heatmap(windows, mask: str, stats, out_png, *, provenance: str, side: int = 28) -> None:
    """Test accuracy (epoch chosen on the held-out split) by window position."""
    d = windows[windows["mask"] == mask]
    size = int(d["size"].iloc[0]) if len(d) else 9
    n = side - size + 1
    grid = np.full((n, n), np.nan)
    for r in d.itertuples():
        grid[r.i, r.j] = r.test_accuracy
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(grid, cmap="viridis", origin="upper")
    if len(d) <= 100:  # numbers stay legible on coarse grids
        for r in d.itertuples():
            colour = "red" if r.selected_for_confirmation else "white"
            label = f"{r.test_accuracy:.3f}".removeprefix("0")  # ".649": fits a cell of the 20 x 20 grid
            ax.text(r.j, r.i, label, ha="center", va="center", fontsize=6, color=colour,
                    fontweight="bold" if r.selected_for_confirmation else "normal")
    else:
        for r in d[d["selected_for_confirmation"]].itertuples():
            ax.plot(r.j, r.i, "r+", markersize=6)
    ticks = range(0, n, max(1, n // 10))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("window column j (left edge, pixels)")
    ax.set_ylabel("window row i (top edge, pixels)")
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="test accuracy")
    titled(fig, f"{size}x{size} windows, mask '{mask}': accuracy by position\n{_baseline_text(stats)}"
           " (red: top by held-out accuracy, confirmed on fresh seeds: confirm.csv)", provenance)
    save(fig, out_png)


def importance(imap, stats, out_png, *, provenance: str) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    im = ax.imshow(imap, cmap="magma")
    ax.grid(False)
    ax.set_xlabel("column (pixels)")
    ax.set_ylabel("row (pixels)")
    fig.colorbar(im, ax=ax, label="mean test accuracy of covering windows")
    titled(fig, f"Per-pixel importance (true windows)\n{_baseline_text(stats)}", provenance)
    save(fig, out_png)


def examples(x, y, windows, out_png, *, provenance: str, n_digits: int = 4, n_each: int = 3) -> None:
    """Test digits as the network saw them under the best and worst true windows."""
    d = windows[windows["mask"] == "window"].sort_values("test_accuracy", ascending=False)
    chosen = list(d.head(n_each).itertuples()) + list(d.tail(n_each).itertuples())[::-1]
    cols = 1 + len(chosen)
    fig, axes = plt.subplots(n_digits, cols, figsize=(1.4 * cols, 1.5 * n_digits), squeeze=False)
    for row in range(n_digits):
        axes[row, 0].imshow(x[row, ..., 0], cmap="gray_r")
        axes[row, 0].set_title(f"full, label {y[row]}" if row == 0 else f"label {y[row]}", fontsize=7)
        for c, r in enumerate(chosen, start=1):
            keep = make_mask("window", r.i, r.j, r.size)
            axes[row, c].imshow(apply_mask(x[row:row + 1], keep)[0, ..., 0], cmap="gray_r")
            if row == 0:
                tag = "best" if c <= n_each else "worst"
                axes[row, c].set_title(f"{tag} ({r.i},{r.j})\n{r.test_accuracy:.3f}", fontsize=7)
    for ax in axes.ravel():
        ax.set_axis_off()
    titled(fig, "Best and worst windows applied to test digits", provenance)
    save(fig, out_png)


def masks_compared(x, positions, size, out_png, *, provenance: str, n_digits: int = 3) -> None:
    """The same digits under the true window and under the article's mask at the same positions:
    the ink the net sees in black, the ink the mask removed in light grey, the kept region outlined."""
    fig, axes = plt.subplots(n_digits * 2, len(positions), figsize=(1.5 * len(positions), 1.65 * 2 * n_digits),
                             squeeze=False)
    grid = np.arange(-1, x.shape[1] + 1)  # the mask padded by one pixel, so an edge on the border is drawn
    for c, (i, j) in enumerate(positions):
        for m, mask in enumerate(("window", "as_published")):
            keep = make_mask(mask, i, j, size)
            for d in range(n_digits):
                ax = axes[m * n_digits + d, c]
                digit = x[d, ..., 0].astype(float)
                ax.imshow(np.where(keep, digit, 0.2 * digit), cmap="gray_r", vmin=0, vmax=255)
                ax.contour(grid, grid, np.pad(keep, 1).astype(float), levels=[0.5], colors="tab:red",
                           linewidths=0.8)
                ax.set(xticks=[], yticks=[], xlim=(-0.5, grid[-1] - 0.5), ylim=(grid[-1] - 0.5, -0.5))
                ax.spines[:].set_visible(True)
                ax.set_xlabel(f"ink kept {ink_kept(x[d:d + 1], keep):.0%}", fontsize=6, labelpad=1)
                if d == 0:
                    ax.set_title(f"{mask} ({i},{j})", fontsize=7)
    titled(fig, "Same digits: true window (top) vs the published mask (bottom)\n"
                "black: what the net sees; grey: removed; red: the kept region's edge", provenance)
    save(fig, out_png)


def ink_vs_accuracy(windows, stats, out_png, *, provenance: str) -> None:
    fig, ax = plt.subplots()
    for mask, marker in (("window", "o"), ("as_published", "s")):
        d = windows[windows["mask"] == mask]
        ax.scatter(d["ink_kept"], d["test_accuracy"], marker=marker, label=f"mask '{mask}'", alpha=0.8)
    ax.axhspan(stats["mean"] - stats["spread"], stats["mean"] + stats["spread"], color="grey", alpha=0.25,
               label="baseline mean ± spread")
    ax.axhline(stats["mean"], color="grey")
    ax.set_xlabel("fraction of the digits' ink kept")
    ax.set_ylabel("test accuracy")
    ax.legend()
    titled(fig, "Accuracy against ink kept, one point per window", provenance)
    save(fig, out_png)


def curves(histories: dict, out_png, *, provenance: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for k, (name, h) in enumerate(histories.items()):
        style = "-" if name.startswith("baseline") else "--"
        axes[0].plot(h["epoch"], h["loss"], style, color=f"C{k % 8}", label=name)
        axes[1].plot(h["epoch"], h["val_accuracy"], style, color=f"C{k % 8}", label=name)
    axes[0].set_ylabel("training loss")
    axes[1].set_ylabel("held-out accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend()
    titled(fig, "Training curves: full-image baselines (solid) and the best windows (dashed)", provenance)
    save(fig, out_png)


def stacking_bars(table, out_png, *, provenance: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.barh(range(len(table)), table["test_accuracy"], color=[f"C{k}" for k in range(len(table))])
    ax.set_yticks(range(len(table)), table["method"], fontsize=7)
    lo = float(table["test_accuracy"].min())
    ax.set_xlim(max(0.0, lo - 0.05), 1.0)
    for k, v in enumerate(table["test_accuracy"]):
        ax.text(v, k, f" {v:.4f}", va="center", fontsize=7)
    ax.set_xlabel("test accuracy")
    ax.invert_yaxis()
    titled(fig, "Stacking across windows vs ensembles of full-image models", provenance)
    save(fig, out_png)


def aggregate_figures(agg: dict, out, *, size: int, provenance: str) -> None:
    """Every figure of rule crops_aggregate, from :func:`anatomy.studies.crops_results.aggregate`'s result."""
    windows, stats, x, y = agg["windows"], agg["stats"], agg["x_test"], agg["y_test"]
    heatmap(windows, "window", stats, out["heatmap_window"], provenance=provenance)
    heatmap(windows, "as_published", stats, out["heatmap_as_published"], provenance=provenance)
    importance(importance_map(windows), stats, out["importance"], provenance=provenance)
    examples(x, y, windows, out["examples"], provenance=provenance)
    masks_compared(x, compared_positions(windows, size), size, out["masks_compared"], provenance=provenance)
    ink_vs_accuracy(windows, stats, out["ink_vs_accuracy"], provenance=provenance)
    curves(agg["curves"], out["curves"], provenance=provenance)
