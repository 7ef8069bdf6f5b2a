"""``python -m anatomy.bench``: runs the chosen families, writes the table (CSV) and prints it."""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import anatomy.bench
from anatomy.bench.augment import bench_augment
from anatomy.bench.batchnorm import bench_batchnorm
from anatomy.bench.common import COLUMNS, ROOT, build_data
from anatomy.bench.flops import bench_flops
from anatomy.bench.pipeline import bench_pipeline, bench_selection
from anatomy.bench.precision import bench_precision
from anatomy.bench.scaling import bench_cores, bench_epoch_scaling
from anatomy.bench.startup import bench_startup
from anatomy.bench.synthetic import bench_synthetic
from anatomy.bench.teardown import bench_teardown
from anatomy.bench.workflow import bench_workflow


def versions() -> str:
    import tensorflow as tf

    import snakemake

    return (f"python {platform.python_version()}, tensorflow {tf.__version__}, numpy {np.__version__}, "
            f"snakemake {snakemake.__version__}, {os.cpu_count()} CPUs, {platform.machine()}")


PARTS = ("pipeline", "augment", "synthetic", "flops", "workflow", "scaling", "startup", "precision", "batchnorm", "teardown")


def run(*, out: Path, parts=PARTS, scale: float = 1.0, repeats: int = 3, workdir: Path = Path("."),
        configfile: Path | None = None, full_quick: bool = False, threads: int | None = None):
    import pandas as pd
    import yaml

    from anatomy.io import atomic_path
    from anatomy.training.setup import RunSettings, configure_tensorflow, device_info

    warnings.filterwarnings("ignore", message=".*ran out of data.*")  # one finite epoch per fit, on purpose
    warnings.filterwarnings("ignore", message=".*shuffle=True.*")
    cfg = yaml.safe_load(Path(configfile or ROOT / "config" / "config.yaml").read_text())
    try:
        info = configure_tensorflow(RunSettings(threads=threads or os.cpu_count() or 1, seed=0))
    except RuntimeError:  # TensorFlow already running in this process (tests): keep its threads
        info = device_info()
    device = info["device"] + (f" ({info['device_name']})" if info["device"] == "GPU" else "")
    rows, rates = [], {}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-data-") as d:
        paths = build_data(Path(d))
        needs_rates = {"pipeline", "augment", "flops"} & set(parts)
        if needs_rates:
            r, rates = bench_pipeline(paths, cfg, scale=scale, repeats=repeats, device=device)
            if "pipeline" in parts:
                rows += r + [bench_selection(cfg, n_pairs=max(12, int(round(40 * scale))), device=device)]
        if "augment" in parts:
            rows += bench_augment(paths, cfg, rates, scale=scale, repeats=repeats, device=device)
        if "synthetic" in parts:
            rows += bench_synthetic(scale=scale, repeats=repeats)
        if "flops" in parts:
            rows += bench_flops(rates, device=device)
        if "workflow" in parts:
            rows += bench_workflow(Path(workdir))
        if "scaling" in parts:
            rows += bench_epoch_scaling(paths, cfg, scale=scale, device=device)
            rows += bench_cores(cfg, full_quick=full_quick)
        if "startup" in parts:
            rows += bench_startup(repeats=repeats)
        if "precision" in parts:
            rows += bench_precision(cfg, scale=scale, repeats=repeats, device=device)
        if "batchnorm" in parts:
            rows += bench_batchnorm(cfg, scale=scale, repeats=repeats, device=device)
        if "teardown" in parts:
            rows += bench_teardown(cfg, scale=scale, repeats=repeats, device=device)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["versions"] = versions()
    table["seconds_total"] = round(time.perf_counter() - t_start, 1)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    return table


def format_table(table) -> str:
    def fmt(v):
        if isinstance(v, float):
            return "" if not np.isfinite(v) else (f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}")
        return str(v)

    cols = ["row", "ours", "theirs", "unit", "ratio", "goal", "met", "device"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        lines.append("| " + " | ".join(fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m anatomy.bench", description=anatomy.bench.__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results/bench/bench.csv"))
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every step/image count (0.1: smoke run)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats per side (best kept)")
    ap.add_argument("--configfile", type=Path, default=None, help="config whose models and batches are measured "
                    "(default: config/config.yaml)")
    ap.add_argument("--workdir", type=Path, default=Path("."), help="folder of the finished quick study (no-op row)")
    ap.add_argument("--full-quick", action="store_true", help="time the whole quick study with --cores 1 and 2 "
                    "(about an hour on 2 CPU cores) instead of a small crops workflow")
    ap.add_argument("--threads", type=int, default=None, help="TensorFlow threads (default: all CPUs)")
    a = ap.parse_args(argv)
    parts = tuple(p.strip() for p in a.parts.split(",") if p.strip())
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"--parts: unknown {sorted(unknown)}; choose from {', '.join(PARTS)}")
    table = run(out=a.out, parts=parts, scale=a.scale, repeats=a.repeats, workdir=a.workdir,
                configfile=a.configfile, full_quick=a.full_quick, threads=a.threads)
    print(format_table(table))
    print(f"\n{table['versions'].iloc[0]}; {table['seconds_total'].iloc[0]} s; written to {a.out}")
    return 0
