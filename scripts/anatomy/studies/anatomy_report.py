"""The anatomy of your own dataset, its one-page report: ``anatomy.md`` from the part tables
(:mod:`anatomy.studies.anatomy_results`), each number with its spread and n, each figure with one sentence on
what it means, and the figures' subtitle (the dataset by its configured name and the config scale)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from anatomy.studies import iic
from anatomy.studies.anatomy import PARTS, SUBSET_KINDS, choose_model
from anatomy.studies.anatomy_results import FITTED

MODEL_TEXT = {"small_cnn": "small CNN (conv 32, conv 64, max-pool, dense 128, dropout)",
              "vgg": "narrow VGG (convolutions 16-32-64 with BatchNorm, dense 128)"}


def spread(values, fmt: str = ".3f") -> str:
    """'mean ± sd (n = k)', the sd over runs (none with one run); NaN counts as not reached."""
    v = np.asarray(list(values), float)
    n, v = len(v), v[np.isfinite(v)]
    if not len(v):
        return f"not reached (n = {n})"
    text = f"{v.mean():{fmt}} ± {v.std(ddof=1):{fmt}} (n = {len(v)})" if len(v) > 1 else f"{v[0]:{fmt}} (n = 1)"
    return text + (f"; not reached in {n - len(v)} of {n}" if len(v) < n else "")


FIGURE_MEANING = {
    "memorisation": "If the random-label curves reach high training accuracy while their test accuracy stays at "
                    "chance, the network can memorise this training set: a high training accuracy alone says "
                    "nothing about what it learned.",
    "windows": "Each cell is a network that saw only that window: where the accuracy is high, the window "
               "alone carries the label; compare it with the full image's accuracy above.",
    "examples": "The images cleanlab ranks as most likely mislabelled, with their given and out-of-fold "
                "predicted classes: check these labels first.",
    "examples_datamap": "Images low on confidence and low on variability are consistently predicted as another "
                        "class (hard to learn, often mislabelled); high variability marks ambiguous ones.",
    "clustering": "Without any label the network groups the test images; a diagonal confusion table (accuracy well "
                  "above chance) means the classes are what separates these images most, an off-diagonal one "
                  "that something else does (background, colour, a nuisance the transforms do not remove).",
    "subset": "If the easiest images beat random ones at small sizes while the hardest trail, the data map ranks "
              "usefully; hardest-first subsets that fall below random often hold mislabelled or ambiguous images.",
    "ensemble": "The gap between the single models and their ensemble (and TTA) is worth having only where it is "
                "larger than the single models' spread; the intervals say which noise they include.",
}


def report(name: str, manifest: dict, s: dict, *, scale: str, tables: dict, summary=None) -> str:
    """``anatomy.md``: the dataset, then per part its numbers (with spread and n), figure and what it means."""
    shape = "x".join(map(str, manifest["shape"]))
    model = choose_model(s["model"], manifest["shape"])
    lines = [f"# The anatomy of '{name}'", "",
             f"{manifest['sizes']['train']} training and {manifest['sizes']['test']} test images, {shape} "
             f"(H x W x channels), {len(manifest['classes'])} classes ({', '.join(manifest['classes'])}); "
             f"source: {manifest['source']}. Model: {MODEL_TEXT[model]}, batch {s['batch_size']}, Adam at "
             f"{s['learning_rate']:g}. Config: {scale}. Spreads are sample sd over runs (seeds or folds), n runs.", ""]
    if "memorisation" in tables:
        t = tables["memorisation"]
        lines += ["## Memorisation", "",
                  f"Chance is {t['chance'].iloc[0]:.3f}; fitted means training accuracy >= {FITTED:g}. "
                  f"{s['memorisation']['epochs']} epochs per run.", "",
                  "| run | training accuracy | test accuracy | epochs to fit |", "| --- | --- | --- | --- |"]
        for run, g in t.groupby("run", sort=False):
            lines.append(f"| {run} | {spread(g['final_train_accuracy'])} | {spread(g['final_test_accuracy'])} | "
                         f"{spread(g['epochs_to_fit'], '.1f')} |")
        lines += ["", "![memorisation](figures/memorisation.png)", "", FIGURE_MEANING["memorisation"], ""]
    if "windows" in tables:
        t = tables["windows"]
        w, full = t[t["kind"] == "window"], t[t["kind"] == "full"]
        best = w.loc[w["test_accuracy"].idxmax()]
        lines += ["## Where the signal is", "",
                  f"Full image: test accuracy {spread(full['test_accuracy'])} (seeds). {len(w)} windows of "
                  f"{int(best['size'])}x{int(best['size'])} pixels, one run each (seed {int(w['seed'].iloc[0])}): "
                  f"best at row {int(best['i'])}, column {int(best['j'])} (top-left corner) with "
                  f"{best['test_accuracy']:.3f}, worst {w['test_accuracy'].min():.3f}; a single run per window, so "
                  "differences within the full image's spread are not settled.", "",
                  "![windows](figures/windows.png)", "", FIGURE_MEANING["windows"], ""]
    if "examples" in tables:
        t = tables["examples"]
        e = s["examples"]
        flagged = ", ".join(f"{r.issue_type.replace('_', ' ')} {int(r.num_issues)}" for r in summary.itertuples())
        hardest = t.nsmallest(5, "hardness_rank")
        lines += ["## Examples", "",
                  f"{e['folds']}-fold out-of-fold predictions ({e['epochs']} epochs per fold): accuracy "
                  f"{(t['oof_prediction'] == t['label']).mean():.3f} over {len(t)} training images. "
                  f"cleanlab Datalab flags: {flagged}. Hardest by out-of-fold loss: images "
                  f"{', '.join(str(int(i)) for i in hardest['image'])}. The full ranking is examples.csv.", "",
                  "![label issues](figures/examples.png)", "", FIGURE_MEANING["examples"], "",
                  "![data map](figures/examples_datamap.png)", "", FIGURE_MEANING["examples_datamap"], ""]
    if "clustering" in tables:
        lines += clustering_section(tables["clustering"], tables["clustering_confusion"], s["clustering"],
                                    channels=manifest["shape"][-1])
    if "subset" in tables:
        lines += subset_section(tables["subset"])
    if "ensemble" in tables:
        lines += ensemble_section(tables["ensemble"], s["ensemble"])
    return "\n".join(lines)


def clustering_section(t: pd.DataFrame, confusion: pd.DataFrame, c: dict, *, channels: int) -> list[str]:
    from anatomy.studies.anatomy import IIC

    names = ", ".join(iic.TRANSFORMS if channels == 1 else iic.COLOUR_TRANSFORMS)
    ch = t[t["chosen"]].iloc[0]
    out = ["## Clustering without labels", "",
           f"IIC (alpha {c['alpha']:g}, {IIC['pair'].replace('_', ' ')} of transforms {names}), {c['epochs']} epochs "
           f"on the training images without their labels, a {len(confusion)}-way head and a "
           f"{c['overclustering']}x overclustering head. Test accuracy (Hungarian matching) at the epoch with the "
           "lowest IIC loss at alpha 1 on a fixed pair of test views (chosen without labels), over seeds: "
           f"{spread(t['loss_selected_accuracy'])}; chance (the largest class) {t['chance'].iloc[0]:.3f}. Final epoch "
           f"{spread(t['final_accuracy'])}; overclustering purity {spread(t['loss_selected_over_purity'])}. "
           f"The best epoch by the labels would report {spread(t['label_selected_accuracy_optimistic'])} "
           "(optimistic, shown only for contrast). Confusion (test images) of the run with the lowest IIC loss "
           f"(seed {int(ch['seed'])}, epoch {int(ch['loss_selected_epoch'])}):", "",
           "| " + " | ".join(confusion.columns) + " |", "|" + " --- |" * len(confusion.columns)]
    out += ["| " + " | ".join(str(v) for v in r) + " |" for r in confusion.itertuples(index=False)]
    return out + ["", "![clustering](figures/clustering.png)", "", FIGURE_MEANING["clustering"], ""]


def subset_section(t: pd.DataFrame) -> list[str]:
    out = ["## Training-set size and the data map", "",
           f"Each subset is trained for {int(t['gradient_steps'].iloc[0])} gradient steps, whatever its size; easy "
           "and hard are the images with the highest and lowest data-map confidence (the examples part), random a "
           f"seeded draw. Test accuracy, mean ± sd over seeds (n):", "",
           "| training images | " + " | ".join(SUBSET_KINDS) + " |", "| --- |" + " --- |" * len(SUBSET_KINDS)]
    for (fraction, images), g in t.groupby(["fraction", "images"], sort=True):
        cells = [spread(g.loc[g["kind"] == k, "test_accuracy"]) for k in SUBSET_KINDS]
        out.append(f"| {images} ({fraction:.0%}) | " + " | ".join(cells) + " |")
    return out + ["", "![subset](figures/subset.png)", "", FIGURE_MEANING["subset"], ""]


def ensemble_section(t: pd.DataFrame, e: dict) -> list[str]:
    out = ["## Ensemble and test-time augmentation", "",
           f"{e['folds']} fold models per seed ({len(e['seeds'])} seeds, {e['epochs']} epochs each, trained with "
           f"affine augmentation), each trained on {e['folds'] - 1} of {e['folds']} folds of the training split; "
           f"the ensemble averages a seed's fold models, TTA averages {e['tta']} augmented copies of each test image "
           "with the image. Test accuracy: mean ± sd over trained models, and a 95% bootstrap interval "
           f"({e['bootstrap']} resamples) over what the last column says:", "",
           "| method | test accuracy (sd, n models) | 95% interval | interval over |", "| --- | --- | --- | --- |"]
    for r in t.itertuples():
        sd = "" if not np.isfinite(r.test_accuracy_sd) else f" ± {r.test_accuracy_sd:.3f}"
        ci = f"[{r.interval_low:.3f}, {r.interval_high:.3f}]" if np.isfinite(r.interval_low) else "-"
        out.append(f"| {r.description} | "
                   f"{r.test_accuracy_mean:.3f}{sd} (n = {r.trained_models}) | {ci} | {r.interval_over} |")
    return out + ["", "![ensemble](figures/ensemble.png)", "", FIGURE_MEANING["ensemble"], ""]


def provenance(name: str, source: str, scale: str) -> str:
    """Every figure's subtitle: the dataset by its configured name and the config scale."""
    return f"data: {name} (own dataset, {source}) | config: {scale}"


def write_report(path, inputs: dict, *, name: str, settings: dict, scale: str) -> None:
    """Write :func:`report` from the part tables' paths (``inputs``: part -> csv, ``examples_audit``, ``manifest``)."""
    from anatomy.io import atomic_path, read_json

    tables = {p: pd.read_csv(inputs[p]) for p in (*PARTS, "clustering_confusion") if p in inputs}
    summary = pd.read_csv(inputs["examples_audit"]) if "examples_audit" in inputs else None
    text = report(name, read_json(inputs["manifest"]), settings, scale=scale, tables=tables, summary=summary)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
