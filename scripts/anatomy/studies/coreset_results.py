"""Study 4 (coreset), results: the runs table, its labels, the re-check histogram, the published claims and the
aggregate rule's inputs (no TensorFlow). The selection and the controls themselves are :mod:`anatomy.studies.coreset`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anatomy.studies.coreset import PUBLISHED
from anatomy.studies.coreset_controls import MATCHED_STEPS, MATCHED_SUFFIX, STOP_AT_TARGET, parse_control


# ---------------------------------------------------------------- aggregation (no TensorFlow)

RUN_LABELS = {"in_order": "selection, in order", "shuffled": "selection, shuffled order", "full": "full training set"}
SELECTION_BUDGET = "selection (retrained after each addition)"
RUNS_ORDER = ("in_order", "shuffled")


def run_label(run: str) -> str:
    """E.g. 'random subset (seed 1), matched gradient steps'; selection runs by their order."""
    if run in RUNS_ORDER:
        return RUN_LABELS[run]
    try:
        c = parse_control(run)
    except ValueError:
        return run
    what = "full training set" if c["kind"] == "full" else f"random subset (seed {c['subset_seed']})"
    return f"{what}, {c['budget']}"


def run_budget(run: str) -> str:
    """The training budget of a run: the selection's own, stop at target, or matched gradient steps."""
    return SELECTION_BUDGET if run in RUNS_ORDER else parse_control(run)["budget"]


def _sort_key(run: str):
    if run in RUNS_ORDER:
        return (0, RUNS_ORDER.index(run), 0, 0)
    c = parse_control(run)
    return (1 if c["kind"] == "full" else 2, c["subset_seed"] or 0, c["budget"] == MATCHED_STEPS, 0)


def runs_table(metrics: dict) -> "pd.DataFrame":
    """One row per run from its metrics.json: the study's table (results/coreset/runs.csv).

    ``budget``: the selection's own (retrained after each addition), "stop at
    target" (the controls as the selection stops), or "matched gradient steps"
    (the controls trained for as many optimizer steps as the in-order selection).
    """
    import pandas as pd

    rows = []
    for run in sorted(metrics, key=_sort_key):
        m = metrics[run]
        t = m["test"]
        rows.append({"run": run, "description": run_label(run), "budget": run_budget(run),
                     "pairs_used": m["pairs_used"], "train_pairs": m["train_pairs"],
                     "test_score_thresholded": t["score"],
                     "test_score_soft_as_published": t["score_soft_as_published"], "test_mean_iou": t["mean_iou"],
                     "recheck_pass_fraction": t["recheck_pass_fraction"],
                     "recheck_pairs": t.get("recheck_pairs", m["train_pairs"]), "epochs_run": m["epochs_run"],
                     "gradient_steps": m["gradient_steps"], "budget_steps": m.get("budget_steps")})
    return pd.DataFrame(rows)


def runs_shown(runs) -> list:
    """The runs the predictions figure shows: both selections, one random subset and the full set, the
    controls at matched gradient steps where there are any (the verdict's budget)."""
    runs = sorted(runs, key=_sort_key)
    shown = [r for r in RUNS_ORDER if r in runs]
    for prefix in ("random_seed", "full"):
        kind = [r for r in runs if r.startswith(prefix)]
        matched = [r for r in kind if r.endswith(MATCHED_SUFFIX)]
        shown += (matched or kind)[:1]
    return shown


def recheck_shown(runs) -> list:
    """The runs the re-check figure shows: both selections and the controls at matched gradient steps where
    there are any (every run stays in recheck_histogram.csv)."""
    runs = sorted(runs, key=_sort_key)
    matched = [r for r in runs if r.endswith(MATCHED_SUFFIX)]
    return [r for r in runs if r in RUNS_ORDER] + (matched or [r for r in runs if r not in RUNS_ORDER])


