"""Study 2 (cifar), results: the runs' histories and metrics as tables, the label-corruption table, the noisy-BN
points, the figures' groups and the published claims (no TensorFlow). The variants, the training step and the
noisy-BN evaluations are :mod:`anatomy.studies.cifar`.
"""

from __future__ import annotations

import numpy as np


# ---------------------------------------------------------------- aggregation (no TensorFlow)

def epochs_to(history, column: str, level: float):
    """First epoch whose ``column`` reaches ``level`` (NaN if never)."""
    hit = history.index[history[column] >= level]
    return float(history.loc[hit[0], "epoch"]) if len(hit) else float("nan")


def collect(histories, metrics) -> tuple[dict, "pd.DataFrame"]:
    """Each run's history keyed by (run, seed), from its folder ``<run>/seed<s>`` (the rule's wildcards),
    and the summary table, one row per run and seed, from the runs' ``history.csv`` and ``metrics.json``
    paths (in the same order)."""
    import pandas as pd

    from anatomy.io import read_json, run_and_seed

    hist, rows = {}, []
    for h_path, m_path in zip(histories, metrics, strict=True):
        key = run_and_seed(h_path)
        hist[key] = pd.read_csv(h_path)
        rows.append({"run": key[0], "seed": key[1],
                     **run_summary(key[0], hist[key], read_json(m_path))})
    return hist, pd.DataFrame(rows)


def one_seed(hist: dict, summary: "pd.DataFrame", seed: int) -> tuple[dict, "pd.DataFrame"]:
    """The histories (keyed by run) and summary rows of one seed: what the figures show."""
    return ({run: h for (run, s), h in hist.items() if s == seed},
            summary[summary["seed"] == seed].reset_index(drop=True))


LABEL_TABLE_COLUMNS = ["p", "images", "redrawn_fraction", "changed_fraction"]


def label_table(variant_files) -> "pd.DataFrame":
    """One row per label-corruption variant (``labels_p<p>.npz``): p, images, and the fractions of
    labels redrawn and actually changed (a redrawn label equals the old one a tenth of the time)."""
    from pathlib import Path

    import pandas as pd

    rows = []
    for f in variant_files:
        with np.load(f) as v:
            rows.append({"p": float(Path(f).stem.removeprefix("labels_p")), "images": len(v["labels"]),
                         "redrawn_fraction": float(v["redrawn"].mean()),
                         "changed_fraction": float(v["changed"].mean())})
    return pd.DataFrame(rows, columns=LABEL_TABLE_COLUMNS)


CHANCE = 0.1      # ten classes
CONVERGED = 0.5   # a run has converged when it has closed half the gap between chance and a fitted training set


def fit_fraction(train_accuracy, chance: float = CHANCE):
    """Graded convergence: training accuracy above chance as a share of what is left above it (0 at chance,
    1 fitted). A run at 0.218 training accuracy has closed 0.13 of the gap: not converged."""
    return (np.asarray(train_accuracy, dtype=float) - chance) / (1 - chance)


def run_summary(name: str, history, metrics: dict) -> dict:
    h = history
    finite = h[np.isfinite(h["loss"])]
    return {
        "run": name,
        "final_test_accuracy": float(finite["test_accuracy"].iloc[-1]) if len(finite) else float("nan"),
        "best_test_accuracy": float(finite["test_accuracy"].max()) if len(finite) else float("nan"),
        "final_train_accuracy": float(finite["accuracy"].iloc[-1]) if len(finite) else float("nan"),
        "epochs_to_90pct_train_accuracy": epochs_to(finite, "accuracy", 0.9),
        "epochs_run": int(len(h)),
        "diverged": bool(metrics.get("diverged")),
        "fit_fraction": fit_fraction(finite["accuracy"].iloc[-1]) if len(finite) else float("nan"),
        "converged": bool(len(finite) and fit_fraction(finite["accuracy"].iloc[-1]) >= CONVERGED
                          and not metrics.get("diverged")),
        "test_images": metrics.get("test_images", float("nan")),
        **noisy_bn_columns(metrics),
    }


