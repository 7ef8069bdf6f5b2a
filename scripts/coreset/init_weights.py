"""Rule coreset_initial_weights: the fresh U-Net weights every selection run and control starts from."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.studies.coreset import unet_kwargs
    from anatomy.training.init_weights import write_initial_weights

    write_initial_weights(snakemake.params.model, snakemake.output[0], seed=int(snakemake.wildcards.seed),
                          kwargs=unet_kwargs(snakemake.params.train))
