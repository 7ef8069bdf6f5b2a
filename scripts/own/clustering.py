"""Rule anatomy_clustering: clustering.csv, the confusion table and its figure (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.plots.anatomy import clustering
    from anatomy.studies.anatomy_results import aggregate_clustering

    inp, out = snakemake.input, snakemake.output
    table, confusion, drawn = aggregate_clustering(inp.h5, inp.histories, inp.predictions)
    table.to_csv(out.table, index=False, float_format="%.5f")
    confusion.to_csv(out.confusion, index=False)
    clustering(drawn, out.figure, provenance=snakemake.params.provenance)
    print(table.to_string(), confusion.to_string(), sep="\n")
