"""Rule cifar_aggregate: summary.csv, label_corruption.csv and every cifar figure (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.plots.cifar import aggregate_figures
    from anatomy.studies.cifar_results import collect, label_table

    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    hist, summary = collect(inp.histories, inp.metrics)
    summary.to_csv(out.summary, index=False, float_format="%.4f")
    label_table(inp.labels).to_csv(out.label_table, index=False, float_format="%.4f")
    aggregate_figures(hist, summary, out, base_lr=p.base_lr, seed=p.figure_seed, provenance=p.provenance)
    print(summary.to_string())