NOISY_BN_COLUMNS = {
    "test_accuracy_noise_off": "accuracy_noise_off",
    "test_accuracy_noise_on_mean": "accuracy_noise_on_mean",
    "test_accuracy_noise_on_sd": "accuracy_noise_on_sd",
    "test_accuracy_bn_reestimated": "accuracy_bn_reestimated",
}


def noisy_bn_columns(metrics: dict) -> dict:
    """The three noisy-BN test accuracies of a run's metrics.json (NaN for runs without noise, except the
    re-estimated accuracy of the BN run the noisy one is compared with) and the number of noise draws."""
    test = metrics.get("test") or {}
    noisy = bool((metrics.get("spec") or {}).get("noise"))
    cols = {col: float(test[key]) if noisy and test.get(key) is not None else float("nan")
            for col, key in NOISY_BN_COLUMNS.items()}
    if not noisy and test.get("accuracy_bn_reestimated") is not None:  # the BN run it is compared with
        cols["test_accuracy_bn_reestimated"] = float(test["accuracy_bn_reestimated"])
    draws = test.get("accuracy_noise_on_draws") if noisy else None
    cols["noise_on_draws"] = len(draws) if draws else float("nan")
    return cols


def noisy_bn_points(summary, base_lr: float) -> dict:
    """End-of-training test accuracies for the noisy-BN figure: ``{label: (epoch, value, sd)}``."""
    s = summary.set_index("run")
    nb, b = f"noisybn_lr{base_lr:g}", f"bn_lr{base_lr:g}"
    if nb not in s.index or "test_accuracy_bn_reestimated" not in s.columns:
        return {}
    r = s.loc[nb]
    draws = r.get("noise_on_draws")
    points = {
        f"noisy BN, noise on (mean ± sd of {draws:.0f} draws)" if draws == draws else "noisy BN, noise on":
            (r["epochs_run"], r["test_accuracy_noise_on_mean"], r["test_accuracy_noise_on_sd"]),
        "noisy BN, BN statistics re-estimated without noise": (r["epochs_run"], r["test_accuracy_bn_reestimated"],
                                                               None),
    }
    if b in s.index and s.loc[b, "test_accuracy_bn_reestimated"] == s.loc[b, "test_accuracy_bn_reestimated"]:
        points["BN, statistics re-estimated"] = (s.loc[b, "epochs_run"], s.loc[b, "test_accuracy_bn_reestimated"],
                                                 None)
    return points


def figure_groups(hist: dict, base_lr: float) -> dict:
    """The curves of each cifar figure from the runs' histories, keyed by run name (``bn_lr0.05``,
    ``nobn_lr0.5``, ``noisybn_...``, ``aug_...``, ``labels_p1``, ``pixels_<kind>``): per figure
    ``{legend label: history}``; ``bn_lr`` also carries ``styles`` (no BN dashed) and ``colors`` (one per rate).
    """
    b = f"lr{base_lr:g}"
    clean = hist[f"bn_{b}"]

    def pick(prefix):
        return {n: h for n, h in hist.items() if n.startswith(prefix)}

    def rate(name):
        return float(name.split("lr")[1])

    lrs = dict(sorted({**pick("bn_lr"), **pick("nobn_lr")}.items(), key=lambda kv: (rate(kv[0]), kv[0])))
    rates = sorted({rate(n) for n in lrs})
    labels = {"p = 0": clean, **{n.replace("labels_p", "p = "): h for n, h in pick("labels_").items()}}
    pixels = {"clean": clean, **{n.removeprefix("pixels_").replace("_", " "): h for n, h in pick("pixels_").items()}}
    corruptions = {"clean": clean, **{k: v for k, v in labels.items() if k != "p = 0"},
                   **{k: v for k, v in pixels.items() if k != "clean"}}
    return {
        "bn_lr": {"curves": lrs, "styles": {n: "--" for n in lrs if n.startswith("nobn")},
                  "colors": {n: rates.index(rate(n)) for n in lrs}},
        "noisy_bn": {f"BN {b}": clean, **{f"noisy BN {b} (curve: noise off, statistics as trained)": h
                                         for h in pick("noisybn").values()}},
        "augmentation": {f"BN {b}": clean, **{f"BN {b} + pad/crop/flip": h for h in pick("aug").values()}},
        "labels": labels,
        "pixels": pixels,
        "corruptions": corruptions,
    }


