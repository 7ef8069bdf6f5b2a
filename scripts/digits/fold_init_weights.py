"""Rule digits_fold_initial_weights: each fold model's own initial weights, seeded by (seed, fold)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.studies.digits import write_fold_initial_weights

    prints = write_fold_initial_weights(list(snakemake.output), snakemake.params.seeds, model=snakemake.params.model)
    for k, (path, s, fp) in enumerate(zip(snakemake.output, snakemake.params.seeds, prints)):
        print(f"fold {k}: seed {s} -> {path} (weights fingerprint {fp})")
