"""What a run will cost, before it starts: ``python -m anatomy.plan --configfile config/full.yaml --cores 2``.

Per training rule: jobs (from Snakemake's own dry run), epochs, images per
epoch, and this machine's measured training speed for that rule's model at the
config's size and batch (a short timed fit per model, the benchmark's pipeline
rows); then CPU-hours and the wall time on ``--cores N``. The estimate takes
every run to its maximum epochs (early stopping only shortens it) and adds a
fixed start-up per job (TensorFlow import, tracing, saving), measured on the
tiny workflow. What it cannot know is printed with the table.
"""

from __future__ import annotations

import argparse
import heapq
import math
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import yaml

from anatomy.config import deep_merge

ROOT = Path(__file__).resolve().parents[2]
TRAIN_OVERHEAD_S = 12.0  # per training job on 2 CPU cores: TensorFlow import ~7 s, tracing, saving
OTHER_OVERHEAD_S = 3.0  # per job that does not train (data, masks, tables, figures)
PUBLISHED_SELECTED_FRACTION = 271 / 10_000  # the coreset post's in-order selection
UNKNOWNS = (
    "Early stopping (crops) and the stop-at-target controls (coreset) end runs sooner: the estimate takes "
    "their maximum epochs.",
    "The coreset selection's cost depends on how many pairs join; it is estimated from the selected fraction "
    "(a finished run's under results/ when present, else the post's 2.7%), one epoch per addition, the first "
    "phase at its maximum epochs.",
    "Speeds are this machine's: a GPU's are unknown until measured there (run this on the GPU box).",
    "Augmentation, the noisy-BN layer and evaluation are not in the timed steps: those runs cost more.",
)


def parse_job_counts(text: str) -> dict:
    """Jobs per rule from Snakemake's "Job stats" table (dry run or run)."""
    counts, on = {}, False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("job") and "count" in s:
            on = True
            continue
        if on:
            if not s or s.startswith("-"):
                continue
            parts = s.split()
            if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts


def load_config(configfile: Path | None) -> dict:
    """config/config.yaml with ``configfile`` merged over it, as ``snakemake --configfile`` does."""
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return deep_merge(base, yaml.safe_load(Path(configfile).read_text()) or {}) if configfile else base


