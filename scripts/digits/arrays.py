"""Rule digits_arrays: validate the competition CSVs once and keep them as uint8 arrays (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.studies.digits import write_arrays

    print(write_arrays(snakemake.output[0], snakemake.input.train, snakemake.input.test))
