"""Rule crops_train: train the Keras MNIST CNN on full images or under one window mask."""
from anatomy.logs import contract_files, log_step

with log_step(snakemake):
    import numpy as np

    from anatomy.studies.crops import train_crops_run
    from anatomy.training.setup import RunSettings

    mask = np.load(snakemake.input.mask) if "mask" in snakemake.input.keys() else None
    train_crops_run(
        mnist_h5=snakemake.input.mnist, init_weights=snakemake.input.init, mask=mask,
        files=contract_files(snakemake), params=snakemake.params.train, data_seed=snakemake.params.data_seed,
        run_settings=RunSettings.from_rule(snakemake, seed=snakemake.params.seed),
    )
