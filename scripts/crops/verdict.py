"""Rule crops_verdict: confirmation runs paired with the like-for-like baseline, tests and the verdict (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    import pandas as pd

    from anatomy.studies.crops_results import verdict_tables

    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    confirm, tests, v = verdict_tables(like_baseline_histories=inp.like_baseline, seeds=p.seeds,
                                       confirm_histories=inp.confirm, windows_csv=inp.windows,
                                       baseline_csv=inp.baseline, alpha=p.alpha, batch_sizes=p.batch_sizes)
    confirm.to_csv(out.confirm, index=False, float_format="%.5f")
    tests.to_csv(out.tests, index=False, float_format="%.6g")
    pd.DataFrame([v]).to_csv(out.verdict, index=False, float_format="%.5f")
    print(tests.to_string(), "\n", v["finding"])
