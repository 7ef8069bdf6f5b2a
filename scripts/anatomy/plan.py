"""What a run will cost, before it starts: ``python -m anatomy.plan --configfile config/laptop.yaml --cores 2``.

Snakemake's own dry run lists every job. The training jobs that cost the same fall in one row (a training
rule's part of its run table: ``crops_train (window)``, ``cifar_train (noisybn)``, ``digits_train (fold)``).
One job of each row then runs for real - the rule's own script, in a scratch folder, on data of the config's
size (the configured files, or random images of the full sets' shapes where the config downloads) - while
the training contract times two short epochs (:data:`anatomy.training.setup.TIMING_ENV`): a step as the
study runs it (augmentation, the noise layer, the IIC pair), an epoch's end (validation, per-epoch
evaluation, the backup) and the first epoch's tracing. Its benchmark file gives the rest (start-up, data,
final evaluation, predictions, saving). A job of that row then costs

    the rest + tracing + epochs x (steps per epoch x step + epoch's end)

at its maximum epochs (early stopping only shortens it); the wall time packs the jobs on ``--cores`` slots.
What it cannot know is printed with the table.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import yaml

from anatomy.config import deep_merge
from anatomy.studies.coreset_controls import MATCHED_STEPS, STOP_AT_TARGET, parse_control

ROOT = Path(__file__).resolve().parents[2]
OTHER_OVERHEAD_S = 3.0  # per job that does not train (data, masks, tables, figures)
TIMED_STEPS = 20  # steps in each of the two timed epochs
PUBLISHED_SELECTED_FRACTION = 271 / 10_000  # the coreset post's in-order selection
# Rows timed by another row's job: same model, data and batch (the confirmations follow a checkpoint, so a
# dry run cannot list them; the selection has its own loop, costed from the matched control's step).
TIMED_AS = {"crops_train (confirm)": "crops_train (window)",
            "coreset_train (select)": "coreset_train (full, matched)"}
FULL_SETS = {"mnist": ((60_000, 10_000), (28, 28)), "cifar10": ((50_000, 10_000), (32, 32, 3))}
UNKNOWNS = (
    "Early stopping (crops) ends runs sooner: the estimate takes their maximum epochs. The coreset controls "
    "that stop at the target take a finished run's epochs (--results: its coreset/runs.csv), else their maximum.",
    "The coreset selection's cost depends on how many pairs join: it is costed from the selected fraction "
    "(--selected-fraction, else a finished run's, else the post's 2.7%) at one epoch per addition, each "
    "epoch followed by a pass over the selected pairs, plus one pass over the pool.",
    "Speeds are this machine's, with --cores jobs side by side: a GPU's are unknown until timed there (run "
    "this on the GPU box).",
)


# ---------------------------------------------------------------- the dry run

def load_config(configfile: Path | None) -> dict:
    """config/config.yaml with ``configfile`` merged over it, as ``snakemake --configfile`` does."""
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return deep_merge(base, yaml.safe_load(Path(configfile).read_text()) or {}) if configfile else base


def dry_run_jobs(text: str) -> list[dict]:
    """Every job a dry run lists (``snakemake -n`` without ``--quiet``): its rule, wildcards, outputs and
    benchmark file."""
    jobs = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(("rule ", "checkpoint ", "localrule ")) and s.endswith(":"):
            jobs.append({"rule": s.split()[1].rstrip(":"), "wildcards": {}, "output": [], "benchmark": None})
        elif jobs and s.startswith("wildcards:"):
            jobs[-1]["wildcards"].update(kv.split("=", 1) for kv in s.removeprefix("wildcards:").strip().split(", "))
        elif jobs and s.startswith("output:"):
            jobs[-1]["output"] = s.removeprefix("output:").strip().split(", ")
        elif jobs and s.startswith("benchmark:"):
            jobs[-1]["benchmark"] = s.removeprefix("benchmark:").strip()
    return jobs


def study_of(row: str) -> str:
    """The study a rule or row belongs to: rule names start with their study's."""
    return row.split("_")[0]


