"""The anatomy of a dataset of your own, from its runs' files: the tables of each part, cleanlab's audit and
the one-page report (numpy and pandas; the runs themselves: :mod:`anatomy.studies.anatomy`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from anatomy.studies import cifar_results, crops, crops_results, digits, digits_results, iic, iic_results
from anatomy.studies.anatomy import SUBSET_KINDS, SUBSET_RUN, WINDOW_RUN

FITTED = 0.95  # training accuracy at which a run counts as fitted (the cifar study reads Zhang et al.'s "fitted" so)


def read_runs(histories, metrics=()) -> tuple[dict, dict]:
    """Histories and metrics keyed by (run, seed), from paths ``.../<run>/seed<s>/history.csv``."""
    from anatomy.io import read_json, run_and_seed

    return ({run_and_seed(p): pd.read_csv(p) for p in histories}, {run_and_seed(p): read_json(p) for p in metrics})


def memorisation_table(histories: dict, metrics: dict, num_classes: int) -> pd.DataFrame:
    """One row per run and seed (``histories`` and ``metrics`` keyed by (run, seed)): final training and test
    accuracy, the share of the gap above chance fitted and the first epoch at :data:`FITTED` training accuracy."""
    chance = 1 / num_classes
    rows = []
    for (run, seed), h in histories.items():
        m = metrics[(run, seed)]
        last = h.iloc[-1]
        rows.append({"run": run, "seed": seed, "labels_changed": m.get("labels_changed", 0.0),
                     "final_train_accuracy": float(last["accuracy"]), "final_test_accuracy": float(last["test_accuracy"]),
                     "fit_fraction": float(cifar_results.fit_fraction(last["accuracy"], chance)),
                     "epochs_to_fit": cifar_results.epochs_to(h, "accuracy", FITTED), "epochs_run": int(len(h)),
                     "chance": chance, "diverged": bool(m.get("diverged"))})
    return pd.DataFrame(rows)


def windows_table(runs: dict, x_test) -> pd.DataFrame:
    """One row per run: ``runs`` maps (run, seed) to its history; the full-image rows first, then one per window
    with the share of the test images' ink it keeps and its margin over the full-image mean."""
    rows = []
    for (run, seed), h in runs.items():
        m = WINDOW_RUN.fullmatch(run)
        size, i, j = map(int, m.groups()) if m else (None, None, None)
        ink = crops.ink_kept(x_test, crops.window_mask(i, j, size, x_test.shape[1:3])) if m else 1.0
        rows.append({"kind": "window" if m else "full", "seed": seed, "size": size, "i": i, "j": j,
                     "test_accuracy": float(h["test_accuracy"].iloc[-1]), "ink_kept": ink})
    df = pd.DataFrame(rows).astype({"size": "Int64", "i": "Int64", "j": "Int64"})
    full = crops_results.baseline_stats(df[df["kind"] == "full"])
    df["margin_over_full_mean"] = df["test_accuracy"] - full["mean"]
    return df.sort_values(["kind", "seed", "i", "j"], ascending=[True, True, True, True]).reset_index(drop=True)