def planned_jobs(text: str) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job a dry run lists (``snakemake -n`` without ``--quiet``)."""
    jobs, rule = [], None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(("rule ", "checkpoint ", "localrule ")) and s.endswith(":"):
            rule = s.split()[1].rstrip(":")
            jobs.append((rule, {}))
        elif s.startswith("wildcards:") and rule:
            jobs[-1][1].update(kv.split("=", 1) for kv in s.removeprefix("wildcards:").strip().split(", "))
    return jobs


def job_part(rule: str, wildcards: dict) -> str:
    """The row a job is costed in: its rule, or for the one training rule of a study whose runs differ in
    length, '<rule> (<part>)' by its run folder (the run tables in rules/<study>.smk)."""
    run = wildcards.get("run", "")
    if rule == "crops_train":
        part = "confirm" if run.startswith("confirm/") else "baseline" if run.startswith("baseline") else "window"
    elif rule == "coreset_train":
        part = "select" if run.startswith("select/") else "matched" if run.endswith("_matched_steps") else "control"
    elif rule == "digits_train":
        part = "fold" if run.startswith("cv/") else "ladder" if run.startswith("ladder/") else "step1"
    else:
        return rule
    return f"{rule} ({part})"


def dry_run_counts(config: dict, workdir: Path | None = None) -> dict:
    """Every job of ``config`` run from scratch, per rule or part (``snakemake -n --forceall``).

    In ``workdir`` when given (its data paths resolve there), else in an empty
    folder with ``config`` written into it. The confirmation runs follow the
    crops checkpoint; a dry run lists them only once it has run, so they are
    counted from the config otherwise.
    """
    with tempfile.TemporaryDirectory(prefix="plan-") as d:
        if workdir is None:
            (Path(d) / "config").mkdir()
            (Path(d) / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        p = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                            str(workdir or d), "-n", "--forceall", "--cores", "1"],
                           capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"snakemake -n failed:\n{p.stderr[-3000:]}")
    counts = Counter(job_part(rule, wc) for rule, wc in planned_jobs(p.stdout + p.stderr))
    crops, confirm = config["crops"], "crops_train (confirm)"
    if counts.get("crops_select") and not counts.get(confirm):
        counts[confirm] = crops["confirm"]["top"] * len(crops["grids"]) * len(crops["baseline"]["seeds"])
    return dict(counts)


def _npz_sizes(path: Path) -> tuple[int, int]:
    """(train, test) lengths of a labelled npz, read from its array headers (no pixels loaded)."""
    import numpy as np

    with np.load(path) as z:
        return len(z["y_train"]), len(z["y_test"])


def data_sizes(config: dict, workdir: Path = Path(".")) -> dict:
    """Training images per source: the embedded samples, a local npz (relative paths from ``workdir``), or the
    full sets (download)."""
    d = config["data"]
    files = {"embedded": lambda k: ROOT / "resources" / f"{k}_sample.npz",
             "npz": lambda k: Path(workdir) / d[k]["path"]}
    full = {"mnist": (60_000, 10_000), "cifar10": (50_000, 10_000)}
    sizes = {k: _npz_sizes(files[d[k]["source"]](k)) if d[k]["source"] in files else full[k] for k in full}
    digits = 42_000 if d["digits"]["source"] == "kaggle" else round(d["digits"]["train_fraction"] * sum(sizes["mnist"]))
    return {"mnist": sizes["mnist"][0], "cifar10": sizes["cifar10"][0], "digits": digits,
            "ellipses": d["ellipses"]["train_size"]}


def selection_steps(n: int, batch: int, *, fraction: float, initial: int, first_epochs: int) -> int:
    """Gradient steps of a selection in which ``fraction`` of ``n`` pairs join, one epoch per addition."""
    joined = max(initial, round(fraction * n))
    return first_epochs * math.ceil(initial / batch) + sum(math.ceil(k / batch) for k in range(initial + 1, joined + 1))


def training_rules(config: dict, counts: dict, *, selected_fraction: float, workdir: Path = Path(".")) -> list[dict]:
    """Per training rule: jobs, model, images per epoch, epochs (the maximum)."""
    size = data_sizes(config, workdir)
    cr, ci, ii, dg, cs = (config[k] for k in ("crops", "cifar", "iic", "digits", "coreset"))
    crops_images = min(cr["train_size"] or size["mnist"], size["mnist"] - cr["validation_size"])
    digits_train = min(dg["train_size"] or size["digits"], size["digits"])
    fit = round(digits_train * (1 - dg["validation_fraction"]))
    folds = dg["step2"]["folds"]
    n_pairs, b = size["ellipses"], cs["batch_size"]
    sel_steps = selection_steps(n_pairs, b, fraction=selected_fraction, initial=cs["selection"]["initial"],
                                first_epochs=cs["stopping"]["max_epochs"])
    subset = max(cs["selection"]["initial"], round(selected_fraction * n_pairs))
    rules = [
        *[(f"crops_train ({part})", "mnist_cnn", crops_images, cr["stopping"]["max_epochs"])
          for part in ("baseline", "window", "confirm")],
        ("cifar_train", "vgg", ci["train_size"] or size["cifar10"], ci["epochs"]),
        ("iic_train", "iic_net", ii["train_size"] or size["mnist"], ii["epochs"]),
        ("digits_train (step1)", "cnn_medium", fit, dg["step1"]["epochs"]),
        ("digits_train (ladder)", "cnn_medium", fit, dg["step2"]["epochs"]),
        ("digits_train (fold)", "cnn_medium", round(digits_train * (folds - 1) / folds), dg["step2"]["epochs"]),
        # the coreset's runs in gradient steps x batch: one "epoch" of that many images
        ("coreset_train (select)", "unet", sel_steps * b, 1),
        ("coreset_train (control)", "unet", subset, cs["stopping"]["max_epochs"]),
        ("coreset_train (matched)", "unet", sel_steps * b, 1),
    ]
    return [{"rule": r, "jobs": counts.get(r, 0), "model": m, "images_per_epoch": int(n), "epochs": int(e)}
            for r, m, n, e in rules if counts.get(r, 0)]


def measured_fraction(results: Path) -> float | None:
    """The in-order selection's selected fraction from a finished run, if any."""
    import json

    f = Path(results) / "coreset" / "select" / "in_order" / "metrics.json"
    if not f.exists():
        return None
    m = json.loads(f.read_text())
    return m["pairs_used"] / m["train_pairs"]