def job_part(rule: str, wildcards: dict) -> str:
    """The row a job is costed in: jobs of one row train the same model on the same data for as many
    epochs. The rule, or '<rule> (<part>)' by its run folder (the run tables in rules/<study>.smk)."""
    run = wildcards.get("run", "")
    if rule == "crops_train":
        part = "confirm" if run.startswith("confirm/") else "baseline" if run.startswith("baseline") else "window"
    elif rule == "coreset_train":  # the selection; the full set or a random subset, to the target or matched steps
        c = None if run.startswith("select/") else parse_control(run.split("/")[1])  # control/<name>/seed<s>
        part = "select" if c is None else c["kind"] + (", matched" if c["budget"] == MATCHED_STEPS else "")
    elif rule == "digits_train":
        # step 1 (its own epochs); the ladder's plain rungs; augmentation; the k-fold models (augmented, TTA)
        part = ("fold" if run.startswith("cv/") else "augment" if run == "ladder/augment"
                else "ladder" if run.startswith("ladder/") else "step1")
    elif rule == "cifar_train":
        part = run.split("_")[0]  # bn, nobn, noisybn, aug, labels, pixels (rules/cifar.smk's run names)
    elif rule == "iic_train":
        part = wildcards.get("tset", "")
    else:
        return rule
    return f"{rule} ({part})"


def dry_run(config: dict, workdir: Path) -> str:
    """Snakemake's dry run of every job of ``config`` from scratch (``-n --forceall``), in ``workdir`` (its
    config/config.yaml is ``config``)."""
    from anatomy.bench.common import run_snakemake

    cfg = Path(workdir) / "config" / "config.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    return run_snakemake(["-n", "--forceall", "--cores", "1"], cwd=workdir, timeout=None)[1]


def count_jobs(config: dict, jobs: list[dict]) -> dict:
    """Jobs per row. The confirmation runs follow the crops checkpoint; a dry run lists them only once it
    has run, so they are counted from the config otherwise."""
    counts = Counter(job_part(j["rule"], j["wildcards"]) for j in jobs)
    crops, confirm = config["crops"], "crops_train (confirm)"
    if counts.get("crops_select") and not counts.get(confirm):
        counts[confirm] = crops["confirm"]["top"] * len(crops["grids"]) * len(crops["baseline"]["seeds"])
    return dict(counts)


# ---------------------------------------------------------------- timing one job per row

def timing_config(config: dict, workdir: Path, base: Path = Path(".")) -> dict:
    """``config`` with every download replaced by random images of the full set's shapes (an npz in
    ``workdir``: the same work per step, no network) and every relative data path made absolute from
    ``base`` (the folder the config is run from), for jobs that run in a scratch folder."""
    import numpy as np

    config = json.loads(json.dumps(config))
    rng = np.random.default_rng(0)
    sources = [*config["data"].values(), *(config.get("datasets") or {}).values()]
    for d in sources:
        if isinstance(d, dict) and isinstance(d.get("path"), str):
            d["path"] = str((Path(base) / d["path"]).resolve())
    for name, ((n_train, n_test), shape) in FULL_SETS.items():
        d = config["data"][name]
        if d["source"] == "download":
            path = Path(workdir) / f"{name}_synthetic.npz"
            sizes = (("train", n_train), ("test", n_test))
            np.savez(path, **{f"x_{s}": rng.integers(0, 256, (n, *shape), dtype=np.uint8) for s, n in sizes},
                     **{f"y_{s}": rng.integers(0, 10, n).astype(np.uint8) for s, n in sizes})
            config["data"][name] = {**d, "source": "npz", "path": str(path)}
    return config


def time_rows(config: dict, *, cores: int, steps: int = TIMED_STEPS, keep: Path | None = None,
              studies=None, base: Path = Path(".")) -> tuple[dict, dict]:
    """Time ``cores`` jobs of every training row of ``config`` (of ``studies`` only, when given) side by side,
    row after row, each with two epochs of ``steps`` steps: so each is timed under the load it will run under
    (``cores`` trainings sharing the machine, their input pipelines included), in a scratch folder (``keep``:
    this folder, kept; ``base``: where the config's relative data paths start). Returns (the job counts per
    row, {row: the timed jobs' mean costs and benchmark seconds})."""
    from anatomy.bench.common import run_snakemake
    from anatomy.timings import benchmark_seconds
    from anatomy.training.setup import TIMING_ENV

    with tempfile.TemporaryDirectory(prefix="plan-") as scratch:
        work = Path(keep or scratch)
        (work / "timings").mkdir(parents=True, exist_ok=True)
        jobs = dry_run_jobs(dry_run(timing_config(config, work, base), work))
        chosen: dict = {}
        for j in jobs:
            row = job_part(j["rule"], j["wildcards"])
            if (studies is None or study_of(row) in studies) and j["benchmark"] and row not in TIMED_AS:
                if len(chosen.setdefault(row, [])) < cores:
                    chosen[row].append(j)
        for row, row_jobs in chosen.items():
            try:
                run_snakemake(["--cores", str(cores), *[j["output"][0] for j in row_jobs]], cwd=work, timeout=None,
                              env={TIMING_ENV: f"{steps}:{work / 'timings'}"})
            except RuntimeError as e:
                raise RuntimeError(f"the timed jobs of {row} failed (their logs: {work}/results/logs; --keep to "
                                   f"keep them): {e}") from None
        timed = {t["metrics"]: t for t in (json.loads(f.read_text()) for f in (work / "timings").glob("*.json"))}
        rows = {}
        for row, row_jobs in chosen.items():
            found = []
            for j in row_jobs:
                metrics = next(o for o in j["output"] if o.endswith("metrics.json"))
                t = timed.get(metrics) or timed.get(str(work / metrics))
                if t is not None:  # else a training outside the contract's loop
                    found.append({**t, "job_seconds": benchmark_seconds(work / j["benchmark"])})
            if found:
                rows[row] = {k: (sum(f[k] for f in found) / len(found) if isinstance(v, float) else v)
                             for k, v in found[0].items()} | {"timed_jobs": len(found)}
        return count_jobs(config, jobs), rows


