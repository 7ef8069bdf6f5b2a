"""Rule crops_baseline_curves: training curves of the baseline seeds."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.plots.curves import plot_histories, read_histories

    paths = dict(zip((f"seed {s}" for s in snakemake.params.seeds), snakemake.input.histories))
    plot_histories(read_histories(paths), snakemake.output[0],
                   title="Keras MNIST CNN on full images (crops baseline)", provenance=snakemake.params.provenance)
