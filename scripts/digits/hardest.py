"""Rule digits_hardest: the hardest training images, each scored by the fold model that did not see it."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.studies import digits as d
    from anatomy.studies import digits_results as r

    oof = r.out_of_fold([d.read_predictions(p) for p in snakemake.input.folds_pred])
    table = r.hardest(oof, top=snakemake.params.top)
    table.to_csv(snakemake.output[0], index=False, float_format="%.5f")
    print(f"overlap of the out-of-fold and in-sample top-{snakemake.params.top} lists: "
          f"{table['overlap_of_top_lists'].iloc[0]}")
    print(table.head(20).to_string())
