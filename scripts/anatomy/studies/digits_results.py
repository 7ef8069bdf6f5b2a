"""Study 5 (digits), its tables and claims: fold validation (clean and as the kernel leaked it),
out-of-fold hardest examples, the ablation ladder, and the published scores as typed claims.

Pure numpy/pandas: it reads the trainings' ``predictions.npz`` (:mod:`anatomy.studies.digits`) and the
Kaggle side's tables (:mod:`anatomy.studies.kaggle`); nothing here imports TensorFlow.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from anatomy.studies.digits import accuracy, ensemble, read_predictions
from anatomy.studies.kaggle import public_se

# The kernel's public-leaderboard scores (about a quarter of Kaggle's 28,000 test images).
PUBLISHED = {"simple": 0.964, "ensemble": 0.997}
PUBLISHED_GAIN = round(PUBLISHED["ensemble"] - PUBLISHED["simple"], 3)  # 0.033

# The ablation ladder: each rung adds one of step 2's changes to the one above.
LADDER = [
    ("step1", "step 1 as published (80/20 split, constant learning rate)"),
    ("epochs", "+ step 2's epochs"),
    ("lr_steps", "+ learning-rate steps"),
    ("augment", "+ affine augmentation (one model)"),
    ("ensemble", "+ k-fold ensemble (step 2 as published)"),
]
LADDER_ROWS = [name for name, _ in LADDER]


def fold_validation(pred: dict, folds: pd.DataFrame, fold: int) -> dict:
    """A fold model's accuracy on its own held-out fold (clean) and on step 1's hold-out (what
    the kernel validated every fold on), with the share of that hold-out the model trained on."""
    labels, probs, seen = pred["labels"], pred["probs"], pred["seen"]
    f = folds.set_index("image").loc[pred["images"]]
    own = (f["fold"].to_numpy() == fold)
    step1 = f["step1"].to_numpy() == "validation"
    acc = lambda m: accuracy(probs[m], labels[m])  # noqa: E731
    if np.any(seen & own):
        raise ValueError(f"fold {fold}: the model trained on images of its own held-out fold")
    return {"own_fold_val_accuracy": acc(own), "step1_split_val_accuracy_leaked": acc(step1),
            "step1_split_seen_in_training": float(seen[step1].mean())}


def out_of_fold(preds: list[dict]) -> pd.DataFrame:
    """Each training image's loss from the one fold model that did not train on it.

    ``preds``: the fold models' prediction dicts (same ``images`` order).
    ``in_sample_mean_loss`` is the kernel's number: the loss averaged over all
    fold models, most of which trained on the image.
    """
    images = preds[0]["images"]
    for p in preds[1:]:
        if not np.array_equal(p["images"], images):
            raise ValueError("fold predictions cover different images")
    unseen = np.stack([~p["seen"] for p in preds])  # models x images
    per_image = unseen.sum(0)
    if not (per_image == 1).all():
        bad = int(np.argmax(per_image != 1))
        raise ValueError(f"image {images[bad]} is held out by {per_image[bad]} fold models, expected exactly 1")
    which = unseen.argmax(0)
    cols = np.arange(len(images))
    probs = np.stack([p["probs"] for p in preds])[which, cols]
    labels = preds[0]["labels"]
    losses = np.stack([p["losses"] for p in preds])
    return pd.DataFrame({
        "image": images, "label": labels, "oof_fold": which, "oof_prediction": probs.argmax(1),
        "oof_probability_of_label": probs[cols, labels], "oof_loss": losses[which, cols],
        "in_sample_mean_loss": losses.mean(0),
    })


def hardest(oof: pd.DataFrame, *, top: int) -> pd.DataFrame:
    """The ``top`` images by out-of-fold loss, with the kernel's in-sample ranking beside them."""
    ranked = oof.sort_values("oof_loss", ascending=False, kind="stable").reset_index(drop=True)
    kernel_rank = oof["in_sample_mean_loss"].rank(ascending=False, method="first").astype(int)
    out = ranked.head(top).copy()
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out["in_sample_rank"] = pd.Series(kernel_rank.to_numpy(), index=oof["image"]).loc[out["image"]].to_numpy()
    out["in_kernel_top"] = out["in_sample_rank"] <= top
    out["overlap_of_top_lists"] = int(out["in_kernel_top"].sum())
    return out