def job_seconds(t: dict, epochs: float | None = None) -> float:
    """A job's seconds from its timed two epochs ``t``: what the timed job spent outside them, the first
    epoch's tracing, and ``epochs`` (default: its own) x (steps per epoch x step + epoch's end)."""
    epochs = t["epochs"] if epochs is None else epochs
    rest = t["job_seconds"] - t["fit_seconds"]
    return rest + max(0.0, t["first_epoch_extra_seconds"]) + epochs * (t["steps_per_epoch"] * t["step_seconds"]
                                                                       + t["epoch_end_seconds"])


def selection_steps(n: int, batch: int, *, fraction: float, initial: int, first_epochs: int) -> int:
    """Gradient steps of a selection in which ``fraction`` of ``n`` pairs join, one epoch per addition."""
    joined = max(initial, round(fraction * n))
    return first_epochs * math.ceil(initial / batch) + sum(math.ceil(k / batch) for k in range(initial + 1, joined + 1))


def selection_seconds(t: dict, config: dict, *, selected_fraction: float) -> float:
    """The coreset selection from the matched control's timed step ``t`` (same U-Net, pairs and batch): its
    gradient steps, a pass over the selected pairs after each epoch and one over the pool, each pass at a
    third of a step per batch (a forward pass), and the control's time outside its epochs."""
    cs = config["coreset"]
    n, b = config["data"]["ellipses"]["train_size"], cs["batch_size"]
    first = cs["stopping"]["max_epochs"]
    steps = selection_steps(n, b, fraction=selected_fraction, initial=cs["selection"]["initial"], first_epochs=first)
    passes = steps + math.ceil(n / b)  # one pass over the selected pairs per epoch: as many batches as steps
    return t["job_seconds"] - t["fit_seconds"] + (steps + passes / 3.0) * t["step_seconds"]


def finished_coreset(results: Path) -> dict:
    """What a finished coreset study (``results``/coreset/runs.csv, e.g. the earlier run of the same config)
    says about the costs that depend on the data: the in-order selections' mean selected fraction
    (``fraction``) and the mean epochs the controls that stop at the target ran (``epochs``: row -> epochs;
    their epochs depend on the data)."""
    import pandas as pd

    f = Path(results) / "coreset" / "runs.csv"
    if not f.exists():
        return {"fraction": None, "epochs": {}}
    runs = pd.read_csv(f)
    sel = runs[runs["run"] == "in_order"]
    stop = runs[runs["budget"] == STOP_AT_TARGET]
    kinds = stop["run"].map(lambda r: parse_control(r)["kind"])
    return {"fraction": float((sel["pairs_used"] / sel["train_pairs"]).mean()) if len(sel) else None,
            "epochs": {f"coreset_train ({k})": float(g.mean()) for k, g in stop.groupby(kinds)["epochs_run"]}}


