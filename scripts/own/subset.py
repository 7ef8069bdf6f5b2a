"""Rule anatomy_subset: subset.csv (accuracy by training-set size, easy / hard / random) and its figure."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.plots.anatomy import subset
    from anatomy.studies.anatomy_results import aggregate_subset

    table = aggregate_subset(snakemake.input.h5, snakemake.input.metrics)
    table.to_csv(snakemake.output.table, index=False, float_format="%.5f")
    subset(table, snakemake.output.figure, provenance=snakemake.params.provenance)
    print(table.to_string())
