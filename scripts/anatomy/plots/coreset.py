"""Figures of the coreset study (no TensorFlow)."""

from __future__ import annotations

import numpy as np

from anatomy.plots.style import plt, save, titled
from anatomy.studies.coreset_results import RUNS_ORDER, recheck_shown, run_label, runs_shown, split_key


def _show_pair(ax_img, ax_mask, x, y, title=None):
    ax_img.imshow(x)
    ax_mask.imshow(y[..., 0], cmap="gray", vmin=0, vmax=1)
    for ax in (ax_img, ax_mask):
        ax.set_axis_off()
    if title:
        ax_img.set_title(title, fontsize=7)


def pairs(x, y, indices, out_png, *, provenance: str) -> None:
    """Images (top) and masks (bottom) of the given training pairs."""
    fig, axes = plt.subplots(2, len(indices), figsize=(1.3 * len(indices), 3.2), squeeze=False)
    for k, i in enumerate(indices):
        _show_pair(axes[0, k], axes[1, k], x[i], y[i], f"#{i}")
    fig.subplots_adjust(top=0.72)
    titled(fig, "Ten random training pairs: image (ship + distractor rectangle) and mask (ship only)", provenance)
    save(fig, out_png)


LINES = ("-", "--", ":", "-.")


def _style(key: str, seeds: list) -> dict:
    """A selection's line: its colour by order, its dash by seed."""
    order, seed = split_key(key)
    return {"color": f"C{RUNS_ORDER.index(order) if order in RUNS_ORDER else 2}",
            "ls": LINES[seeds.index(seed) % len(LINES)] if seed in seeds else "-"}