def estimate(counts: dict, timed: dict, config: dict, *, selected_fraction: float,
             stop_epochs: dict | None = None) -> list[dict]:
    """Seconds per job and CPU-hours per row; the jobs that do not train as one row. ``stop_epochs``: the
    epochs of the stop-at-target rows from a finished run (:func:`finished_coreset`); else their maximum."""
    stop_epochs = stop_epochs or {}
    rows = []
    for row, t in sorted({**timed, **{r: timed[src] for r, src in TIMED_AS.items() if src in timed}}.items()):
        if not counts.get(row):
            continue
        select = row == "coreset_train (select)"
        epochs = stop_epochs.get(row, t["epochs"])
        secs = selection_seconds(t, config, selected_fraction=selected_fraction) if select else job_seconds(t, epochs)
        rows.append({"rule": row, "jobs": counts[row], "timed_as": TIMED_AS.get(row, ""),
                     "epochs": "selection" if select else round(epochs, 1), "steps_per_epoch": t["steps_per_epoch"],
                     "step_ms": round(1000 * t["step_seconds"], 1), "epoch_end_s": round(t["epoch_end_seconds"], 2),
                     "rest_s": round(job_seconds(t, epochs=0), 1),  # outside the epochs, tracing included
                     "seconds_per_job": round(secs, 1), "cpu_hours": counts[row] * secs / 3600})
    untimed = [r for r in counts if r not in {x["rule"] for x in rows} and r != "all"]
    others = sum(counts[r] for r in untimed)
    rows.append({"rule": "(every other job)", "jobs": others, "timed_as": "", "epochs": "", "steps_per_epoch": "",
                 "step_ms": "", "epoch_end_s": "", "rest_s": OTHER_OVERHEAD_S, "seconds_per_job": OTHER_OVERHEAD_S,
                 "cpu_hours": others * OTHER_OVERHEAD_S / 3600})
    return rows


def wall_hours(rows: list[dict], cores: int) -> float:
    """Longest-job-first over ``cores`` one-thread slots (ignores the DAG's order; never below the longest job)."""
    jobs = sorted((r["seconds_per_job"] for r in rows for _ in range(r["jobs"])), reverse=True)
    slots = [0.0] * max(1, cores)
    for s in jobs:
        heapq.heappush(slots, heapq.heappop(slots) + s)
    return max(slots) / 3600


def per_study(rows: list[dict]) -> dict:
    """The rows grouped by study (a rule's name starts with its study's)."""
    out: dict = {}
    for r in rows:
        out.setdefault(study_of(r["rule"]), []).append(r)
    return out


COLUMNS = ["rule", "jobs", "timed_as", "epochs", "steps_per_epoch", "step_ms", "epoch_end_s", "rest_s",
           "seconds_per_job", "cpu_hours"]


def format_plan(rows: list[dict], cores: int) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r[c]:.2f}" if c == "cpu_hours" else str(r[c]) for c in COLUMNS) + " |")
    total = sum(r["cpu_hours"] for r in rows)
    lines += ["", f"total: {sum(r['jobs'] for r in rows)} jobs, {total:.2f} CPU-hours on this machine; "
              f"about {wall_hours(rows, cores):.2f} h wall with --cores {cores} (one thread per job)", "",
              f"per study (its training jobs alone on --cores {cores}):"]
    for study, group in per_study(rows).items():
        lines.append(f"- {study}: {sum(r['jobs'] for r in group)} jobs, "
                     f"{sum(r['cpu_hours'] for r in group):.2f} CPU-hours, about {wall_hours(group, cores):.2f} h wall")
    lines += ["", "Not known in advance:"] + [f"- {u}" for u in UNKNOWNS]
    return "\n".join(lines)


def compare(rows: list[dict], cores: int, snapshots, since: str | dict | None = None) -> str:
    """Per study: the estimated wall time (its jobs alone on ``cores``), the measured one (``snapshots``:
    :func:`anatomy.timings.study_snapshots` of the studies' records) and their ratio, as a markdown table. A
    record made at a commit that does not contain ``since`` (the estimate's; a dict: per study) ran an earlier
    config: no ratio."""
    groups = per_study(rows)
    lines = ["| study | estimated_minutes | measured_minutes | measured / estimated | machine | commit |",
             "|---|---|---|---|---|---|"]
    for r in snapshots.itertuples():
        if r.study not in groups:
            continue
        est = 60 * wall_hours(groups[r.study], cores)
        base = since.get(r.study) if isinstance(since, dict) else since
        ratio = f"{r.wall_minutes / est:.2f}" if base is None or _contains(r.commit, base) else "(an earlier run)"
        lines.append(f"| {r.study} | {est:.1f} | {r.wall_minutes:.1f} | {ratio} | {r.machine} | {r.commit} |")
    return "\n".join(lines)


def _contains(commit: str, ancestor: str) -> bool:
    """Whether ``commit`` has ``ancestor`` in its history (git, in this repository)."""
    p = subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", ancestor, commit], capture_output=True)
    return p.returncode == 0


def provenance(argv) -> str:
    """Which command timed an estimate, when, at which commit, on which machine."""
    import datetime

    from anatomy.timings import commit, cpu_model

    return (f"Timed by `python -m anatomy.plan {' '.join(argv)}` on {datetime.date.today().isoformat()}, commit "
            f"{commit()}, {os.cpu_count()} CPU cores ({cpu_model()}): an estimate, not a measurement of the run.")