def recheck_histogram(scores: dict, bins: int = 10) -> "pd.DataFrame":
    """Counts of re-check scores per run in ``bins`` equal bins over [0, 1] (the metric takes 11 values)."""
    import pandas as pd

    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for run, s in scores.items():
        counts, _ = np.histogram(np.asarray(s), bins=edges)
        for lo, hi, c in zip(edges[:-1], edges[1:], counts):
            rows.append({"run": run, "bin_low": lo, "bin_high": hi, "pairs": int(c)})
    return pd.DataFrame(rows)


TRAINING_MODE_NOTE = (
    "The post's stopping rule read Keras's training-mode metric during fit: dropout on, BatchNorm on batch "
    "statistics, averaged over the epoch's batches while the weights changed. Here every score (stopping, "
    "scan, re-check, test) is the inference-mode score after the epoch: dropout off, BatchNorm's moving "
    "statistics, one fixed model.")


SOURCE = "Airbus ship follow-up (synthetic ellipses, residual U-Net)"
SCORE = "test_score_thresholded"


def claims():
    from anatomy.verdicts import Claim

    n, sel, shuf = PUBLISHED["train_size"], PUBLISHED["selected_in_order"], PUBLISHED["selected_shuffled"]
    c = lambda key, text, type_, published, **kw: Claim(key, "coreset", text, type_, published, SOURCE, **kw)  # noqa: E731
    return {x.key: x for x in (
        c("pairs_selected", "pairs selected in order", "reported", None, shown=f"{sel} of {n:,} ({sel / n:.1%})",
          figure="selected_vs_scanned.png", why="the count depends on image size, model, stopping rule and scoring"),
        c("order_matters_little", "order matters little (shuffled / in-order count - 1)", "equivalence", None,
          margin=0.25, shown=f"{shuf} vs {sel} of {n:,}: run on the first run's weights",
          figure="selected_vs_scanned.png", why="'matters little' read as 'within 25% of the in-order count'"),
        c("soft_score", "test score of the selected model (soft - thresholded score)", "reported", None,
          shown=f"{PUBLISHED['test_score']:g} (soft sigmoid)", figure="score_vs_size.png",
          why="a difference of scoring method on one model, not a seed effect"),
        c("selection_beats_random", "selection beats a random subset of the same size (matched gradient steps)",
          "effect", None, shown="implied", figure="score_vs_size.png",
          why="a direction with no published size: selection minus the random subsets against 0"),
        c("selection_as_good_as_full", "the selection carries all the information: it scores no worse than the "
          "full set (matched gradient steps)", "noninferiority", None, margin=0.01, shown="implied (2.7% suffice)",
          figure="score_vs_size.png", why="'carries all the information' read as 'within 0.01 of the full set'"),
        c("every_pair_passes", "every training pair now scores at or above the pass score", "fits", 1.0,
          shown="asserted, never checked", figure="recheck.png",
          why="a statement about the fitted training set: the final models' pass fraction"),
        c("scored_as_published", "pairs scored as the post's stopping rule scored them", "reported", None,
          shown="Keras training-mode metric during fit", why="a difference of method, stated"),
    )}


