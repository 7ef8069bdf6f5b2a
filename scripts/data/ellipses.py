"""Rule ellipses_h5: the synthetic "ships at sea" train and test sets (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.data.ellipses import build_ellipses

    build_ellipses(snakemake.output.train, snakemake.output.test, snakemake.params.ellipses,
                   seed=int(snakemake.params.seed))
