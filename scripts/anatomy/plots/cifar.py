"""Figures of the cifar study: training loss, training accuracy and test accuracy per epoch."""

from __future__ import annotations

from anatomy.plots.style import plt, save, titled

PANELS = (("loss", "training loss (mean over the epoch's batches)"),
          ("accuracy", "training accuracy (mean over batches)"),
          ("test_accuracy", "test accuracy (after the epoch)"))


def three_panels(histories: dict, out_png, *, title: str, provenance: str, panels=PANELS, styles=None,
                 colors=None, final_points=None) -> None:
    """One curve per run and panel. ``final_points`` adds end-of-training test accuracies to the test
    panel: ``{label: (epoch, value, sd or None)}``, one marker each (with an error bar where given)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for k, (name, h) in enumerate(histories.items()):
        style = (styles or {}).get(name, "-")
        colour = f"C{(colors or {}).get(name, k) % 8}"
        for ax, (col, label) in zip(axes[0], panels):
            ax.plot(h["epoch"], h[col], style, color=colour, label=name)
            ax.set_ylabel(label)
            ax.set_xlabel("epoch")
    markers = "os^Dv"
    for k, (label, (epoch, value, sd)) in enumerate((final_points or {}).items()):
        for ax, (col, _) in zip(axes[0], panels):
            if col == "test_accuracy" and value == value:  # NaN: not measured
                ax.errorbar([epoch], [value], yerr=None if sd is None or sd != sd else [sd],
                            fmt=markers[k % len(markers)], color="black", capsize=3, markersize=6, label=label)
    for ax, (col, _) in zip(axes[0], panels):
        if col == "loss":
            ax.set_yscale("log")
        if final_points and col == "test_accuracy":  # below the panel: the markers sit at the right edge
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))
        else:
            ax.legend(fontsize=7)
    if final_points:
        fig.set_size_inches(5 * len(panels), 5.2)
        fig.subplots_adjust(bottom=0.33, top=0.84)
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