def claims_evidence(runs: "pd.DataFrame") -> list:
    """(claim, evidence, comparisons) for every coreset claim from ``runs.csv`` (one row per trained model).

    Selection against random subsets and the full set is judged at the in-order
    selection's gradient steps (``budget == matched gradient steps``); the
    stop-at-target controls are shown beside them. One selection run against
    the controls' seeds: the random subsets' seed-to-seed sd is the noise scale.
    """
    import pandas as pd

    from anatomy.verdicts import Evidence

    cl = claims()
    r = runs.set_index("run")
    n = int(r["train_pairs"].iloc[0])
    inord, shuf = r.loc["in_order"], r.loc["shuffled"]
    budget = r["budget"] if "budget" in r else pd.Series({k: run_budget(k) for k in r.index})
    is_random = pd.Series([k.startswith("random_seed") for k in r.index], index=r.index)
    rand_m, rand_s = r[is_random & (budget == MATCHED_STEPS)], r[is_random & (budget == STOP_AT_TARGET)]
    full_m = r.loc[f"full{MATCHED_SUFFIX}"] if f"full{MATCHED_SUFFIX}" in r.index else None
    sel, steps = float(inord[SCORE]), int(inord["gradient_steps"])
    scores = lambda df: " / ".join(f"{v:.4f}" for v in df[SCORE])  # noqa: E731
    used, d = int(inord["pairs_used"]), int(shuf["pairs_used"] - inord["pairs_used"])
    soft = float(inord["test_score_soft_as_published"])
    stop = f"; stop at target: random {scores(rand_s)}" if len(rand_s) else ""
    out = [
        (cl["pairs_selected"], Evidence([used], ours=f"{used} of {n:,} ({used / n:.1%})"), 1),
        (cl["order_matters_little"], Evidence([d / used], ours=f"{int(shuf['pairs_used'])} vs {used} "
                                                  f"({d / used:+.1%}), from fresh weights"), 1),
        (cl["soft_score"], Evidence([soft - sel], ours=f"{sel:.4f} thresholded, {soft:.4f} soft",
                                        finding="the soft score flatters the model" if soft > sel
                                        else "the soft score does not flatter the model"), 1),
        (cl["selection_beats_random"],
         Evidence([sel], list(rand_m[SCORE]), ours=f"{sel - rand_m[SCORE].mean():+.4f}" if len(rand_m) else "not run",
                  finding=f"selected {sel:.4f} vs random subsets {scores(rand_m)}, all after {steps} gradient "
                          f"steps{stop}", unit="models (selection vs random subsets)"), 1),
    ]
    if full_m is not None:
        out.append((cl["selection_as_good_as_full"],
                    Evidence([sel], [float(full_m[SCORE])], spread=list(rand_m[SCORE]),
                             ours=f"{sel - float(full_m[SCORE]):+.4f}",
                             finding=f"selected {sel:.4f} vs full set {full_m[SCORE]:.4f} at {steps} steps",
                             details="noise scale: the random subsets' seed-to-seed sd", unit="models"), 1))
    rc = [float(inord["recheck_pass_fraction"]), float(shuf["recheck_pass_fraction"])]
    out.append((cl["every_pair_passes"], Evidence(rc, ours=f"{rc[0]:.1%} (in order), {rc[1]:.1%} (shuffled)"), 1))
    out.append((cl["scored_as_published"], Evidence([], ours="inference mode after each epoch",
                                                    finding=TRAINING_MODE_NOTE,
                                                    details="a difference of method, not a measurement"), 1))
    return out


# ---------------------------------------------------------------- the aggregate rule's inputs, read (no TensorFlow)

def aggregate(*, metrics, predictions, histories, selected, scale: str) -> dict:
    """Rule coreset_aggregate's tables (``runs``, ``verdict``, ``recheck``) from the runs' files, with what its
    figures need: each run's arrays by run name (read from its metrics.json), the selections' histories and
    selected indices by order (``in_order``, ``shuffled``)."""
    import pandas as pd

    from anatomy.io import read_json

    runs_metrics, arrays = {}, {}
    for m_path, a_path in zip(metrics, predictions):
        m = read_json(m_path)
        runs_metrics[m["run"]] = m
        with np.load(a_path) as a:
            arrays[m["run"]] = {k: a[k] for k in a.files}
    runs = runs_table(runs_metrics)
    recheck = {run: a["recheck_scores"] for run, a in arrays.items()}
    from anatomy.summary import judged_table

    return {"runs": runs, "verdict": judged_table(claims_evidence(runs), data="synthetic ellipses", scale=scale),
            "recheck": recheck_histogram(recheck), "recheck_scores": recheck, "arrays": arrays,
            "histories": {Path(h).parent.name: pd.read_csv(h) for h in histories},
            "selected": {Path(s).parent.name: pd.read_csv(s)["index"].to_numpy() for s in selected}}