def measure_rates(config: dict, *, scale: float = 0.25) -> dict:
    """Images per second of each model's training step at the config's size and batch, on this machine."""
    import os

    from anatomy.bench.common import build_data
    from anatomy.bench.pipeline import bench_pipeline
    from anatomy.training.setup import RunSettings, configure_tensorflow

    try:
        configure_tensorflow(RunSettings(threads=config.get("threads") or os.cpu_count() or 1, seed=0))
    except RuntimeError:
        pass
    with tempfile.TemporaryDirectory(prefix="plan-data-") as d, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Keras on the finite timing datasets: intended
        _, rates = bench_pipeline(build_data(Path(d)), config, scale=scale, repeats=1, device="", ours_only=True)
    return {k: v["ours"] for k, v in rates.items()}


def estimate(rules: list[dict], rates: dict, counts: dict) -> list[dict]:
    """Seconds per job and CPU-hours per training rule; the other jobs as one row."""
    rows = []
    for r in rules:
        rate = rates[r["model"]]
        job_s = TRAIN_OVERHEAD_S + r["images_per_epoch"] * r["epochs"] / rate
        rows.append({**r, "images_per_second": round(rate, 1), "seconds_per_job": round(job_s, 1),
                     "cpu_hours": r["jobs"] * job_s / 3600})
    trained = {r["rule"] for r in rules}
    others = sum(n for k, n in counts.items() if k not in trained and k != "all")
    rows.append({"rule": "(every other job)", "jobs": others, "model": "", "images_per_epoch": 0, "epochs": 0,
                 "images_per_second": float("nan"), "seconds_per_job": OTHER_OVERHEAD_S,
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
        out.setdefault(r["rule"].split("_")[0], []).append(r)
    return out


def format_plan(rows: list[dict], cores: int) -> str:
    cols = ["rule", "jobs", "model", "images_per_epoch", "epochs", "images_per_second", "seconds_per_job", "cpu_hours"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r[c]:.2f}" if c == "cpu_hours" else str(r[c]) for c in cols) + " |")
    total = sum(r["cpu_hours"] for r in rows)
    lines += ["", f"total: {sum(r['jobs'] for r in rows)} jobs, {total:.2f} CPU-hours on this machine; "
              f"about {wall_hours(rows, cores):.2f} h wall with --cores {cores} (one thread per job)", "",
              f"per study (its training jobs alone on --cores {cores}):"]
    for study, group in per_study(rows).items():
        lines.append(f"- {study}: {sum(r['jobs'] for r in group)} jobs, "
                     f"{sum(r['cpu_hours'] for r in group):.2f} CPU-hours, about {wall_hours(group, cores):.2f} h wall")
    lines += ["", "Not known in advance:"] + [f"- {u}" for u in UNKNOWNS]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m anatomy.plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", type=Path, default=None, help="merged over config/config.yaml, as Snakemake does")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--results", type=Path, default=Path("results"), help="a finished run to read the selection from")
    a = ap.parse_args(argv)
    config = load_config(a.configfile)
    counts = dry_run_counts(config)
    fraction = measured_fraction(a.results) or PUBLISHED_SELECTED_FRACTION
    rules = training_rules(config, counts, selected_fraction=fraction, workdir=Path.cwd())
    rows = estimate(rules, measure_rates(config), counts)
    print(format_plan(rows, a.cores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
