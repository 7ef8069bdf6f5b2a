"""Study 4 (coreset), results: the runs table, its labels, the re-check histogram, the published claims and the
aggregate rule's inputs (no TensorFlow). The selection and the controls themselves are :mod:`anatomy.studies.coreset`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anatomy.studies.coreset import PUBLISHED
from anatomy.studies.coreset_controls import MATCHED_STEPS, MATCHED_SUFFIX, parse_control


# ---------------------------------------------------------------- aggregation (no TensorFlow)

RUN_LABELS = {"in_order": "selection, in order", "shuffled": "selection, shuffled order", "full": "full training set"}
SELECTION_BUDGET = "selection (retrained after each addition)"
RUNS_ORDER = ("in_order", "shuffled")


def run_key(run: str, seed: int) -> str:
    """A trained model's key, e.g. 'random_matched_steps/seed2' (its run folder's last two parts)."""
    return f"{run}/seed{seed}"


def split_key(key: str) -> tuple[str, int | None]:
    """Inverse of :func:`run_key`; a name without ``/seed<s>`` is (name, None)."""
    run, _, seed = key.rpartition("/seed")
    return (run, int(seed)) if run and seed.isdigit() else (key, None)


def run_label(key: str) -> str:
    """E.g. 'random subset, matched gradient steps' or 'selection, in order (seed 1)' for a key."""
    run, seed = split_key(key)
    if run in RUNS_ORDER:
        label = RUN_LABELS[run]
    else:
        try:
            c = parse_control(run)
        except ValueError:
            return key
        label = f"{'full training set' if c['kind'] == 'full' else 'random subset'}, {c['budget']}"
    return label if seed is None else f"{label} (seed {seed})"


def run_budget(run: str) -> str:
    """The training budget of a run: the selection's own, stop at target, or matched gradient steps."""
    return SELECTION_BUDGET if run in RUNS_ORDER else parse_control(run)["budget"]


def _sort_key(key: str):
    run, seed = split_key(key)
    if run in RUNS_ORDER:
        return (0, RUNS_ORDER.index(run), 0, seed or 0)
    c = parse_control(run)
    return (1 if c["kind"] == "full" else 2, 0, c["budget"] == MATCHED_STEPS, seed or 0)


def runs_table(metrics: dict) -> "pd.DataFrame":
    """One row per trained model from its metrics.json (keyed by :func:`run_key`): the study's table
    (results/coreset/runs.csv), a run's seeds together.

    ``budget``: the selection's own (retrained after each addition), "stop at
    target" (the controls as the selection stops), or "matched gradient steps"
    (the controls trained for as many optimizer steps as their seed's in-order selection).
    """
    import pandas as pd

    rows = []
    for key in sorted(metrics, key=_sort_key):
        m, (run, seed) = metrics[key], split_key(key)
        t = m["test"]
        rows.append({"run": run, "seed": seed, "description": run_label(run), "budget": run_budget(run),
                     "pairs_used": m["pairs_used"], "train_pairs": m["train_pairs"],
                     "test_score_thresholded": t["score"],
                     "test_score_soft_as_published": t["score_soft_as_published"], "test_mean_iou": t["mean_iou"],
                     "recheck_pass_fraction": t["recheck_pass_fraction"],
                     "recheck_pairs": t.get("recheck_pairs", m["train_pairs"]), "epochs_run": m["epochs_run"],
                     "gradient_steps": m["gradient_steps"], "budget_steps": m.get("budget_steps")})
    return pd.DataFrame(rows)


def runs_shown(keys) -> list:
    """The models the predictions figure shows, of the first seed: both selections, the random subset and the
    full set, the controls at matched gradient steps where there are any (the verdict's budget)."""
    first = min(split_key(k)[1] or 0 for k in keys)
    runs = sorted((k for k in keys if (split_key(k)[1] or 0) == first), key=_sort_key)
    shown = [k for k in runs if split_key(k)[0] in RUNS_ORDER]
    controls = [k for k in runs if split_key(k)[0] not in RUNS_ORDER]
    for kind in ("random", "full"):
        of_kind = [k for k in controls if parse_control(split_key(k)[0])["kind"] == kind]
        matched = [k for k in of_kind if split_key(k)[0].endswith(MATCHED_SUFFIX)]
        shown += (matched or of_kind)[:1]
    return shown


def recheck_shown(keys) -> list:
    """The runs the re-check figure shows (each pooled over its seeds): both selections and the controls at
    matched gradient steps where there are any (every model stays in recheck_histogram.csv)."""
    runs = sorted({split_key(k)[0] for k in keys}, key=_sort_key)
    matched = [r for r in runs if r.endswith(MATCHED_SUFFIX)]
    return [r for r in runs if r in RUNS_ORDER] + (matched or [r for r in runs if r not in RUNS_ORDER])


