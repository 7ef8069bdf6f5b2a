"""Figures of a dataset's anatomy (computed in anatomy.studies.anatomy, drawn here)."""

from __future__ import annotations

import numpy as np

from anatomy.plots.cifar import three_panels
from anatomy.plots.style import plt, save, thumbnail_grid, titled


def memorisation(histories: dict, chance: float, out_png, *, provenance: str) -> None:
    """Training and test accuracy per epoch, one colour per run (``histories`` keyed by legend label)."""
    three_panels(histories, out_png, provenance=provenance,
                 title=f"Memorisation: clean, corrupted labels, permuted pixels (chance {chance:.3f})",
                 panels=(("accuracy", "training accuracy"), ("test_accuracy", "test accuracy (after the epoch)")))


def windows(table, x_test, out_png, *, provenance: str) -> None:
    """The mean test image with the best window outlined, and test accuracy by window position."""
    w, full = table[table["kind"] == "window"], table[table["kind"] == "full"]
    rows, cols = sorted(int(i) for i in w["i"].unique()), sorted(int(j) for j in w["j"].unique())
    grid = np.full((len(rows), len(cols)), np.nan)
    for r in w.itertuples():
        grid[rows.index(r.i), cols.index(r.j)] = r.test_accuracy
    fig, (ax_img, ax) = plt.subplots(1, 2, figsize=(10, 5.6))
    mean = x_test.astype(float).mean(0)
    ax_img.imshow(mean[..., 0] if mean.shape[-1] == 1 else mean / 255, cmap="gray")
    best = w.loc[w["test_accuracy"].idxmax()]
    ax_img.add_patch(plt.Rectangle((best["j"] - 0.5, best["i"] - 0.5), best["size"], best["size"], fill=False,
                                   edgecolor="red", linewidth=2))
    ax_img.set_title("mean test image, best window in red", fontsize=9)
    im = ax.imshow(grid, cmap="viridis", origin="upper")
    if grid.size <= 100:
        for a, i in enumerate(rows):
            for b, j in enumerate(cols):
                ax.text(b, a, f"{grid[a, b]:.2f}", ha="center", va="center", fontsize=7, color="white")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("window column j (left edge, pixels)")
    ax.set_ylabel("window row i (top edge, pixels)")
    for a in (ax, ax_img):
        a.grid(False)
    fig.colorbar(im, ax=ax, label="test accuracy")
    v = full["test_accuracy"]
    full_text = f"{v.mean():.3f} ± {v.std(ddof=1):.3f} (sd, n = {len(v)})" if len(v) > 1 else f"{v.mean():.3f} (n = 1)"
    titled(fig, f"{int(best['size'])}x{int(best['size'])} windows: test accuracy by position (one run each)\n"
                f"full image {full_text}", provenance)
    fig.subplots_adjust(top=0.8)
    save(fig, out_png)


def _show(ax, img):
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray_r" if img.shape[-1] == 1 else None)


def label_issues(table, x_train, out_png, *, show: int, provenance: str) -> None:
    """The ``show`` top label-issue candidates: given and out-of-fold predicted class, cleanlab's label score."""
    rows = table.head(show)
    fig, axes = thumbnail_grid(len(rows), cols=6, width=1.9, height=2.2, extra=0.9)
    for ax, r in zip(axes, rows.itertuples()):
        _show(ax, x_train[int(r.image)])
        ax.set_title(f"#{r.label_issue_rank} image {int(r.image)}\ngiven {r.label_name}\npredicted "
                     f"{r.predicted_name}\nscore {r.label_score:.3f}" + (" (flagged)" if r.label_issue else ""),
                     fontsize=7)
    titled(fig, f"Label-issue candidates ranked by cleanlab's label score (out of fold; "
                f"{int(table['label_issue'].sum())} flagged of {len(table)})", provenance)
    save(fig, out_png)


