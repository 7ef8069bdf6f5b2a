"""Rule crops_stacking: ensembles over image regions vs over seeds (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.plots.crops import stacking_bars
    from anatomy.studies.crops_results import stacking_from_files

    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    table = stacking_from_files(inp.windows, inp.histories, inp.baseline, k=p.k, seed=p.seed)
    table.to_csv(out.table, index=False, float_format="%.5f")
    stacking_bars(table, out.figure, provenance=p.provenance)
    print(table.to_string())
