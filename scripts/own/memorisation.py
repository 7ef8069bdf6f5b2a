"""Rule anatomy_memorisation: memorisation.csv and its figure (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.plots.anatomy import memorisation
    from anatomy.studies.anatomy_results import aggregate_memorisation

    inp, out = snakemake.input, snakemake.output
    table, curves, chance = aggregate_memorisation(inp.h5, inp.histories, inp.metrics)
    table.to_csv(out.table, index=False, float_format="%.5f")
    memorisation(curves, chance, out.figure, provenance=snakemake.params.provenance)
    print(table.to_string())
