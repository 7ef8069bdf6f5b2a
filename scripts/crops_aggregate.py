"""Rule crops_aggregate: windows.csv, baseline.csv and every crops figure (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    import pandas as pd

    from anatomy.io import read_dataset_h5
    from anatomy.plots import crops as plots
    from anatomy.studies import crops

    out, prov = snakemake.output, snakemake.params.provenance
    x_test, y_test = read_dataset_h5(snakemake.input.mnist, "test")
    base_hist = {s: pd.read_csv(p) for s, p in zip(snakemake.params.seeds, snakemake.input.baseline)}
    baseline = crops.baseline_table(base_hist)
    runs = crops.window_runs(snakemake.input.windows)
    windows = crops.windows_table(runs, baseline, x_test=x_test, top=snakemake.params.top)
    stats = crops.baseline_stats(baseline)

    windows.to_csv(out.windows, index=False, float_format="%.5f")
    baseline.to_csv(out.baseline, index=False, float_format="%.5f")

    plots.heatmap(windows, "window", stats, out.heatmap_window, provenance=prov)
    plots.heatmap(windows, "as_published", stats, out.heatmap_as_published, provenance=prov)
    plots.importance(crops.importance_map(windows), stats, out.importance, provenance=prov)
    plots.examples(x_test, y_test, windows, out.examples, provenance=prov)
    size = snakemake.params.size
    plots.masks_compared(x_test, crops.compared_positions(windows, size), size, out.masks_compared, provenance=prov)
    plots.ink_vs_accuracy(windows, stats, out.ink_vs_accuracy, provenance=prov)
    best = windows[windows["mask"] == "window"].nlargest(3, "test_accuracy")
    hist = {f"baseline seed {s}": h for s, h in base_hist.items()}
    for r in best.itertuples():
        hist[f"window ({r.i},{r.j})"] = next(x["history"] for x in runs
                                             if (x["mask"], x["i"], x["j"]) == ("window", r.i, r.j))
    plots.curves(hist, out.curves, provenance=prov)
    print(windows.to_string())
