"""Rule crops_aggregate: windows.csv, baseline.csv and every crops figure (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.plots.crops import aggregate_figures
    from anatomy.studies.crops_results import aggregate

    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    agg = aggregate(mnist_h5=inp.mnist, baseline_histories=inp.baseline, seeds=p.seeds,
                    window_histories=inp.windows, top=p.top)
    agg["windows"].to_csv(out.windows, index=False, float_format="%.5f")
    agg["baseline"].to_csv(out.baseline, index=False, float_format="%.5f")
    aggregate_figures(agg, out, size=p.size, provenance=p.provenance)
    print(agg["windows"].to_string())
