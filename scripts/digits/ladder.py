"""Rule digits_ladder_table: the ablation ladder on the local leaderboard (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.studies import digits as d
    from anatomy.studies import digits_results

    table = digits_results.ladder_from_runs(snakemake.input, snakemake.params.seeds, snakemake.params.folds,
                                            d.read_test_labels(snakemake.input.test_labels))
    table.to_csv(snakemake.output[0], index=False, float_format="%.5f")
    print(table.to_string())
