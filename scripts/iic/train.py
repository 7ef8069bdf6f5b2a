"""Rule iic_train: one IIC model (transform set, alpha per head, seed)."""
from anatomy.logs import contract_files, log_step

with log_step(snakemake):
    from anatomy.studies.iic import train_iic_run
    from anatomy.training.setup import RunSettings

    wc = snakemake.wildcards
    train_iic_run(
        mnist_h5=snakemake.input.mnist,
        files=contract_files(snakemake),
        params=snakemake.params.train, transform_set=wc.tset, alpha=float(wc.alpha), alpha_over=float(wc.alpha_over),
        run_settings=RunSettings.from_rule(snakemake, seed=wc.seed),
    )
