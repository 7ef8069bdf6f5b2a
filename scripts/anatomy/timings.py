"""Where a run's time went: per-study job-seconds from Snakemake's ``benchmark:`` files.

``python -m anatomy.timings results/`` prints a markdown table (jobs and job-seconds per study,
from ``results/benchmarks/<study>/*.tsv``), so that timing tables are generated, not typed.
``--snapshot docs/results/quick --wall-seconds N`` also copies the run's ``summary.md`` there and
writes ``timings.md`` with the commit, date, machine and wall time: the committed record of a run.

A config too long for one sitting (the laptop scale) is run study by study, each snapshotted with
``--study``. ``--stage docs/results/laptop`` copies those studies' tables back into ``results/``
(never over a file that is there), so that the workflow's own ``summary`` rule can write the
whole config's ``summary.md``; ``--snapshot docs/results/laptop --gather`` (:func:`gather`) then
copies it and writes ``timings.md`` from the studies' own records (commit, date, machine, wall time each).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd


def benchmark_seconds(path) -> float:
    """The wall seconds of one job from its Snakemake ``benchmark:`` file."""
    return float(pd.read_csv(path, sep="\t")["s"].iloc[0])


def study_times(results) -> pd.DataFrame:
    """One row per study: benchmarked jobs, their summed wall seconds and the longest job."""
    rows = []
    for study in sorted(p for p in (Path(results) / "benchmarks").iterdir() if p.is_dir()):
        files = sorted(study.rglob("*.tsv"))
        secs = {f.relative_to(study).with_suffix("").as_posix(): benchmark_seconds(f) for f in files}
        if not secs:
            continue
        longest = max(secs, key=secs.get)
        rows.append({"study": study.name, "jobs": len(secs), "job_seconds": round(sum(secs.values()), 1),
                     "longest_job": longest, "longest_seconds": round(secs[longest], 1)})
    df = pd.DataFrame(rows, columns=["study", "jobs", "job_seconds", "longest_job", "longest_seconds"])
    if len(df):
        df["share"] = (df["job_seconds"] / df["job_seconds"].sum()).round(3)
    return df


def markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in df.itertuples(index=False)]
    total = df["job_seconds"].sum() if len(df) else 0.0
    lines.append(f"\nAll benchmarked jobs: {int(df['jobs'].sum()) if len(df) else 0}, {total:.0f} job-seconds.")
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return out or "unknown"


def small_png(src, dest, colors: int = 256) -> Path:
    """Copy a figure as a palette PNG (``colors`` colours, no dithering): about a third of
    matplotlib's RGBA file, so that committed snapshots stay small."""
    from PIL import Image

    with Image.open(src) as im:
        im.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                                   dither=Image.Dither.NONE).save(dest, optimize=True)
    return Path(dest)


def study_snapshots(folder) -> pd.DataFrame:
    """One row per ``folder/<study>/timings.md`` written by :func:`snapshot` with ``study``: the
    study's commit, date, machine, wall time and job-seconds, read back from that record."""
    rows = []
    for record in sorted(Path(folder).glob("*/timings.md")):
        text = record.read_text()
        fields = {k: re.search(rf"^- .*?{k}: ([^;\n]+)", text, re.M) for k in ("date", "commit", "machine")}
        wall = re.search(r"^- wall time: .*\((\d+) s\)", text, re.M)
        study = record.parent.name
        jobs = re.search(rf"^\| {re.escape(study)} \| (\d+) \| ([\d.]+) \|", text, re.M)
        if not (all(fields.values()) and wall and jobs):
            raise ValueError(f"{record}: not a study record written by anatomy.timings --snapshot --study")
        rows.append({"study": study, **{k: m.group(1).strip() for k, m in fields.items()},
                     "wall_minutes": round(int(wall.group(1)) / 60, 1), "jobs": int(jobs.group(1)),
                     "job_seconds": float(jobs.group(2))})
    return pd.DataFrame(rows, columns=["study", "date", "commit", "machine", "wall_minutes", "jobs", "job_seconds"])


def stage(folder, results) -> list[Path]:
    """Copy each ``folder/<study>/*.csv`` to ``results/<study>/``, skipping files already there
    (a study run in ``results`` keeps its own tables). Returns the files copied."""
    copied = []
    for table in sorted(Path(folder).glob("*/*.csv")):
        target = Path(results) / table.parent.name / table.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(table, target)
            copied.append(target)
    return copied


def wall_line(parts) -> str:
    """The wall-time line of a record: one measured time, or the sum of the parts a run was made in
    (Snakemake resuming, in a later sitting, a run that was stopped)."""
    parts = [float(p) for p in (parts if isinstance(parts, (list, tuple)) else [parts]) if p]
    if not parts:
        return "not recorded"
    total = sum(parts)
    line = f"{total / 60:.1f} min ({total:.0f} s)"
    if len(parts) > 1:
        line += f"; in {len(parts)} parts of " + " + ".join(f"{p:.0f}" for p in parts) + \
                " s, each resuming the finished jobs of the one before (a stopped job's partial time included)"
    return line