def updated(kept: dict, new: dict, studies) -> dict:
    """``kept`` (an estimate from --json) with the rows of ``studies`` replaced by ``new``'s (re-timed): each
    study records the commit it was timed at (``commits``), the provenance says which were re-timed. The row of
    the jobs that do not train (seconds each, every study's) stays the kept one's."""
    if new["cores"] != kept["cores"] or new["config"] != kept["config"]:
        raise ValueError(f"--update: the kept estimate is for {kept['config']} on {kept['cores']} cores, not "
                         f"{new['config']} on {new['cores']}")
    commits = {st: kept.get("commits", {}).get(st, kept["commit"]) for st in per_study(kept["rows"])}
    commits.update({st: new["commit"] for st in studies})
    rows = [r for r in kept["rows"] if study_of(r["rule"]) not in studies] + \
        [r for r in new["rows"] if study_of(r["rule"]) in studies]
    return {**kept, "commits": commits, "rows": sorted(rows, key=lambda r: r["rule"]),
            "provenance": f"{kept['provenance']}\n\nRe-timed ({', '.join(studies)}): {new['provenance']}"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m anatomy.plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", type=Path, default=None, help="merged over config/config.yaml, as Snakemake does")
    ap.add_argument("--cores", type=int, default=2, help="jobs side by side, in the timing and in the estimate")
    ap.add_argument("--steps", type=int, default=TIMED_STEPS, help="steps in each of the two timed epochs")
    ap.add_argument("--results", type=Path, default=Path("results"),
                    help="a finished run whose coreset/runs.csv gives the selected fraction and the controls' epochs")
    ap.add_argument("--selected-fraction", type=float, default=None,
                    help="the coreset selection's selected fraction (default: a finished run's, else the post's)")
    ap.add_argument("--studies", nargs="*", default=None, help="time these studies' rows only (default: all)")
    ap.add_argument("--keep", type=Path, default=None, help="time in this folder and keep it (logs, timings)")
    ap.add_argument("--json", type=Path, default=None, help="keep the estimate here (for --from-json)")
    ap.add_argument("--update", type=Path, default=None, metavar="JSON",
                    help="re-time only --studies and replace their rows in this kept estimate (written back), "
                         "each study keeping the commit it was timed at")
    ap.add_argument("--from-json", type=Path, default=None, help="no timing: an estimate kept with --json")
    ap.add_argument("--compare", type=Path, default=None, metavar="RECORDS",
                    help="and the measured studies beside it (RECORDS/<study>/timings.md, e.g. docs/results/laptop)")
    ap.add_argument("--write", type=Path, default=None, help="also write the printed text here as markdown")
    a = ap.parse_args(argv)
    if a.update and not a.studies:
        ap.error("--update re-times the studies named by --studies")
    if a.from_json:
        kept = json.loads(a.from_json.read_text())
    else:
        config = load_config(a.configfile)
        counts, timed = time_rows(config, cores=a.cores, steps=a.steps, studies=a.studies, keep=a.keep)
        counts = {k: n for k, n in counts.items() if a.studies is None or study_of(k) in a.studies}
        finished = finished_coreset(a.results)
        fraction = a.selected_fraction or finished["fraction"] or PUBLISHED_SELECTED_FRACTION
        from anatomy.timings import commit

        kept = {"cores": a.cores, "config": str(a.configfile or "config/config.yaml"), "commit": commit(),
                "provenance": provenance(argv if argv is not None else sys.argv[1:]),
                "rows": estimate(counts, timed, config, selected_fraction=fraction, stop_epochs=finished["epochs"])}
        if a.update:
            kept = updated(json.loads(a.update.read_text()), kept, a.studies)
            a.update.write_text(json.dumps(kept, indent=1))
        if a.json:
            a.json.write_text(json.dumps(kept, indent=1))
    text = f"{kept['provenance']}\n\n{format_plan(kept['rows'], kept['cores'])}"
    if a.compare:
        from anatomy.timings import study_snapshots

        since = {st: kept.get("commits", {}).get(st, kept.get("commit")) for st in per_study(kept["rows"])}
        table = compare(kept["rows"], kept["cores"], study_snapshots(a.compare), since)
        text += f"\n\nMeasured, study by study (each study's own record under {a.compare}):\n\n{table}"
    print(text)
    if a.write:
        a.write.write_text(f"# The cost of `{kept['config']}`\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
