"""Figures of the digits study (computed in anatomy.studies.digits, drawn here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from anatomy.plots.curves import plot_histories
from anatomy.plots.style import plt, save, thumbnail_grid, titled


def fold_curves(histories: dict, out_png, *, provenance: str) -> None:
    """Train (solid) and own-held-out validation (dashed) loss and accuracy per fold model."""
    plot_histories(histories, out_png, provenance=provenance,
                   title="Fold models: train and validation (each fold on its own held-out part)")


def _unknown(ax, text="test labels unknown (competition files): submit to Kaggle to score"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_axis_off()


def ensemble_vs_single(board: pd.DataFrame, out_png, *, provenance: str) -> None:
    """Local-leaderboard accuracy of each single model beside the submissions."""
    fig, ax = plt.subplots(figsize=(7, 4))
    if board["test_accuracy"].isna().all():
        _unknown(ax)
    else:
        colours = ["C1" if k == "submission" else "C0" for k in board["kind"]]
        ax.bar(board["entry"], board["test_accuracy"], color=colours)
        singles = board[board["entry"].str.startswith("fold")]["test_accuracy"]
        if len(singles):
            ax.axhline(singles.mean(), color="C0", linestyle="--", label=f"mean fold model {singles.mean():.4f}")
        for i, v in enumerate(board["test_accuracy"]):
            ax.text(i, v, f"{v:.4f}", ha="center", va="bottom", fontsize=8)
        lo = float(board["test_accuracy"].min())
        ax.set_ylim(max(0.0, lo - 0.5 * (1 - lo) - 0.01), 1.0)
        ax.set_ylabel("local test accuracy")
        ax.tick_params(axis="x", rotation=30)
        ax.legend()
    titled(fig, "Ensemble vs single models on the local leaderboard", provenance)
    save(fig, out_png)


def hardest(table: pd.DataFrame, x_train, out_png, *, show: int, provenance: str) -> None:
    """The ``show`` hardest training images by out-of-fold loss, with label and prediction."""
    rows = table.head(show)
    fig, axes = thumbnail_grid(len(rows), cols=5, width=2.0, height=2.3)
    for ax, r in zip(axes, rows.itertuples()):
        ax.imshow(x_train[int(r.image), ..., 0], cmap="gray_r")
        ax.set_title(f"#{r.rank} image {int(r.image)}\nlabel {r.label}, pred {r.oof_prediction}\n"
                     f"loss {r.oof_loss:.2f} (in-sample rank {r.in_sample_rank})", fontsize=7)
    overlap = int(table["overlap_of_top_lists"].iloc[0]) if len(table) else 0
    titled(fig, f"Hardest training images, out of fold (top-{len(table)} overlap with the kernel's "
           f"in-sample list: {overlap})", provenance)
    save(fig, out_png)


def bootstrap(summary: pd.DataFrame, scores: pd.DataFrame, out_png, *, provenance: str) -> None:
    """Spread of public-style (quarter-size subset) scores per submission."""
    fig, ax = plt.subplots(figsize=(7, 4))
    if len(scores) == 0:
        _unknown(ax)
    else:
        names = list(dict.fromkeys(scores["submission"]))
        data = [scores.loc[scores["submission"] == n, "accuracy"].to_numpy() for n in names]
        ax.violinplot(data, showextrema=False)
        ax.boxplot(data, widths=0.15, showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names)
        for i, n in enumerate(names, start=1):
            r = summary[summary["submission"] == n].iloc[0]
            ax.plot(i, r["full_test_accuracy"], "r*", markersize=10, label="full local test set" if i == 1 else None)
            ax.text(i + 0.2, r["public_mean"], f"sd {r['public_sd']:.4f}", fontsize=8, va="center")
        size = int(summary["subset_size"].iloc[0])
        ax.set_ylabel(f"accuracy on random {size}-image subsets")
        ax.legend()
    titled(fig, "Public-leaderboard noise: seeded quarter-size subsets of the test set", provenance)
    save(fig, out_png)


def ladder(table: pd.DataFrame, out_png, *, provenance: str) -> None:
    """Test accuracy per rung (mean and each seed) and the hold-out accuracy beside it."""
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(table))
    seed_cols = [c for c in table.columns if c.startswith("test_accuracy_seed")]
    if table["test_accuracy_mean"].isna().all():
        ax.plot(x, table["holdout_accuracy_mean"], "s--", color="C2", label="hold-out accuracy (test labels unknown)")
    else:
        ax.errorbar(x, table["test_accuracy_mean"], yerr=table["test_accuracy_sd"], fmt="o-", capsize=4,
                    label="local test accuracy (mean, sd over seeds)")
        for c in seed_cols:
            ax.plot(x, table[c], ".", color="grey", alpha=0.7)
        ax.plot(x, table["holdout_accuracy_mean"], "s--", color="C2", alpha=0.7, label="hold-out accuracy")
        for i, r in table.iterrows():
            ax.text(i, r["test_accuracy_mean"], f" {r['test_accuracy_mean']:.4f}", fontsize=8, va="bottom")
    ax.set_xticks(x, [f"{r.rung}. {r.row}" for r in table.itertuples()])
    ax.set_ylabel("accuracy")
    ax.legend()
    titled(fig, "Ablation ladder: what each of step 2's changes bought", provenance)
    save(fig, out_png)


def figure(name: str, inp, out_png, *, show, provenance: str) -> None:
    """One figure of rule digits_figure (``name``: its {figure} wildcard) from its input files ``inp``."""
    if name == "fold_curves":
        hist = {f"fold {k}": pd.read_csv(h) for k, h in enumerate(inp["histories"])}
        hist["step 1"] = pd.read_csv(inp["step1"])
        fold_curves(hist, out_png, provenance=provenance)
    elif name == "ensemble_vs_single":
        ensemble_vs_single(pd.read_csv(inp["leaderboard"]), out_png, provenance=provenance)
    elif name == "hardest":
        from anatomy.studies.digits import read_arrays

        x, _, _ = read_arrays(inp["arrays"])
        hardest(pd.read_csv(inp["hardest"]), x, out_png, show=show, provenance=provenance)
    elif name == "bootstrap":
        bootstrap(pd.read_csv(inp["summary"]), pd.read_csv(inp["scores"]), out_png, provenance=provenance)
    elif name == "ladder":
        ladder(pd.read_csv(inp["ladder"]), out_png, provenance=provenance)
    else:
        raise ValueError(f"unknown digits figure '{name}'")