# ---------------------------------------------------------------- published claims (verdicts: anatomy.verdicts)

SOURCE = "notebook 'CIFAR10 and many graphs'; Zhang et al. 2017"
SANTURKAR = "Santurkar et al. 2018, Sec. 2.1 (VGG on CIFAR-10, 'noisy' BatchNorm)"
# Scored on CIFAR-10's own 10,000 test images, as ours: the published values carry their seed noise (one run)
# but no test-set noise relative to ours, so no published_se is named.


def claims():
    from anatomy.verdicts import Claim

    c = lambda key, text, type_, published, source=SOURCE, **kw: Claim(key, "cifar", text, type_, published,  # noqa: E731
                                                                        source, **kw)
    return {claim.key: claim for claim in (
        c("bn_trains_faster", "BatchNorm trains faster (training accuracy after the same epochs, BN - no BN, at "
          "each learning rate)", "effect", None, shown="faster (no size published)", figure="bn_lr.png",
          why="a direction with no published size: an effect against 0"),
        c("convergence", "graded convergence per rate (training accuracy above chance, as a share of the gap; "
          f"converged from {CONVERGED:g})", "reported", None, shown="BN converges where no BN does not",
          figure="bn_lr.png", why="how far each run got depends on the epochs and rates of the config"),
        c("augmentation", "augmentation raises test accuracy from 83-84% to about 90%", "effect", 0.065,
          shown="+0.065 (0.835 -> 0.90)", figure="augmentation.png", why="a gain of a stated size: our paired gain against 0 and against it"),
        c("labels_p0.1", "10% corrupted labels cost about 7 points of test accuracy", "effect", -0.07,
          figure="labels.png", why="a loss of a stated size"),
        c("fixed_permutation", "a fixed pixel permutation still tests at about 50%", "point", 0.50,
          figure="corruptions_test.png", why="'about X': a two-sided interval"),
        c("random_labels_test", "random labels (p = 1) test at chance, 10%", "point", 0.10,
          figure="labels.png", why="'about X': a two-sided interval"),
        c("random_labels_fitted", "random labels are still fitted (training accuracy near 1)", "fits", 0.95,
          shown=">= 0.95 training accuracy", figure="corruptions_train.png",
          why="Zhang et al.'s central claim: the training set is fitted, read at 0.95"),
        c("random_pixels_fitted", "Gaussian pixels are still fitted (training accuracy near 1)", "fits", 0.95,
          shown=">= 0.95 training accuracy", figure="corruptions_train.png",
          why="Zhang et al.'s central claim: the training set is fitted, read at 0.95"),
        c("noisy_bn_test", "noisy BN tests about as well as BN (noisy - BN test accuracy, BN statistics "
          "re-estimated without noise for both)", "noninferiority", None, source=SANTURKAR, margin=0.02,
          shown="about as well (margin 0.02)", figure="noisy_bn.png",
          why="'about as well' read as 'no worse than 2 points'; better is not a miss"),
        c("noise_slows_training", "noise barely slows training (noisy - BN training accuracy after the same "
          "epochs)", "noninferiority", None, source=SANTURKAR, margin=0.05, shown="barely (margin 0.05)",
          figure="noisy_bn.png", why="'barely slows' read as 'no more than 5 points behind at the same epoch'"),
    )}