def selected_vs_scanned(histories: dict, n_train: int, out_png, *, provenance: str) -> None:
    """Each selection (keyed '<order>/seed<s>'): pairs selected against pairs scanned."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    seeds = sorted({split_key(k)[1] for k in histories}, key=lambda x: x or 0)
    for key, h in sorted(histories.items()):
        ax.step(h["scanned"], h["selected"], where="post", **_style(key, seeds),
                label=f"{run_label(key)}: {int(h['selected'].iloc[-1])} selected")
    ax.plot([0, n_train], [0, n_train], ":", color="grey", lw=0.8, label="every pair")
    ax.set_ylim(0, max(h["selected"].max() for h in histories.values()) * 1.15 + 1)
    ax.set_xlabel("training pairs scanned")
    ax.set_ylabel("pairs selected")
    ax.legend()
    titled(fig, "Selected count against scanned count", provenance)
    save(fig, out_png)


def score_vs_size(runs, histories: dict, out_png, *, provenance: str) -> None:
    """Each model's test score at the number of pairs it trained on (a run's seeds share a marker, its legend
    the mean); the selections' test checkpoints as lines.

    Controls: filled markers for the budget the verdict uses (the in-order
    selection's gradient steps), hollow ones stopped at the target.
    """
    from anatomy.studies.coreset_controls import MATCHED_STEPS

    fig, ax = plt.subplots(figsize=(7.5, 5))
    seeds = sorted({split_key(k)[1] for k in histories}, key=lambda x: x or 0)
    for key, h in sorted(histories.items()):
        pts = h[h["test_score"].notna()]
        ax.plot(pts["selected"], pts["test_score"], marker="o", ms=3, alpha=0.6, **_style(key, seeds),
                label=f"{run_label(key)}, during the scan")
    markers = {"in_order": ("C0", "*"), "shuffled": ("C1", "*")}
    for (run, budget), g in runs.groupby(["run", "budget"], sort=False):
        colour, marker = markers.get(run, ("k", "s") if run.startswith("full") else ("C3", "o"))
        hollow = run not in markers and budget != MATCHED_STEPS
        seeds_text = f", {len(g)} seeds" if len(g) > 1 else ""
        ax.scatter(g["pairs_used"], g["test_score_thresholded"], marker=marker, s=70, zorder=3,
                   facecolors="none" if hollow else colour, edgecolors=colour,
                   label=f"{g['description'].iloc[0]}: {g['test_score_thresholded'].mean():.3f} "
                         f"({g['gradient_steps'].mean():.0f} steps{seeds_text})")
    ax.set_xscale("log")
    ax.set_xlabel("training pairs used (log scale)")
    ax.set_ylabel("test score (thresholded, mean over IoU thresholds)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=6, title_fontsize=6,
              title="controls: filled = the in-order selection's gradient steps, hollow = stopped at the target")
    titled(fig, "Test score against training-set size: selected vs random subsets", provenance)
    save(fig, out_png)


def selected_grid(x, y, selected, out_png, *, provenance: str, show: int = 24) -> None:
    """The first selected pairs, in the order they joined, the mask outlined in red."""
    idx = list(selected)[:show]
    cols = min(8, max(1, len(idx)))
    rows = max(1, int(np.ceil(len(idx) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.55 * rows + 0.8), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for k, i in enumerate(idx):
        ax = axes.ravel()[k]
        ax.imshow(x[i])
        ax.contour(y[i][..., 0], levels=[0.5], colors="red", linewidths=0.7)
        ax.set_title(f"{k + 1}: #{i}", fontsize=6)
    fig.subplots_adjust(top=1 - 0.8 / (1.55 * rows + 0.8))
    titled(fig, f"Selected pairs in the order they joined (first {len(idx)} of {len(selected)}, in-order scan)",
           provenance)
    save(fig, out_png)


def predictions(x, y, probs: dict, out_png, *, provenance: str) -> None:
    """Rows: test image, its mask, then each run's thresholded prediction."""
    n = min(len(p) for p in probs.values())
    rows = 2 + len(probs)
    fig, axes = plt.subplots(rows, n, figsize=(1.3 * n, 1.3 * rows + 0.8), squeeze=False)
    for j in range(n):
        axes[0, j].imshow(x[j])
        axes[1, j].imshow(y[j][..., 0], cmap="gray", vmin=0, vmax=1)
        for r, (run, p) in enumerate(probs.items()):
            axes[2 + r, j].imshow(np.asarray(p[j][..., 0], np.float32) > 0.5, cmap="gray", vmin=0, vmax=1)
    labels = ["image", "mask"] + [run_label(r) for r in probs]
    for r, lab in enumerate(labels):
        axes[r, 0].text(-0.1, 0.5, lab, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=6)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.subplots_adjust(left=0.16, top=1 - 0.8 / (1.3 * rows + 0.8))
    titled(fig, "Predictions (threshold 0.5) vs masks on test images", provenance)
    save(fig, out_png)


def recheck(scores: dict, pass_score: float, out_png, *, provenance: str) -> None:
    """Per run (its seeds' final models pooled): their scores on every scanned training pair."""
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    edges = np.linspace(-0.05, 1.05, 12)  # the metric takes the values 0, 0.1, ..., 1
    width = 0.09 / len(scores)
    for k, (run, s) in enumerate(scores.items()):
        counts, _ = np.histogram(s, bins=edges)
        centres = (edges[:-1] + edges[1:]) / 2 - 0.045 + width * (k + 0.5)
        ax.bar(centres, counts / len(s), width=width, color=f"C{k}",
               label=f"{run_label(run)}: {np.mean(np.asarray(s) >= pass_score):.1%} pass")
    ax.axvline(pass_score, color="k", ls="--", lw=0.8)
    ax.text(pass_score, ax.get_ylim()[1] * 0.95, f" pass {pass_score:.4f}", fontsize=7, va="top")
    ax.set_xlabel("score of the final model on a scanned training pair")
    ax.set_ylabel("fraction of training pairs")
    ax.legend(fontsize=7)
    titled(fig, "Re-check: does every training pair pass with the final model?", provenance)
    save(fig, out_png)


def aggregate_figures(agg: dict, x, y, x_test, y_test, out, *, pass_score: float, seed: int, provenance: str) -> None:
    """Every figure of rule coreset_aggregate, from :func:`anatomy.studies.coreset_results.aggregate`'s result."""
    runs, arrays, recheck_scores, prov = agg["runs"], agg["arrays"], agg["recheck_scores"], provenance
    rng = np.random.default_rng(seed)
    pairs(x, y, np.sort(rng.choice(len(x), min(10, len(x)), replace=False)), out["pairs"], provenance=prov)
    selected_vs_scanned(agg["histories"], len(x), out["selected_vs_scanned"], provenance=prov)
    score_vs_size(runs, agg["histories"], out["score_vs_size"], provenance=prov)
    first = min((k for k in agg["selected"] if split_key(k)[0] == "in_order"), key=lambda k: split_key(k)[1] or 0)
    selected_grid(x, y, agg["selected"][first], out["selected_grid"], provenance=prov)
    predictions(x_test, y_test, {r: arrays[r]["test_probs"] for r in runs_shown(list(arrays))}, out["predictions"],
                provenance=prov)
    pooled = {r: np.concatenate([s for k, s in recheck_scores.items() if split_key(k)[0] == r])
              for r in recheck_shown(list(recheck_scores))}
    recheck(pooled, pass_score, out["recheck"], provenance=prov)