def data_map(table, out_png, *, provenance: str) -> None:
    """Confidence against variability over epochs, coloured by correctness; label-issue flags circled."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    sc = ax.scatter(table["variability"], table["confidence"], c=table["correctness"], cmap="coolwarm_r", s=12,
                    vmin=0, vmax=1)
    flagged = table[table["label_issue"]]
    ax.scatter(flagged["variability"], flagged["confidence"], s=60, facecolors="none", edgecolors="black",
               label=f"flagged label issue ({len(flagged)})")
    ax.set_xlim(0, max(0.5, float(table["variability"].max()) + 0.02))  # the possible range: comparable maps
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("variability (sd over epochs of the probability of the given label)")
    ax.set_ylabel("confidence (mean probability of the given label)")
    ax.legend(fontsize=8, loc="lower right")
    fig.colorbar(sc, ax=ax, label="correctness (share of epochs predicted)")
    titled(fig, f"Data map of {len(table)} training images (training dynamics of the fold models that "
                "trained on each)", provenance)
    save(fig, out_png)


def clustering(drawn: dict, out_png, *, provenance: str) -> None:
    """True class against IIC cluster (the run and epoch with the lowest IIC loss on the test pairs)."""
    from anatomy.plots.iic import confusion

    k = len(drawn["classes"])
    confusion(drawn["labels"], drawn["clusters"], k, out_png, order=drawn["order"], label_names=drawn["classes"],
              title=f"True class vs IIC cluster without labels: accuracy {drawn['accuracy']:.3f} (Hungarian)\n"
                    f"seed {drawn['seed']}, epoch {drawn['epoch']}: chosen by the IIC loss on test pairs, not labels",
              provenance=provenance)


def subset(table, out_png, *, provenance: str) -> None:
    """Test accuracy against training-set size per kind of subset: each seed a dot, mean ± sd a line."""
    from anatomy.studies.anatomy import SUBSET_KINDS

    fig, ax = plt.subplots(figsize=(7, 4.8))
    for c, kind in enumerate(SUBSET_KINDS):
        g = table[table["kind"] == kind]
        stats = g.groupby("images")["test_accuracy"].agg(["mean", "std", "count"]).reset_index()
        ax.errorbar(stats["images"], stats["mean"], yerr=stats["std"].fillna(0), color=f"C{c}", marker="o",
                    capsize=3, label=f"{kind} (n = {int(stats['count'].min())} seeds per size)")
        ax.scatter(g["images"], g["test_accuracy"], color=f"C{c}", s=10, alpha=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("training images (log scale)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    titled(fig, f"Test accuracy by training-set size, easiest / hardest by data-map confidence vs random\n"
                f"{int(table['gradient_steps'].iloc[0])} gradient steps at every size; bars: sd over seeds",
           provenance)
    fig.subplots_adjust(top=0.78)
    save(fig, out_png)


def ensemble(table, models, out_png, *, provenance: str) -> None:
    """Each trained model's test accuracy per method (dots), the mean and its 95% bootstrap interval."""
    t = table[table["interval_over"] != "seeds"].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 4.8))
    for i, r in t.iterrows():
        pts = models[models["method"] == r["method"]]["test_accuracy"]
        ax.scatter(np.full(len(pts), i) + np.linspace(-0.12, 0.12, len(pts)), pts, s=14, color="grey", zorder=2)
        ax.errorbar([i], [r["test_accuracy_mean"]], yerr=[[r["test_accuracy_mean"] - r["interval_low"]],
                                                          [r["interval_high"] - r["test_accuracy_mean"]]],
                    fmt="o", color=f"C{i}", capsize=5, markersize=8, zorder=3)
    ax.set_xticks(range(len(t)), [f"{d}\n(n = {n} models)" for d, n in zip(t["description"], t["trained_models"])],
                  fontsize=8)
    ax.set_ylabel("test accuracy")
    titled(fig, "Single fold models vs their k-fold ensemble vs TTA on the test split\ndots: trained models; bars: "
                "95% bootstrap over trained models and test images (test images only where n = 1)", provenance)
    fig.subplots_adjust(top=0.78)
    save(fig, out_png)