def ladder_from_runs(runs, seeds, folds: int, test_labels) -> pd.DataFrame:
    """The ladder from its prediction files: ``runs`` maps '<row>_seed<s>' (step1, epochs, lr_steps,
    augment) and 'fold<k>_seed<s>' (k = 0..folds-1, as the fold folders) to predictions.npz paths; ``test_labels`` may be None."""
    test_acc, holdout_acc = {}, {}
    for s in seeds:
        for row in ("step1", "epochs", "lr_steps", "augment"):
            p = read_predictions(runs[f"{row}_seed{s}"])
            held = ~p["seen"]
            holdout_acc[(row, s)] = accuracy(p["probs"][held], p["labels"][held])
            test_acc[(row, s)] = np.nan if test_labels is None else accuracy(p["test"], test_labels)
        preds = [read_predictions(runs[f"fold{k}_seed{s}"]) for k in range(folds)]
        oof = out_of_fold(preds)
        holdout_acc[("ensemble", s)] = float((oof["oof_prediction"] == oof["label"]).mean())
        test_acc[("ensemble", s)] = (np.nan if test_labels is None
                                     else accuracy(ensemble([p["test"] for p in preds]), test_labels))
    return ladder(test_acc, holdout_acc, seeds)


def ladder(test_acc: dict, holdout_acc: dict, seeds) -> pd.DataFrame:
    """The ablation ladder: one row per rung, accuracy per seed, mean, spread and what each rung bought.

    ``test_acc[(row, seed)]`` (NaN when the test labels are unknown) and
    ``holdout_acc[(row, seed)]``: step 1's hold-out for the single models, the
    out-of-fold accuracy of the fold models for the ensemble rung.
    """
    rows, prev = [], None
    for name, text in LADDER:
        t = np.array([test_acc[(name, s)] for s in seeds], float)
        h = np.array([holdout_acc[(name, s)] for s in seeds], float)
        row = {"rung": len(rows) + 1, "row": name, "change": text, "seeds": len(seeds),
               "test_accuracy_mean": t.mean(), "test_accuracy_sd": t.std(ddof=1) if len(t) > 1 else 0.0}
        row.update({f"test_accuracy_seed{s}": v for s, v in zip(seeds, t)})
        row["holdout_accuracy_mean"] = h.mean()
        row["holdout"] = "out-of-fold (each image by the model that did not see it)" if name == "ensemble" \
            else "step 1's 20% hold-out"
        row["gain_over_previous"] = t.mean() - prev if prev is not None else np.nan
        rows.append(row)
        prev = t.mean()
    df = pd.DataFrame(rows)
    df["gain_over_step1"] = df["test_accuracy_mean"] - df["test_accuracy_mean"].iloc[0]
    return df


# --------------------------------------------------------------- published claims (verdicts: anatomy.verdicts)

SOURCE = "Kaggle kernel (Chainer CNNMedium), public leaderboard (about a quarter of the test set)"
# One of our runs per rung on the laptop: the run-to-run sd of a small MNIST CNN, named for n = 1 (the crops
# baseline's three seeds give 0.0012 at laptop scale; rounded up). A difference of two runs: x sqrt(2).
SEED_SD = 0.002
SEED_SD_SOURCE = "seed-to-seed sd of a small MNIST CNN's test accuracy, 0.0012 over the crops baseline's 3 seeds, "\
                 "rounded up to 0.002"


