"""Rule digits_figure: one figure of the digits study (the {figure} wildcard) from its tables (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.plots.digits import figure

    p = snakemake.params
    figure(snakemake.wildcards.figure, snakemake.input, snakemake.output[0], show=p.show, provenance=p.provenance)
