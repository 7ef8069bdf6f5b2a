"""Rules anatomy_train and anatomy_fold: one training of one part of a dataset's anatomy."""
from anatomy.logs import contract_files, log_step

with log_step(snakemake):
    from anatomy.studies.anatomy import train_anatomy_run
    from anatomy.training.setup import RunSettings

    wc, p = snakemake.wildcards, snakemake.params
    train_anatomy_run(
        h5=snakemake.input.h5, files=contract_files(snakemake), part=wc.part, run=wc.run,
        settings=p.settings, run_settings=RunSettings.from_rule(snakemake, seed=wc.seed),
        ranking=(snakemake.input.get("ranking") or [None])[0],
    )