def claims():
    from anatomy.verdicts import Claim

    s, e = PUBLISHED["simple"], PUBLISHED["ensemble"]
    return {c.key: c for c in (
        Claim("simple", "digits", "single model, 80/20 split, 20 epochs (submission_simple.csv) scores 0.964",
              "point", s, SOURCE, published_se=public_se(s), external_sd=SEED_SD, external_sd_source=SEED_SD_SOURCE,
              figure="ladder.png", why="one published score on a public quarter: a two-sided prediction interval"),
        Claim("ensemble", "digits", "5-fold ensemble with augmentation (submission_ensemble.csv) scores 0.997",
              "point", e, SOURCE, published_se=public_se(e), external_sd=SEED_SD, external_sd_source=SEED_SD_SOURCE,
              figure="ensemble_vs_single.png", why="one published score on a public quarter"),
        Claim("gain", "digits", "step 2 gains 3.3 points over step 1 (ensemble rung - step 1 rung, paired by seed)",
              "effect", PUBLISHED_GAIN, SOURCE, shown=f"+{PUBLISHED_GAIN:g}",
              published_se=float(np.hypot(public_se(s), public_se(e))), external_sd=SEED_SD * math.sqrt(2),
              external_sd_source="a difference of two runs: 0.002 x sqrt(2)", figure="ladder.png",
              why="a gain of a stated size"),
    )}


def _ladder_seeds(ladder: pd.DataFrame | None, row: str) -> list:
    """One test accuracy per training seed of a ladder rung (``ladder.csv``: ``test_accuracy_seed<k>``)."""
    if ladder is None or "row" not in ladder.columns or row not in set(ladder["row"]):
        return []
    t = ladder.set_index("row")
    return [float(t.loc[row, c]) for c in t.columns if c.startswith("test_accuracy_seed")]


def bootstrap_basis(bootstrap: pd.DataFrame | None, submission: str) -> str:
    """The test-set noise of one public-size score (``bootstrap.csv``), in words: resamples, not models."""
    if bootstrap is None or "subset_size" not in bootstrap.columns or submission not in set(bootstrap["submission"]):
        return "no bootstrap (test labels unknown)"
    r = bootstrap.set_index("submission").loc[submission]
    return (f"test-set noise of one run on a public-size subset: sd {r['public_sd']:.4f}, 95% "
            f"[{r['public_q025']:.4f}, {r['public_q975']:.4f}] over {int(r['subsets'])} resamples of "
            f"{int(r['subset_size'])} local test images (resamples, not trained models)")


def claims_evidence(leaderboard: pd.DataFrame, bootstrap: pd.DataFrame | None = None,
                    ladder: pd.DataFrame | None = None) -> list:
    """(claim, evidence, comparisons) for the digits claims: each rung's test accuracy per training seed from
    ``ladder.csv`` (the leaderboard's submission where the ladder lacks the rung), the gain paired by seed."""
    from anatomy.verdicts import Evidence

    cl, out = claims(), []
    lb = leaderboard.set_index("entry")["test_accuracy"]
    for key, row in (("simple", "step1"), ("ensemble", "ensemble")):
        v = _ladder_seeds(ladder, row) or [float(lb.get(f"submission_{key}", float("nan")))]
        v = [x for x in v if math.isfinite(x)]
        out.append((cl[key], Evidence(v, ours=f"{np.mean(v):.4f}" if v else "test labels unknown",
                                          details=bootstrap_basis(bootstrap, key)), 1))
    top, base = _ladder_seeds(ladder, "ensemble"), _ladder_seeds(ladder, "step1")
    if not (top and base):
        top = [float(lb.get("submission_ensemble", float("nan")))]
        base = [float(lb.get("submission_simple", float("nan")))]
    d = [a - b for a, b in zip(top, base) if math.isfinite(a - b)]
    out.append((cl["gain"], Evidence(d, ours=f"{np.mean(d):+.4f}" if d else "test labels unknown",
                                         unit="seed pairs", details=bootstrap_basis(bootstrap, "ensemble - simple")),
                1))
    return out
