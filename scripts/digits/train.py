"""Rule digits_train (step 1, a ladder rung or a fold model): train CNNMedium once, write its predictions."""
from anatomy.logs import contract_files, log_step

with log_step(snakemake):
    from anatomy.studies.digits import train_digits_model
    from anatomy.training.setup import RunSettings

    out = snakemake.output
    train_digits_model(
        arrays=snakemake.input.arrays, folds=snakemake.input.folds, init_weights=snakemake.input.init,
        test_labels=snakemake.input.test_labels,
        files=contract_files(snakemake),
        params=snakemake.params.train, part=snakemake.params.part,
        run_settings=RunSettings.from_rule(snakemake, seed=snakemake.wildcards.seed),
        init_seed=snakemake.params.init_seed,
    )
