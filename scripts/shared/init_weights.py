"""Shared initial weights: every variant of a study starts from this file (params.kwargs: the model's sizes)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.training.init_weights import write_initial_weights

    write_initial_weights(snakemake.params.model, snakemake.output[0], seed=int(snakemake.wildcards.seed),
                          kwargs=snakemake.params.get("kwargs"))