def claims_evidence(summary: "pd.DataFrame", *, base_lr: float) -> list:
    """(claim, evidence, comparisons) for every cifar claim, from ``summary.csv`` (one row per run and seed;
    runs without a ``seed`` column are seed 0). Differences are paired by seed."""
    import pandas as pd

    from anatomy.verdicts import Evidence

    s = summary.copy()
    if "seed" not in s.columns:
        s["seed"] = 0
    cl, out = claims(), []
    b = f"lr{base_lr:g}"

    def col(run, column):
        r = s[s["run"] == run]
        return pd.Series(r[column].to_numpy(float), index=r["seed"]) if column in r else pd.Series(dtype=float)

    def pair(top, base, column, *, what):
        d = (col(top, column) - col(base, column)).dropna()
        a, z = col(top, column).dropna(), col(base, column).dropna()
        ours = f"{d.mean():+.3f}" if len(d) else "not run"
        return Evidence(list(d), ours=ours, unit="seed pairs",
                        details=f"{what}: {a.mean():.3f} vs {z.mean():.3f}" if len(d) else "")

    lrs = sorted({float(r.split("lr")[1]) for r in s["run"] if r.startswith("bn_lr")})
    for lr in lrs:
        e = pair(f"bn_lr{lr:g}", f"nobn_lr{lr:g}", "final_train_accuracy", what="training accuracy BN vs no BN")
        out.append((_at(cl["bn_trains_faster"], lr), e, len(lrs)))
    fits = "; ".join(f"lr {lr:g}: BN {col(f'bn_lr{lr:g}', 'final_train_accuracy').pipe(fit_fraction).mean():.2f}, "
                     f"no BN {col(f'nobn_lr{lr:g}', 'final_train_accuracy').pipe(fit_fraction).mean():.2f}"
                     for lr in lrs)
    every = [x for lr in lrs for run in (f"bn_lr{lr:g}", f"nobn_lr{lr:g}")
             for x in fit_fraction(col(run, "final_train_accuracy").dropna())]
    out.append((cl["convergence"], Evidence(every, ours=fits or "no BN run", finding=fits), 1))
    out.append((cl["augmentation"], pair(f"aug_{b}", f"bn_{b}", "final_test_accuracy",
                                             what="augmented vs plain test accuracy"), 1))
    out.append((cl["labels_p0.1"], pair("labels_p0.1", f"bn_{b}", "final_test_accuracy",
                                            what="p = 0.1 vs clean test accuracy"), 1))
    for key, run, column in (("fixed_permutation", "pixels_fixed_permutation", "final_test_accuracy"),
                             ("random_labels_test", "labels_p1", "final_test_accuracy"),
                             ("random_labels_fitted", "labels_p1", "final_train_accuracy"),
                             ("random_pixels_fitted", "pixels_gaussian_per_image", "final_train_accuracy")):
        v = col(run, column).dropna()
        out.append((cl[key], Evidence(list(v), ours=f"{v.mean():.3f}" if len(v) else "not run"), 1))
    nb = f"noisybn_{b}"
    e = pair(nb, f"bn_{b}", "test_accuracy_bn_reestimated", what="re-estimated test accuracy noisy BN vs BN")
    off, on = col(nb, "test_accuracy_noise_off").mean(), col(nb, "test_accuracy_noise_on_mean").mean()
    if len(e.values):
        e.details += (f"; noisy BN as trained (noise off, statistics gathered under noise, an evaluation artefact) "
                      f"{off:.3f}, with the noise on {on:.3f}")
    out.append((cl["noisy_bn_test"], e, 1))
    out.append((cl["noise_slows_training"], pair(nb, f"bn_{b}", "final_train_accuracy",
                                                     what="training accuracy noisy BN vs BN"), 1))
    return out


def _at(claim, lr: float):
    """The per-rate copy of a claim (its key and text name the rate)."""
    from dataclasses import replace

    return replace(claim, key=f"{claim.key}_lr{lr:g}", text=claim.text.replace("at each learning rate",
                                                                               f"at lr {lr:g}"))
