"""anatomy.timings: per-study job-seconds read from Snakemake's benchmark files."""

from __future__ import annotations

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
    (r / "iic" / "figures" / "confusion.png").write_bytes(b"png")
    dest = timings.snapshot(r, tmp_path / "snap", wall_seconds=60, command="snakemake results/iic/summary.csv",
                            study="iic", figures=["confusion"], data="MNIST from a local npz")
    assert dest == tmp_path / "snap" / "iic" and (dest / "runs.csv").read_text() == "alpha\n1\n"
    assert (dest / "confusion.png").read_bytes() == b"png" and not (dest / "summary.md").exists()
    t = (dest / "timings.md").read_text()
    assert "- data: MNIST from a local npz" in t and "| iic | 1 | 30.0 |" in t and "cifar" not in t
    with pytest.raises(FileNotFoundError, match="no tables"):
        timings.snapshot(r, tmp_path / "snap", wall_seconds=None, command="x", study="coreset")