def snapshot(results, dest, *, wall_seconds, command: str, study: str | None = None,
             figures=(), data: str | None = None, beside: str | None = None) -> Path:
    """Copy ``summary.md`` of a finished run to ``dest`` and write ``timings.md`` beside it.

    With ``study`` (a run of one study's targets, before the whole workflow has run): copy that
    study's tables (``results/<study>/*.csv``) and the named ``figures`` to ``dest/<study>/`` instead,
    and time that study's jobs only. ``data`` records where the data came from, ``beside`` what else
    ran on the machine meanwhile; ``wall_seconds`` is one time or a list of the parts' times.
    """
    dest = Path(dest) / study if study else Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if study:
        tables = sorted((Path(results) / study).glob("*.csv"))
        if not tables:
            raise FileNotFoundError(f"{Path(results) / study}: no tables; has the study run?")
        for f in tables:
            shutil.copyfile(f, dest / f.name)
        for name in figures:
            small_png(Path(results) / study / "figures" / f"{name}.png", dest / f"{name}.png")
    else:
        shutil.copyfile(Path(results) / "summary.md", dest / "summary.md")
    head = [f"# Timings of `{command}`", "",
            f"- date: {datetime.date.today().isoformat()}; commit: {commit()}",
            f"- machine: {os.cpu_count()} CPU cores, {cpu_model()}, {platform.system()} {platform.machine()}",
            *([f"- data: {data}"] if data else []),
            f"- wall time: {wall_line(wall_seconds)}", *([f"- beside it: {beside}"] if beside else []), "",
            "Job-seconds per study (sum of the jobs' wall times from `results/benchmarks/`; jobs run "
            "side by side, so the wall time is less than the sum):", ""]
    times = study_times(results)
    if study:
        times = times[times["study"] == study]
    (dest / "timings.md").write_text("\n".join(head) + "\n" + markdown(times) + "\n")
    return dest


def gather(results, dest, *, command: str) -> Path:
    """The summary of a config run study by study: copy ``results/summary.md`` (written by the
    summary rule on the staged tables) to ``dest`` and write ``timings.md`` from each study's own
    record there (:func:`study_snapshots`) instead of the jobs in ``results``."""
    dest = Path(dest)
    studies = study_snapshots(dest)
    if not len(studies):
        raise FileNotFoundError(f"{dest}: no <study>/timings.md to gather")
    shutil.copyfile(Path(results) / "summary.md", dest / "summary.md")
    hours = studies["wall_minutes"].sum() / 60
    (dest / "timings.md").write_text(
        f"# Timings of `{command}`, study by study\n\nEach study was run on its own (its folder's "
        "`timings.md` has the command, data and what ran beside it); `summary.md` was then written by the "
        f"workflow's `summary` rule from their tables on {datetime.date.today().isoformat()} at commit "
        f"{commit()}.\n\n" + markdown(studies) + f"\nThe studies' wall times add up to {hours:.1f} h.\n")
    return dest


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", default="results")
    ap.add_argument("--snapshot", help="folder to copy summary.md to and write timings.md in")
    ap.add_argument("--wall-seconds", type=float, nargs="+",
                    help="the run's measured wall time (several: the parts of a run resumed in later sittings; "
                         "put the results folder before this option)")
    ap.add_argument("--command", default="snakemake --cores all", help="the command that made the run")
    ap.add_argument("--study", help="snapshot one study's tables (and --figures) instead of summary.md")
    ap.add_argument("--figures", nargs="*", default=[], help="figure names under results/<study>/figures/")
    ap.add_argument("--data", help="where the data came from (recorded in timings.md)")
    ap.add_argument("--beside", help="what else ran on the machine meanwhile (recorded in timings.md)")
    ap.add_argument("--stage", metavar="FOLDER", help="copy FOLDER/<study>/*.csv into results/ (never over a file)")
    ap.add_argument("--gather", action="store_true",
                    help="with --snapshot: timings.md from the snapshot's <study>/timings.md records")
    a = ap.parse_args(argv)
    if a.stage:
        for f in stage(a.stage, a.results):
            print(f)
        return
    if a.snapshot and a.gather:  # results/ holds the staged tables, not the studies' benchmarks
        print((gather(a.results, a.snapshot, command=a.command) / "timings.md").read_text())
        return
    if a.snapshot:
        dest = snapshot(a.results, a.snapshot, wall_seconds=a.wall_seconds, command=a.command, study=a.study,
                        figures=a.figures, data=a.data, beside=a.beside)
        print(dest / "timings.md")
    print(markdown(study_times(a.results)))


if __name__ == "__main__":
    main()
