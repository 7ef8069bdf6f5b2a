"""Rule cifar_train: one VGG-like run (BN or not, learning rate, noise, augmentation, variant) of one seed."""
from anatomy.logs import contract_files, log_step

with log_step(snakemake):
    import numpy as np

    from anatomy.studies.cifar import train_cifar_run
    from anatomy.training.setup import RunSettings

    variant = None
    if "variant" in snakemake.input.keys():
        with np.load(snakemake.input.variant) as v:
            variant = {k: v[k] for k in v.files}
        variant["description"] = str(variant["description"])
    train_cifar_run(
        manifest=snakemake.input.manifest[0],
        files=contract_files(snakemake),
        spec=snakemake.params.spec, model_cfg=snakemake.params.model, train_cfg=snakemake.params.train,
        init_weights=snakemake.input.init, variant=variant,
        run_settings=RunSettings.from_rule(snakemake, seed=snakemake.params.seed),
    )
