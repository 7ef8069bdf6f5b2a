"""Figures of the iic study."""

from __future__ import annotations

import numpy as np

from anatomy.io import atomic_path
from anatomy.plots.style import plt, save, titled
from anatomy.studies.iic import contingency
from anatomy.studies.iic_results import cluster_examples, figure_runs, label_order


def transforms_figure(examples_by_set: dict, out_png, *, provenance: str) -> None:
    """Rows: transform sets; columns: an image and three twins T(x)."""
    sets = list(examples_by_set)
    fig, axes = plt.subplots(len(sets), 4, figsize=(6, 1.6 * len(sets)), squeeze=False)
    for r, name in enumerate(sets):
        image, twins = examples_by_set[name]
        for c, img in enumerate([image, *twins[:3]]):
            axes[r, c].imshow(img, cmap="gray_r", vmin=0, vmax=1 if img.max() <= 1 else 255)
            axes[r, c].set_axis_off()
        axes[r, 0].text(-0.15, 0.5, name, transform=axes[r, 0].transAxes, rotation=90, ha="right", va="center",
                        fontsize=9)
    fig.subplots_adjust(top=0.78)
    titled(fig, "IIC pairs: an image x (left) and three twins T(x) per transform set", provenance)
    save(fig, out_png)


def curves(histories: dict, out_png, *, title: str, provenance: str) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for k, (name, h) in enumerate(histories.items()):
        c = f"C{k % 8}"
        axes[0].plot(h["epoch"], h["loss"], color=c, label=f"{name} (train)")
        axes[0].plot(h["epoch"], h["eval_loss"], "--", color=c, label=f"{name} (test pairs)")
        axes[1].plot(h["epoch"], h["test_accuracy"], color=c, label=name)
        axes[2].plot(h["epoch"], h["test_over_purity"], color=c, label=name)
    axes[0].set_ylabel("IIC loss (mean of both heads)")
    axes[1].set_ylabel("test accuracy, 10-way head (Hungarian)")
    axes[2].set_ylabel("test purity, 50-way head")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    titled(fig, title, provenance)
    save(fig, out_png)


def confusion(labels, clusters, n_clusters: int, out_png, *, title: str, provenance: str, order=None,
              label_names=None) -> None:
    """True label (rows) vs cluster (columns); clusters ordered by their matched label. ``label_names``: one per
    label (default the digits 0-9)."""
    names = [str(k) for k in range(10)] if label_names is None else list(label_names)
    n_labels = len(names)
    c = contingency(clusters, labels, n_clusters, n_labels).T
    if order is None:
        order = np.argsort(c.argmax(0) * 10_000 - c.max(0))
    fig, ax = plt.subplots(figsize=(max(5, 0.22 * n_clusters + 2), max(3.5, 0.3 * n_labels + 1.5)))
    im = ax.imshow(c[:, order], cmap="Blues", aspect="auto")
    ax.grid(False)
    ax.set_yticks(range(n_labels), names)
    ax.set_ylabel("true label")
    ax.set_xlabel("cluster" + (" (ordered by majority label)" if n_clusters > n_labels else " (Hungarian order)"))
    ax.set_xticks(range(n_clusters), [str(k) for k in order], fontsize=6 if n_clusters > 10 else 8)
    if n_clusters <= 10:
        for i in range(n_labels):
            for j in range(n_clusters):
                ax.text(j, i, str(c[i, order[j]]), ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, label="test images")
    titled(fig, title, provenance)
    save(fig, out_png)


def p_animation(p_history, out_gif, *, title: str, provenance: str) -> None:
    """The joint matrix P of the 10-way head over epochs, as a GIF (pillow writer)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig, ax = plt.subplots(figsize=(5, 4.6))
    vmax = float(np.max(p_history))
    im = ax.imshow(p_history[0], cmap="viridis", vmin=0, vmax=vmax)
    ax.grid(False)
    ax.set_xlabel("cluster of the second view (the twin)")
    ax.set_ylabel("cluster of the first view")
    fig.colorbar(im, ax=ax, label="P(z, z')")
    label = ax.set_title("epoch 1", fontsize=9)
    titled(fig, title, provenance)

    def frame(k):
        im.set_data(p_history[k])
        label.set_text(f"epoch {k + 1}")
        return (im, label)

    anim = FuncAnimation(fig, frame, frames=len(p_history), blit=False)
    with atomic_path(out_gif) as tmp:
        target = tmp.with_suffix(".gif")
        anim.save(target, writer=PillowWriter(fps=2))
        target.replace(tmp)
    plt.close(fig)


def overcluster_examples(groups, out_png, *, provenance: str) -> None:
    per = max(len(g["images"]) for g in groups)
    fig, axes = plt.subplots(len(groups), per, figsize=(1.1 * per, 1.25 * len(groups)), squeeze=False)
    for r, g in enumerate(groups):
        for c in range(per):
            ax = axes[r, c]
            ax.set_axis_off()
            if c < len(g["images"]):
                ax.imshow(g["images"][c][..., 0] if g["images"][c].ndim == 3 else g["images"][c], cmap="gray_r")
        axes[r, 0].set_title(f"{g['kind']}: cluster {g['cluster']} ({g['size']} images, "
                             f"{g['share']:.0%} are '{g['majority']}')", fontsize=7, loc="left")
    titled(fig, "Most label-pure and most mixed overclusters (50-way head)", provenance)
    save(fig, out_png)


def aggregate_figures(runs, hist: dict, preds: dict, x_test, out, *, k: int, k_over: int, provenance: str) -> None:
    """Every figure of rule iic_aggregate, from :func:`anatomy.studies.iic_results.collect`'s result and the test images."""
    f, prov = figure_runs(runs), provenance
    head_alpha, seed0, head_set = f["alphas"][-1], f["seed"], f["sets"][0]
    transforms_figure({t: (preds[r]["examples"][0] / 255.0, preds[r]["twins"][:, 0]) for t, r in f["examples"].items()},
                      out["transforms"], provenance=prov)
    curves({t: hist[r] for t, r in f["by_set"].items()}, out["curves_by_set"],
           title=f"IIC per transform set (alpha {head_alpha[0]:g}, 50-way alpha {head_alpha[1]:g}, seed {seed0})",
           provenance=prov)
    curves({f"alpha {a:g} / {o:g}": hist[r] for (a, o), r in f["by_alpha"].items()}, out["curves_by_alpha"],
           title=f"IIC per alpha (10-way / 50-way head), transform set '{head_set}', seed {seed0}", provenance=prov)
    p = preds[f["headline"]]
    acc, order = label_order(p["labels"], p["z"].argmax(1), k)
    name = f"set '{head_set}', alpha {head_alpha[0]:g}, seed {seed0}"
    confusion(p["labels"], p["z"].argmax(1), k, out["confusion"], order=order,
              title=f"True label vs cluster, 10-way head ({name}): accuracy {acc:.3f}", provenance=prov)
    confusion(p["labels"], p["z_over"].argmax(1), k_over, out["confusion_over"],
              title=f"True label vs overcluster, 50-way head ({name})", provenance=prov)
    p_animation(p["p_history"], out["gif"], title=f"Joint distribution P over epochs ({name})", provenance=prov)
    groups = cluster_examples(p["z_over"], p["labels"], x_test, n_clusters=k_over)
    overcluster_examples(groups, out["overcluster_examples"], provenance=prov)
