"""Rule anatomy_examples: examples.csv (out-of-fold predictions, data map, cleanlab audit) and its figures."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.plots.anatomy import data_map, label_issues
    from anatomy.studies.anatomy_results import aggregate_examples

    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    table, summary, x_train = aggregate_examples(inp.h5, inp.predictions)
    table.to_csv(out.table, index=False, float_format="%.5f")
    summary.to_csv(out.summary, index=False, float_format="%.5f")
    label_issues(table, x_train, out.figure, show=p.show, provenance=p.provenance)
    data_map(table, out.datamap, provenance=p.provenance)
    print(summary.to_string())
