"""Rule digits_bootstrap: public-leaderboard noise, seeded quarter-size subsets of the local test set."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.studies import digits as d
    from anatomy.studies import kaggle

    b = snakemake.params.bootstrap
    preds = {n: kaggle.read_submission_labels(p) for n, p in zip(snakemake.params.names, snakemake.input.submissions)}
    summary, scores = kaggle.bootstrap_public(preds, d.read_test_labels(snakemake.input.test_labels),
                                              subsets=b["subsets"], fraction=b["fraction"], seed=snakemake.params.seed)
    summary.to_csv(snakemake.output.summary, index=False, float_format="%.5f")
    scores.to_csv(snakemake.output.scores, index=False, float_format="%.5f")
    print(summary.to_string())
