"""Figures of the cifar study: training loss, training accuracy and test accuracy per epoch."""

from __future__ import annotations

from anatomy.plots.style import plt, save, titled

PANELS = (("loss", "training loss (mean over the epoch's batches)"),
          ("accuracy", "training accuracy (mean over batches)"),
          ("test_accuracy", "test accuracy (after the epoch)"))


def three_panels(histories: dict, out_png, *, title: str, provenance: str, panels=PANELS, styles=None,
                 colors=None) -> None:
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for k, (name, h) in enumerate(histories.items()):
        style = (styles or {}).get(name, "-")
        colour = f"C{(colors or {}).get(name, k) % 8}"
        for ax, (col, label) in zip(axes[0], panels):
            ax.plot(h["epoch"], h[col], style, color=colour, label=name)
            ax.set_ylabel(label)
            ax.set_xlabel("epoch")
    for ax, (col, _) in zip(axes[0], panels):
        if col == "loss":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    titled(fig, title, provenance)
    save(fig, out_png)


def one_panel(histories: dict, column: str, ylabel: str, out_png, *, title: str, provenance: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, (name, h) in enumerate(histories.items()):
        ax.plot(h["epoch"], h[column], color=f"C{k % 8}", label=name)
    ax.axhline(0.1, color="grey", linestyle=":", label="chance (10%)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    titled(fig, title, provenance)
    save(fig, out_png)
