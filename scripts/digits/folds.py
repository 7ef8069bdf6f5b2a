"""Rule digits_folds: the used training images, step 1's 80/20 split and the stratified folds, as a file."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.studies.digits import make_folds, read_arrays, write_folds

    p = snakemake.params
    _, y, _ = read_arrays(snakemake.input.arrays)
    folds = make_folds(y, n_folds=p.folds, seed=p.seed, validation_fraction=p.validation_fraction,
                       train_size=p.train_size)
    write_folds(snakemake.output[0], folds)
    print(folds.groupby(["fold", "step1"]).size().unstack().to_string())
