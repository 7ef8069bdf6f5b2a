"""results/summary.{csv,md}: each study's headline numbers beside the published ones.

Only the published values and their sources are typed in here; every "ours"
comes from the run's own tables. Verdicts: "reproduced", "not at this scale"
(the quick config, or a grid that lacks the run), "contradicted" (a full-scale
run that disagrees), or a study's own wording where it has one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

COLUMNS = ["study", "quantity", "published", "ours", "spread", "data", "config", "verdict", "source"]


def _verdict(ok: bool | None, scale: str) -> str:
    if ok is None:
        return "not at this scale"
    if ok:
        return "reproduced"
    return "not at this scale" if scale != "full" else "contradicted"


def _close(ours, published, spread, tolerance):
    if ours is None or (isinstance(ours, float) and math.isnan(ours)):
        return None
    return abs(ours - published) <= max(2 * (spread or 0.0), tolerance)


def _row(study, quantity, published, ours, spread, data, scale, verdict, source):
    return dict(zip(COLUMNS, [study, quantity, published, ours, spread, data, scale, verdict, source]))


def crops_rows(verdict: pd.Series, *, data: str, scale: str) -> list[dict]:
    src = "stacking-across article (Keras MNIST CNN, 9x9 windows)"
    v = verdict
    base_ok = _close(v["baseline_mean"], 0.9917, v["baseline_spread"], 0.002)
    rows = [_row("crops", "baseline accuracy, full images", 0.9917, round(v["baseline_mean"], 4),
                 round(v["baseline_spread"], 4), data, scale, _verdict(base_ok, scale), src)]
    text = str(v["verdict"])
    best = f"true window {v.get('best_window', '?')}: {v.get('best_window_test_accuracy', float('nan')):.4f}; " \
           f"published mask {v.get('best_as_published', '?')}: {v.get('best_as_published_test_accuracy', float('nan')):.4f}"
    rows.append(_row("crops", "best 9x9 windows (0, 14), (18, 1) beat the full image: 0.9922 > 0.9917",
                     "0.9922", best, round(v["baseline_spread"], 4), data, scale, text, src))
    return rows


def cifar_rows(summary: pd.DataFrame, *, base_lr: float, data: str, scale: str) -> list[dict]:
    src = "notebook 'CIFAR10 and many graphs'; Zhang et al. 2017"
    s = summary.set_index("run")
    get = lambda run, col="final_test_accuracy": float(s.loc[run, col]) if run in s.index else None  # noqa: E731
    rows = []
    lrs = sorted({float(r.split("lr")[1]) for r in s.index if r.startswith("bn_lr")})
    only_bn = [lr for lr in lrs if f"nobn_lr{lr:g}" in s.index and s.loc[f"bn_lr{lr:g}", "converged"]
               and not s.loc[f"nobn_lr{lr:g}", "converged"]]
    rows.append(_row("cifar", "BN converges at a learning rate where no-BN does not", "yes",
                     f"at lr {', '.join(f'{lr:g}' for lr in only_bn)}" if only_bn else "no such rate in the grid",
                     None, data, scale, _verdict(bool(only_bn), scale) if lrs else "not at this scale", src))
    b = f"bn_lr{base_lr:g}"
    plain, aug = get(b), get(f"aug_lr{base_lr:g}")
    if aug is not None and plain is not None:
        ok = (aug - plain) > 0.03 and aug > 0.85
        rows.append(_row("cifar", "augmentation: test accuracy 83-84% -> about 90%", "0.835 -> 0.90",
                         f"{plain:.3f} -> {aug:.3f}", None, data, scale, _verdict(ok, scale), src))
    p01 = get("labels_p0.1")
    rows.append(_row("cifar", "10% corrupted labels cost about 7 points of test accuracy", "-0.07",
                     f"{p01 - plain:+.3f}" if p01 is not None and plain is not None else "p = 0.1 not run",
                     None, data, scale,
                     _verdict(_close(p01 - plain, -0.07, None, 0.03) if p01 is not None else None, scale), src))
    perm = get("pixels_fixed_permutation")
    rows.append(_row("cifar", "fixed pixel permutation: about 50% test accuracy", 0.50,
                     round(perm, 3) if perm is not None else "not run", None, data, scale,
                     _verdict(_close(perm, 0.50, None, 0.07) if perm is not None else None, scale), src))
    p1 = get("labels_p1")
    rows.append(_row("cifar", "random labels (p = 1): 10% test accuracy", 0.10,
                     round(p1, 3) if p1 is not None else "not run", None, data, scale,
                     _verdict(_close(p1, 0.10, None, 0.03) if p1 is not None else None, scale), src))
    return rows


def iic_rows(summary: pd.DataFrame, *, data: str, scale: str) -> list[dict]:
    src = "IIC post (TF2); Ji et al. 2019 for 99.2%"
    rows = []
    sets = list(summary["transform_set"])
    tset = "all" if "all" in sets else sets[0]
    for alpha, published, what in ((1.0, 0.85, "alpha 1"), (10.0, 0.975, "alpha 10 (best epoch seen, label-selected)")):
        r = summary[(summary["transform_set"] == tset) & (summary["alpha"] == alpha)]
        if not len(r):
            rows.append(_row("iic", f"accuracy, {what}", published, "not run", None, data, scale,
                             "not at this scale", src))
            continue
        r = r.iloc[0]
        col = "label_selected_accuracy_optimistic" if alpha == 10.0 else "loss_selected_accuracy"
        ours = f"{r[f'{col}_mean']:.3f} ({col.split('_accuracy')[0].replace('_', '-')})"
        if col != "loss_selected_accuracy":
            ours += f"; loss-selected {r['loss_selected_accuracy_mean']:.3f}"
        ok = _close(float(r[f"{col}_mean"]), published, float(r[f"{col}_sd"]), 0.03)
        rows.append(_row("iic", f"accuracy, {what}, transform set '{tset}'", published, ours,
                         round(float(r[f"{col}_sd"]), 4), data, scale, _verdict(ok, scale), src))
    a1 = summary[(summary["transform_set"] == tset) & (summary["alpha"] == 1.0)]
    a10 = summary[(summary["transform_set"] == tset) & (summary["alpha"] == 10.0)]
    if len(a1) and len(a10):
        d = float(a10.iloc[0]["loss_selected_accuracy_mean"] - a1.iloc[0]["loss_selected_accuracy_mean"])
        ok = True if d > 0.02 else (False if scale == "full" else None)
        rows.append(_row("iic", "alpha 10 beats alpha 1 (loss-selected)", "+0.125", f"{d:+.3f}", None, data, scale,
                         _verdict(ok, scale), src))
    return rows


def digits_rows(leaderboard: pd.DataFrame, bootstrap: pd.DataFrame, *, data: str, scale: str) -> list[dict]:
    """Kaggle public-leaderboard scores beside the local leaderboard (derived data with known labels)."""
    src = "Kaggle kernel (Chainer CNNMedium), public leaderboard (about a quarter of the test set)"
    lb = leaderboard.set_index("entry")["test_accuracy"]
    sd = bootstrap.set_index("submission")["public_sd"] if len(bootstrap) else pd.Series(dtype=float)
    rows = []
    for entry, name, published in (("submission_simple", "simple", 0.964),
                                   ("submission_ensemble", "ensemble", 0.997)):
        ours = float(lb.get(entry, float("nan")))
        spread = float(sd.get(name, float("nan")))
        what = "single model, 80/20 split, 20 epochs" if name == "simple" else "5-fold ensemble with augmentation"
        rows.append(_row("digits", f"{what} ({entry}.csv)", published,
                         "test labels unknown" if math.isnan(ours) else round(ours, 4),
                         None if math.isnan(spread) else round(spread, 4), data, scale,
                         _verdict(_close(ours, published, spread, 0.003) if not math.isnan(ours) else None, scale),
                         src))
    if {"submission_simple", "submission_ensemble"} <= set(lb.index) and not lb.isna().any():
        gain = float(lb["submission_ensemble"] - lb["submission_simple"])
        rows.append(_row("digits", "gain of step 2 over step 1 (ensemble - simple)", round(0.997 - 0.964, 3),
                         round(gain, 4), None, data, scale, _verdict(gain > 0 if gain > 0 or scale == "full"
                                                                     else None, scale), src))
    return rows


def coreset_rows(verdict: pd.DataFrame, *, data: str, scale: str) -> list[dict]:
    """The coreset study's own verdict table, one row per claim."""
    src = "Airbus ship follow-up (synthetic ellipses, residual U-Net)"
    return [_row("coreset", r.claim, r.published, r.measured, None, data, scale, r.verdict, src)
            for r in verdict.itertuples()]


def write_summary(rows: list[dict], csv_path, md_path, *, title_note: str = "") -> pd.DataFrame:
    from anatomy.io import atomic_path

    df = pd.DataFrame(rows, columns=COLUMNS)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    lines = ["# dataset-anatomy: our numbers beside the published ones", "",
             "Every 'ours' value comes from this run's own result tables; 'spread' is the sample standard",
             "deviation over repeated runs (seeds) where there were any. Verdicts: reproduced / not at this",
             "scale (quick config or a run the grid lacks) / contradicted (full scale, disagrees).", ""]
    if title_note:
        lines += [title_note, ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "---|" * len(COLUMNS))
    for r in df.itertuples(index=False):
        cells = ["" if (isinstance(v, float) and np.isnan(v)) or v is None else str(v) for v in r]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    with atomic_path(md_path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return df
