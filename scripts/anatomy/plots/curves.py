"""Training curves from history.csv files."""

from __future__ import annotations

import pandas as pd

from anatomy.plots.style import plt, save, titled


def plot_histories(histories: dict, out_png, *, title: str, provenance: str,
                   panels=(("loss", "val_loss", "loss"), ("accuracy", "val_accuracy", "accuracy"))) -> None:
    """One panel per (train column, validation column, y label); one colour per run."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (train_col, val_col, label) in zip(axes[0], panels):
        for k, (name, df) in enumerate(histories.items()):
            colour = f"C{k % 8}"
            if train_col in df:
                ax.plot(df["epoch"], df[train_col], color=colour, label=f"{name} train")
            if val_col and val_col in df:
                ax.plot(df["epoch"], df[val_col], color=colour, linestyle="--", label=f"{name} validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    titled(fig, title, provenance)
    save(fig, out_png)


def read_histories(paths: dict) -> dict:
    return {name: pd.read_csv(p) for name, p in paths.items()}