def recheck_histogram(scores: dict, bins: int = 10) -> "pd.DataFrame":
    """Counts of re-check scores per model (``scores`` keyed by :func:`run_key`) in ``bins`` equal bins over
    [0, 1] (the metric takes 11 values)."""
    import pandas as pd

    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for key, s in sorted(scores.items(), key=lambda kv: _sort_key(kv[0])):
        counts, _ = np.histogram(np.asarray(s), bins=edges)
        run, seed = split_key(key)
        for lo, hi, c in zip(edges[:-1], edges[1:], counts):
            rows.append({"run": run, "seed": seed, "bin_low": lo, "bin_high": hi, "pairs": int(c)})
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
          margin=0.25, shown=f"{shuf} vs {sel} of {n:,}: one run each, the shuffled one on the first's weights",
          figure="selected_vs_scanned.png", why="'matters little' read as 'within 25% of the in-order count'"),
        c("soft_score", "test score of the selected model (soft - thresholded score)", "reported", None,
          shown=f"{PUBLISHED['test_score']:g} (soft sigmoid)", figure="score_vs_size.png",
          why="a difference of scoring method on one model, not a seed effect"),
        c("selection_beats_random", "selection beats a random subset of the same size (matched gradient steps)",
          "effect", None, shown="implied", figure="score_vs_size.png",
          why="a direction with no published size: selection minus its seed's random subset, against 0"),
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
    """(claim, evidence, comparisons) for every coreset claim from ``runs.csv`` (one row per trained model;
    without a ``seed`` column, seed 0).

    Every comparison is paired by seed: a seed's selections and controls share its initial weights, and its
    random subset has the size of its in-order selection. Selection against the random subset and the full
    set is judged at the in-order selection's gradient steps (``budget == matched gradient steps``); the
    stop-at-target controls are shown beside them.
    """
    import pandas as pd

    from anatomy.verdicts import Evidence

    cl = claims()
    r = runs.copy()
    if "seed" not in r.columns:
        r["seed"] = 0
    n = int(r["train_pairs"].iloc[0])

    def col(run, column=SCORE):
        rows = r[r["run"] == run]
        return pd.Series(rows[column].to_numpy(float), index=rows["seed"].to_numpy(int))

    def each(v, fmt):
        return "" if len(v) < 2 else " (" + " / ".join(format(x, fmt) for x in v) + " by seed)"

    used, shuf = col("in_order", "pairs_used"), col("shuffled", "pairs_used")
    sel, soft = col("in_order"), col("in_order", "test_score_soft_as_published")
    steps = col("in_order", "gradient_steps")
    order = ((shuf - used) / used).dropna()
    rand_m, full_m = col(f"random{MATCHED_SUFFIX}"), col(f"full{MATCHED_SUFFIX}")
    rand_s = col("random")
    beats, vs_full = (sel - rand_m).dropna(), (sel - full_m).dropna()
    at = f"each after its seed's selection's gradient steps ({steps.mean():.0f} on average)"
    stop = f"; stop at target: random {rand_s.mean():.4f}" if len(rand_s) else ""
    out = [
        (cl["pairs_selected"], Evidence(list(used), ours=f"{used.mean():.0f} of {n:,} ({used.mean() / n:.1%})"
                                        + each(used, ".0f")), 1),
        (cl["order_matters_little"], Evidence(list(order), unit="seed pairs", ours=(
            f"{shuf.mean():.0f} vs {used.mean():.0f} ({order.mean():+.1%}), from fresh weights" + each(order, "+.1%"))
            if len(order) else "not run"), 1),
        (cl["soft_score"], Evidence(list((soft - sel).dropna()), ours=f"{sel.mean():.4f} thresholded, "
                                    f"{soft.mean():.4f} soft", finding="the soft score flatters the model"
                                    if soft.mean() > sel.mean() else "the soft score does not flatter the model"), 1),
        (cl["selection_beats_random"],
         Evidence(list(beats), ours=f"{beats.mean():+.4f}" if len(beats) else "not run", unit="seed pairs",
                  finding=f"selected {sel.mean():.4f} vs random subsets {rand_m.mean():.4f}, {at}{stop}"
                  if len(beats) else ""), 1),
    ]
    if len(vs_full):
        out.append((cl["selection_as_good_as_full"],
                    Evidence(list(vs_full), ours=f"{vs_full.mean():+.4f}", unit="seed pairs",
                             finding=f"selected {sel.mean():.4f} vs full set {full_m.mean():.4f}, {at}"), 1))
    rc_in, rc_sh = col("in_order", "recheck_pass_fraction"), col("shuffled", "recheck_pass_fraction")
    rc_ours = f"{rc_in.mean():.1%} (in order), {rc_sh.mean():.1%} (shuffled)"
    out.append((cl["every_pair_passes"], Evidence([*rc_in, *rc_sh], ours=rc_ours), 1))
    out.append((cl["scored_as_published"], Evidence([], ours="inference mode after each epoch",
                                                    finding=TRAINING_MODE_NOTE,
                                                    details="a difference of method, not a measurement"), 1))
    return out


# ---------------------------------------------------------------- the aggregate rule's inputs, read (no TensorFlow)

def aggregate(*, metrics, predictions, histories, selected, scale: str) -> dict:
    """Rule coreset_aggregate's tables (``runs``, ``verdict``, ``recheck``) from the runs' files, with what its
    figures need, each keyed by :func:`run_key`: each model's arrays (its run and seed read from its
    metrics.json), the selections' histories and selected indices (from their folders select/<order>/seed<s>)."""
    import pandas as pd

    from anatomy.io import read_json

    runs_metrics, arrays = {}, {}
    for m_path, a_path in zip(metrics, predictions):
        m = read_json(m_path)
        key = run_key(m["run"], m["seed"])
        runs_metrics[key] = m
        with np.load(a_path) as a:
            arrays[key] = {k: a[k] for k in a.files}
    runs = runs_table(runs_metrics)
    recheck = {run: a["recheck_scores"] for run, a in arrays.items()}
    from anatomy.summary import judged_table

    return {"runs": runs, "verdict": judged_table(claims_evidence(runs), data="synthetic ellipses", scale=scale),
            "recheck": recheck_histogram(recheck), "recheck_scores": recheck, "arrays": arrays,
            "histories": {_folder_key(h): pd.read_csv(h) for h in histories},
            "selected": {_folder_key(s): pd.read_csv(s)["index"].to_numpy() for s in selected}}


def _folder_key(path) -> str:
    """select/<order>/seed<s>/<file> -> '<order>/seed<s>' (:func:`run_key`)."""
    return f"{Path(path).parent.parent.name}/{Path(path).parent.name}"
