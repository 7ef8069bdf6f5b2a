"""Rows ``workflow/*``: Snakemake's DAG of ``config/full.yaml``, a rerun with nothing to do, the last quick study."""

from __future__ import annotations

import re
from pathlib import Path

from anatomy.bench.common import ROOT, row, run_snakemake


def job_total(text: str) -> int | None:
    m = re.search(r"^\s*total\s+(\d+)\s*$", text, re.M)
    return int(m.group(1)) if m else None


QUICK_BUDGET_SECONDS = 15 * 60


def last_run_seconds(workdir: Path) -> tuple[float, str] | None:
    """Wall time of the newest finished Snakemake run in ``workdir`` (its log's first to last timestamp)."""
    import datetime

    logs = sorted((Path(workdir) / ".snakemake" / "log").glob("*.snakemake.log"))
    for log in reversed(logs):
        text = log.read_text(errors="replace")
        if "(100%) done" not in text:
            continue
        stamps = [datetime.datetime.strptime(" ".join(m.split()), "%a %b %d %H:%M:%S %Y")
                  for m in re.findall(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", text, re.M)]
        if len(stamps) >= 2:
            return (stamps[-1] - stamps[0]).total_seconds(), log.name
    return None


def bench_workflow(workdir: Path) -> list:
    dt, out = run_snakemake(["-n", "--quiet", "rules", "--configfile", str(ROOT / "config" / "full.yaml")], workdir)
    rows = [row("workflow/dag_full", f"DAG of config/full.yaml built and listed (dry run), {job_total(out)} jobs",
                dt, 10.0, "s", goal=1.0, higher_is_better=False, ratio=dt / 10.0,
                notes="ratio = seconds / 10 s budget")]
    dt_n, out = run_snakemake(["-n", "--quiet", "rules"], workdir)
    todo = job_total(out)
    if todo:
        rows.append(row("workflow/noop_quick", "rerun of the finished quick study", float("nan"), 10.0, "s",
                        goal=1.0, higher_is_better=False, ratio=float("nan"),
                        notes=f"not measured: the quick study is not finished in {workdir} ({todo} jobs to do); "
                        "run `snakemake --cores all` first"))
    else:
        dt, _ = run_snakemake(["--cores", "all"], workdir)
        rows.append(row("workflow/noop_quick", "rerun of the finished quick study (nothing to do)", dt, 10.0, "s",
                        goal=1.0, higher_is_better=False, ratio=dt / 10.0, notes="ratio = seconds / 10 s budget"))
    last = last_run_seconds(workdir)
    if last is not None:
        seconds, log = last
        rows.append(row("workflow/quick_study", "the last finished `snakemake --cores all` in the folder: wall time "
                        "(first to last timestamp of its log) / the quick study's 15-minute budget", seconds,
                        QUICK_BUDGET_SECONDS, "s", goal=1.0, higher_is_better=False,
                        notes=f"{log}; measured by the run itself, not repeated here"))
    return rows
