"""Rule iic_train: one IIC model (transform set, alpha per head, seed)."""
from anatomy.logs import contract_files, log_step

with log_step(snakemake):
    from anatomy.studies.iic import train_iic_run

    wc = snakemake.wildcards
    train_iic_run(
        mnist_h5=snakemake.input.mnist,
        files=contract_files(snakemake),
        params=snakemake.params.train, transform_set=wc.tset, alpha=float(wc.alpha), alpha_over=float(wc.alpha_over),
        threads=snakemake.threads, seed=int(wc.seed), deterministic=snakemake.params.deterministic,
        precision=snakemake.params.precision,
    )
