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


def aggregate_figures(hist: dict, summary, out, *, base_lr: float, seed: int, provenance: str) -> None:
    """Every figure of rule cifar_aggregate from the runs of one seed: ``hist`` keyed by (run, seed) and
    ``summary.csv`` (every seed); the subtitle names the seed shown."""
    from anatomy.studies.cifar_results import figure_groups, noisy_bn_points, one_seed

    n = summary["seed"].nunique()
    hist, summary = one_seed(hist, summary, seed)
    g, prov = figure_groups(hist, base_lr), f"{provenance} | curves: seed {seed} (summary.csv: {n} seed{'' if n == 1 else 's'})"
    three_panels(g["bn_lr"]["curves"], out["bn_lr"], styles=g["bn_lr"]["styles"], colors=g["bn_lr"]["colors"],
                 title="BatchNorm (solid) vs no BatchNorm (dashed), plain SGD at constant learning rates",
                 provenance=prov)
    three_panels(g["noisy_bn"], out["noisy_bn"], provenance=prov, final_points=noisy_bn_points(summary, base_lr),
                 title="BN with injected time-varying noise (Santurkar et al. 2018): three test accuracies at the end")
    three_panels(g["augmentation"], out["augmentation"], provenance=prov,
                 title="Augmentation (reflect-pad 4, random crop, flip p = 0.5)")
    three_panels(g["labels"], out["labels"], title="Corrupted labels: each redrawn uniformly with probability p",
                 provenance=prov)
    three_panels(g["pixels"], out["pixels"], provenance=prov,
                 title="Corrupted pixels (test untouched except for the fixed permutation)")
    one_panel(g["corruptions"], "accuracy", "training accuracy", out["corruptions_train"],
              title="Training accuracy under every corruption", provenance=prov)
    one_panel(g["corruptions"], "test_accuracy", "test accuracy", out["corruptions_test"],
              title="Test accuracy under every corruption", provenance=prov)
