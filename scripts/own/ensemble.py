"""Rule anatomy_ensemble: ensemble.csv (single fold models, their ensemble, TTA; intervals) and its figure."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.plots.anatomy import ensemble
    from anatomy.studies.anatomy_results import aggregate_ensemble

    p = snakemake.params
    table, models = aggregate_ensemble(snakemake.input.predictions, resamples=p.resamples)
    table.to_csv(snakemake.output.table, index=False, float_format="%.5f")
    ensemble(table, models, snakemake.output.figure, provenance=p.provenance)
    print(table.to_string())
