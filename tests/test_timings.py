"""anatomy.timings: per-study job-seconds read from Snakemake's benchmark files."""

from __future__ import annotations

import numpy as np

from anatomy import timings


def _bench(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:01\t100\n")


def test_study_times_sums_each_studys_benchmarks(tmp_path):
    _bench(tmp_path / "benchmarks" / "crops" / "baseline_seed1.tsv", 10.5)
    _bench(tmp_path / "benchmarks" / "crops" / "window_s9_i0_j1.tsv", 20.0)
    _bench(tmp_path / "benchmarks" / "iic" / "all" / "a1_o1_seed0.tsv", 30.0)
    df = timings.study_times(tmp_path).set_index("study")
    assert df.loc["crops", "jobs"] == 2 and df.loc["crops", "job_seconds"] == 30.5
    assert df.loc["crops", "longest_job"] == "window_s9_i0_j1" and df.loc["iic", "longest_job"] == "all/a1_o1_seed0"
    assert abs(df["share"].sum() - 1) < 1e-3
    md = timings.markdown(df.reset_index())
    assert "| crops | 2 | 30.5 |" in md and "60 job-seconds" in md


def test_snapshot_copies_the_summary_and_records_the_run(tmp_path):
    _bench(tmp_path / "results" / "benchmarks" / "cifar" / "bn_lr0.05.tsv", 12.0)
    (tmp_path / "results" / "summary.md").write_text("# summary\n| crops | ... |\n")
    dest = timings.snapshot(tmp_path / "results", tmp_path / "snap", wall_seconds=754, command="snakemake --cores all")
    assert (dest / "summary.md").read_text() == "# summary\n| crops | ... |\n"
    t = (dest / "timings.md").read_text()
    assert "12.6 min (754 s)" in t and "| cifar | 1 | 12.0 |" in t and "CPU cores" in t


def test_a_one_study_snapshot_copies_its_tables_and_figures_and_times_it_alone(tmp_path):
    import pytest

    r = tmp_path / "results"
    _bench(r / "benchmarks" / "iic" / "all" / "a1_o1_seed0.tsv", 30.0)
    _bench(r / "benchmarks" / "cifar" / "bn_lr0.05.tsv", 12.0)
    (r / "iic" / "figures").mkdir(parents=True)
    (r / "iic" / "runs.csv").write_text("alpha\n1\n")
    from PIL import Image

    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:, 30:, 0] = 200  # two colours
    Image.fromarray(rgba, "RGBA").save(r / "iic" / "figures" / "confusion.png")
    dest = timings.snapshot(r, tmp_path / "snap", wall_seconds=60, command="snakemake results/iic/summary.csv",
                            study="iic", figures=["confusion"], data="MNIST from a local npz")
    assert dest == tmp_path / "snap" / "iic" and (dest / "runs.csv").read_text() == "alpha\n1\n"
    with Image.open(dest / "confusion.png") as im:  # a palette copy with the same pixels
        assert im.mode == "P" and np.array_equal(np.asarray(im.convert("RGB")), rgba[..., :3])
    assert not (dest / "summary.md").exists()
    t = (dest / "timings.md").read_text()
    assert "- data: MNIST from a local npz" in t and "| iic | 1 | 30.0 |" in t and "cifar" not in t
    with pytest.raises(FileNotFoundError, match="no tables"):
        timings.snapshot(r, tmp_path / "snap", wall_seconds=None, command="x", study="coreset")


def test_studies_run_one_at_a_time_are_staged_and_gathered(tmp_path):
    """The laptop scale: each study snapshotted on its own, staged back for the summary rule, then gathered."""
    import pytest

    snap = tmp_path / "snap"
    for study, secs, wall in (("crops", 100.0, 600), ("iic", 40.0, 90)):
        r = tmp_path / f"run_{study}"
        _bench(r / "benchmarks" / study / "job.tsv", secs)
        (r / study).mkdir(parents=True)
        (r / study / "verdict.csv").write_text(f"{study}\n1\n")
        timings.snapshot(r, snap, wall_seconds=wall, command=f"snakemake results/{study}", study=study)
    df = timings.study_snapshots(snap).set_index("study")
    assert df.loc["crops", "wall_minutes"] == 10.0 and df.loc["iic", "job_seconds"] == 40.0
    assert df.loc["iic", "jobs"] == 1 and "CPU cores" in df.loc["crops", "machine"]

    results = tmp_path / "results"
    (results / "iic").mkdir(parents=True)
    (results / "iic" / "verdict.csv").write_text("this run's own\n")
    assert timings.stage(snap, results) == [results / "crops" / "verdict.csv"]
    assert (results / "iic" / "verdict.csv").read_text() == "this run's own\n"  # never overwritten

    with pytest.raises(FileNotFoundError):  # the summary rule has not run yet
        timings.gather(results, snap, command="laptop")
    (results / "summary.md").write_text("# all studies\n")
    timings.gather(results, snap, command="laptop")
    t = (snap / "timings.md").read_text()
    assert (snap / "summary.md").read_text() == "# all studies\n"
    assert "| crops |" in t and "| iic |" in t and "add up to 0.2 h" in t

    (snap / "crops" / "timings.md").write_text("# hand-typed\n")
    with pytest.raises(ValueError, match="crops/timings.md"):
        timings.study_snapshots(snap)


def test_a_study_run_in_parts_records_their_sum_and_what_ran_beside_it(tmp_path):
    """A study resumed in a later sitting: its wall time is the parts' sum, each part named, and the
    gathered table reads the sum back."""
    r = tmp_path / "results"
    _bench(r / "benchmarks" / "crops" / "job.tsv", 100.0)
    (r / "crops").mkdir(parents=True)
    (r / "crops" / "verdict.csv").write_text("crops\n1\n")
    dest = timings.snapshot(r, tmp_path / "snap", wall_seconds=[5400, 1800.4], command="snakemake results/crops",
                            study="crops", beside="other processes used 12 CPU-seconds (0.1% of 2 cores)")
    t = (dest / "timings.md").read_text()
    assert "- wall time: 120.0 min (7200 s); in 2 parts of 5400 + 1800 s" in t
    assert "- beside it: other processes used 12 CPU-seconds (0.1% of 2 cores)" in t
    assert timings.study_snapshots(tmp_path / "snap").set_index("study").loc["crops", "wall_minutes"] == 120.0
    assert timings.wall_line(754) == "12.6 min (754 s)" and timings.wall_line(None) == "not recorded"
