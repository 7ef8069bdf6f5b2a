"""Rule iic_aggregate: runs.csv, summary.csv and every iic figure (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.io import read_dataset_h5
    from anatomy.plots.iic import aggregate_figures
    from anatomy.studies import iic_results

    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    runs, hist, preds = iic_results.collect(zip(inp.histories, inp.predictions, inp.metrics))
    runs.to_csv(out.runs, index=False, float_format="%.5f")
    iic_results.summarise(runs).to_csv(out.summary, index=False, float_format="%.5f")
    x_test, _ = read_dataset_h5(inp.mnist, "test")
    aggregate_figures(runs, hist, preds, x_test, out, k=p.clusters, k_over=p.overclusters, provenance=p.provenance)
    print(runs.to_string())
