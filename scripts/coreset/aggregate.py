"""Rule coreset_aggregate: runs.csv, the verdict, the re-check histogram and every coreset figure (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.io import read_dataset_h5
    from anatomy.plots.coreset import aggregate_figures
    from anatomy.studies.coreset_results import aggregate

    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    agg = aggregate(metrics=inp.metrics, predictions=inp.predictions, histories=inp.histories,
                    selected=inp.selected, scale=p.scale)
    agg["runs"].to_csv(out.runs, index=False, float_format="%.5f")
    agg["verdict"].to_csv(out.verdict, index=False)
    agg["recheck"].to_csv(out.recheck_table, index=False, float_format="%.3f")
    (x, y), (x_test, y_test) = read_dataset_h5(inp.train, "train"), read_dataset_h5(inp.test, "test")
    aggregate_figures(agg, x, y, x_test, y_test, out, pass_score=p.pass_score, seed=p.seed, provenance=p.provenance)
    print(agg["runs"].to_string())