def out_of_fold(preds: list[dict]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Per training image, from the fold model that did not train on it (the digits study's check that each
    image is held out exactly once): the table, the probabilities (N x K) and the features of every fold model
    side by side (N x folds*D: one space for every image)."""
    oof = digits_results.out_of_fold(preds)
    rows = np.arange(len(oof))
    probs = np.stack([p["probs"] for p in preds])[oof["oof_fold"].to_numpy(), rows]
    return oof, probs, np.concatenate([p["features"] for p in preds], axis=1)


def data_map(preds: list[dict]) -> pd.DataFrame:
    """Per training image, over the epochs of the fold models that trained on it (averaged over those models):
    confidence (mean probability of its label), variability (its sd over epochs) and forgetting events
    (epochs at which a predicted image stops being predicted, Toneva et al. 2019)."""
    seen = np.stack([p["seen"] for p in preds]).astype(float)  # models x images
    p = np.stack([q["p_label"] for q in preds])  # models x epochs x images
    c = np.stack([q["correct"] for q in preds])
    forgets = (c[:, :-1] & ~c[:, 1:]).sum(1)
    mean = lambda v: (v * seen).sum(0) / seen.sum(0)  # noqa: E731
    return pd.DataFrame({"confidence": mean(p.mean(1)), "variability": mean(p.std(1)),
                         "correctness": mean(c.mean(1)), "forgetting_events": mean(forgets)})


ISSUE_TYPES = ("label", "outlier", "near_duplicate", "class_imbalance")


def audit(labels, pred_probs, features) -> tuple[pd.DataFrame, pd.DataFrame]:
    """cleanlab's ``Datalab.find_issues`` on out-of-fold probabilities and features: the per-image issues
    (flag and score of each type, near-duplicate sets) and the summary (one row per type)."""
    from cleanlab import Datalab

    lab = Datalab(data={"label": np.asarray(labels)}, label_name="label", verbosity=0)
    # one process: cleanlab's default pool forks, and a fork of a process that has run TensorFlow can hang
    types = {t: {} for t in ISSUE_TYPES} | {"label": {"clean_learning_kwargs": {"find_label_issues_kwargs": {"n_jobs": 1}}}}
    lab.find_issues(pred_probs=pred_probs, features=features, issue_types=types)
    issues = pd.concat([lab.get_issues(t).filter(regex=r"^is_|_score$|_sets$") for t in ISSUE_TYPES], axis=1)
    issues = issues.rename(columns=lambda c: c.removeprefix("is_"))
    return issues, lab.get_issue_summary()


def examples_table(preds: list[dict], *, classes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per training image, ranked by cleanlab's label score (rank 1: most likely mislabelled):
    out-of-fold prediction and loss, the data map, and the audit's flags and scores. Also the audit summary."""
    oof, probs, features = out_of_fold(preds)
    issues, summary = audit(oof["label"].to_numpy(), probs, features)
    df = pd.concat([oof.drop(columns=["in_sample_mean_loss"]), data_map(preds), issues], axis=1)
    df.insert(2, "label_name", [classes[k] for k in df["label"]])
    df.insert(4, "predicted_name", [classes[k] for k in df["oof_prediction"]])
    df = df.sort_values(["label_score", "image"], kind="stable").reset_index(drop=True)
    df.insert(0, "label_issue_rank", np.arange(1, len(df) + 1))
    df["hardness_rank"] = df["oof_loss"].rank(ascending=False, method="first").astype(int)
    return df, summary


def planted_recall(table: pd.DataFrame, planted, top: int) -> dict:
    """Of the images whose labels were flipped on purpose, the share among the ``top`` label-issue candidates
    (recall) and the share of those candidates that were planted (precision)."""
    found = set(table.nsmallest(top, "label_issue_rank")["image"]) & set(np.asarray(planted).tolist())
    return {"top": top, "planted": len(planted), "found": len(found), "recall": len(found) / max(1, len(planted)),
            "precision": len(found) / max(1, top)}


def aggregate_memorisation(h5, histories, metrics) -> tuple[pd.DataFrame, dict, float]:
    """memorisation.csv, the first seed's histories by run (the figure's curves) and chance."""
    from anatomy.io import read_h5_attrs

    hist, met = read_runs(histories, metrics)
    table = memorisation_table(hist, met, len(read_h5_attrs(h5)["classes"]))
    first = min(seed for _, seed in hist)
    return table, {run: h for (run, seed), h in hist.items() if seed == first}, float(table["chance"].iloc[0])


def aggregate_windows(h5, histories) -> tuple[pd.DataFrame, np.ndarray]:
    """windows.csv and the test images (the figure's background)."""
    from anatomy.io import read_dataset_h5

    x_test, _ = read_dataset_h5(h5, "test")
    return windows_table(read_runs(histories)[0], x_test), x_test


def aggregate_examples(h5, predictions) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """examples.csv, the audit's summary and the training images (the thumbnails)."""
    from anatomy.io import read_dataset_h5, read_h5_attrs

    x_train, _ = read_dataset_h5(h5, "train")
    table, summary = examples_table([digits.read_predictions(p) for p in predictions],
                                    classes=read_h5_attrs(h5)["classes"])
    return table, summary, x_train


def clustering_table(runs: dict, num_classes: int) -> tuple[pd.DataFrame, dict]:
    """One row per seed (``runs`` maps (run, seed) to (history, predictions)): :func:`anatomy.studies.iic_results.run_row`
    (final, loss-selected and the optimistic label-selected accuracy) with the overclustering purity at the
    loss-selected epoch and chance (the largest class's share of the test images). The loss-selected epoch
    and, over seeds, the loss-selected run are chosen by the IIC loss on the test pairs, never by labels.
    Also the chosen run's key and epoch (0-based) for the confusion table."""
    rows = []
    for (run, seed), (h, pr) in sorted(runs.items(), key=lambda kv: kv[0][1]):
        r = iic_results.run_row(h, pr, clusters=num_classes)
        best = int(h["eval_loss"].to_numpy().argmin())
        labels = np.asarray(pr["labels"])
        rows.append({"seed": seed, **r, "loss_selected_eval_loss": float(h["eval_loss"].iloc[best]),
                     "loss_selected_over_purity": float(h["test_over_purity"].iloc[best]),
                     "chance": float(np.bincount(labels, minlength=num_classes).max() / len(labels)),
                     "test_images": int(len(labels))})
    df = pd.DataFrame(rows)
    chosen = df.loc[df["loss_selected_eval_loss"].idxmin()]
    df["chosen"] = df["seed"] == chosen["seed"]
    key = next(k for k in runs if k[1] == chosen["seed"])
    return df, {"key": key, "epoch": int(chosen["loss_selected_epoch"]) - 1}


def aggregate_clustering(h5, histories, predictions) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """clustering.csv, clustering_confusion.csv (true class x cluster of the chosen run at its loss-selected epoch,
    clusters in Hungarian order) and what the figure draws (labels, clusters, order, class names, accuracy)."""
    from anatomy.io import read_h5_attrs

    classes = list(read_h5_attrs(h5)["classes"])
    from anatomy.io import run_and_seed

    hist = read_runs(histories)[0]
    preds = {run_and_seed(p): digits.read_predictions(p) for p in predictions}
    runs = {key: (h, preds[key]) for key, h in hist.items()}
    table, pick = clustering_table(runs, len(classes))
    pr = runs[pick["key"]][1]
    clusters = np.asarray(pr["assignments"])[pick["epoch"], 0]
    acc, order = iic_results.label_order(pr["labels"], clusters, len(classes))
    c = iic.contingency(clusters, pr["labels"], len(classes), len(classes)).T[:, order]
    confusion = pd.DataFrame(c, columns=[f"cluster {k}" for k in order])
    confusion.insert(0, "class", classes)
    return table, confusion, {"labels": pr["labels"], "clusters": clusters, "order": order, "classes": classes,
                              "accuracy": acc, "seed": pick["key"][1], "epoch": pick["epoch"] + 1}


def subset_table(metrics: dict, n_train: int) -> pd.DataFrame:
    """One row per subset run and seed (``metrics`` keyed by (run, seed)): kind, fraction, images, classes they
    hold, gradient steps and final test accuracy, sorted by size then kind."""
    rows = []
    for (run, seed), m in metrics.items():
        kind, fraction = SUBSET_RUN.fullmatch(run).groups()
        rows.append({"kind": kind, "fraction": float(fraction), "images": m["train_images"], "train_images_all": n_train,
                     "classes_in_subset": m.get("subset_classes"), "seed": seed,
                     "gradient_steps": m["settings"]["subset"]["steps"],
                     "test_accuracy": float(m["test"].get("accuracy", np.nan)), "diverged": bool(m.get("diverged"))})
    df = pd.DataFrame(rows)
    df["kind_order"] = df["kind"].map(SUBSET_KINDS.index)
    return df.sort_values(["fraction", "kind_order", "seed"]).drop(columns="kind_order").reset_index(drop=True)


def aggregate_subset(h5, metrics) -> pd.DataFrame:
    """subset.csv from the subset runs' metrics.json (and the training split's size from the dataset file)."""
    from anatomy.io import split_size

    return subset_table(read_runs([], metrics)[1], split_size(h5, "train"))


ENSEMBLE_METHODS = (("single", "single fold model"), ("single_tta", "single fold model + TTA"),
                    ("ensemble", "k-fold ensemble"), ("ensemble_tta", "k-fold ensemble + TTA"))


def bootstrap_accuracy(correct, *, resamples: int, seed: int = 0) -> tuple[float, float, str]:
    """A 95% percentile interval of the mean accuracy of ``correct`` (trained models x test images, 0/1).
    With two or more models both are resampled (models, then test images, with replacement): the interval covers
    the model-to-model and the test-set noise. With one model only the test images are. Returns (low, high, over)."""
    c = np.asarray(correct, float)
    rng = np.random.default_rng(seed)
    m, n = c.shape
    acc = np.empty(resamples)
    for b in range(resamples):
        models = rng.integers(m, size=m) if m > 1 else np.zeros(1, int)
        acc[b] = c[models][:, rng.integers(n, size=n)].mean()
    over = f"{m} trained models and {n} test images" if m > 1 else f"{n} test images only (one trained model)"
    return float(np.quantile(acc, 0.025)), float(np.quantile(acc, 0.975)), over


def ensemble_table(preds: dict, *, resamples: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``preds`` maps (fold, seed) to a fold model's predictions (``test``, ``labels``, ``test_tta``). The single
    models are every fold model (n = folds x seeds), the ensembles one per seed (the folds' probabilities
    averaged, :func:`anatomy.studies.digits.ensemble`; n = seeds). Per method: mean, sd over trained models, n and
    the bootstrap interval (:func:`bootstrap_accuracy`, and what it resamples); the gains ensemble - single and
    TTA - none, paired by seed. Also one row per trained model (the figure's points)."""
    seeds = sorted({s for _, s in preds})
    labels = next(iter(preds.values()))["labels"]
    tta = all("test_tta" in p for p in preds.values())
    probs = {}
    for s in seeds:
        members = [p for (_, seed), p in sorted(preds.items()) if seed == s]
        probs[("single", s)] = [p["test"] for p in members]
        probs[("ensemble", s)] = [digits.ensemble([p["test"] for p in members])]
        if tta:
            probs[("single_tta", s)] = [p["test_tta"] for p in members]
            probs[("ensemble_tta", s)] = [digits.ensemble([p["test_tta"] for p in members])]
    correct = {key: [np.asarray(q).argmax(1) == labels for q in v] for key, v in probs.items()}
    models, rows = [], []
    for method, text in ENSEMBLE_METHODS:
        if (method, seeds[0]) not in correct:
            continue
        c = np.stack([x for s in seeds for x in correct[(method, s)]])
        acc = c.mean(1)
        models += [{"method": method, "model": i, "test_accuracy": float(a)} for i, a in enumerate(acc)]
        lo, hi, over = bootstrap_accuracy(c, resamples=resamples)
        rows.append({"method": method, "description": text, "trained_models": len(acc), "seeds": len(seeds),
                     "test_accuracy_mean": float(acc.mean()), "test_accuracy_sd": float(acc.std(ddof=1)) if len(acc) > 1
                     else np.nan, "interval_low": lo, "interval_high": hi, "interval_over": over,
                     "test_images": int(len(labels))})
    table = pd.DataFrame(rows)
    per_seed = {m: np.array([np.mean([x.mean() for x in correct[(m, s)]]) for s in seeds])
                for m in table["method"]}
    for name, a, b, text in (("ensemble - single", "ensemble", "single", "gain of the ensemble over its members"),
                             ("single_tta - single", "single_tta", "single", "gain of TTA, single models"),
                             ("ensemble_tta - ensemble", "ensemble_tta", "ensemble", "gain of TTA, ensembles")):
        if a in per_seed:
            d = per_seed[a] - per_seed[b]
            table.loc[len(table)] = {"method": name, "description": f"{text} (per seed; single models: their mean)",
                                     "trained_models": len(d), "seeds": len(seeds), "test_accuracy_mean": d.mean(),
                                     "test_accuracy_sd": d.std(ddof=1) if len(d) > 1 else np.nan,
                                     "interval_low": np.nan, "interval_high": np.nan,
                                     "interval_over": "seeds", "test_images": int(len(labels))}
    return table, pd.DataFrame(models)


def aggregate_ensemble(predictions, *, resamples: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ensemble.csv and the per-model points from the ensemble folds' predictions.npz."""
    from anatomy.io import run_and_seed

    return ensemble_table({run_and_seed(p): digits.read_predictions(p) for p in predictions}, resamples=resamples)
