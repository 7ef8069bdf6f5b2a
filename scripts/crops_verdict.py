"""Rule crops_verdict: confirmation runs paired with the like-for-like baseline, tests and the verdict (no TensorFlow)."""
from pathlib import Path

from anatomy.logs import log_step

with log_step(snakemake):
    import pandas as pd

    from anatomy.studies import crops

    p = snakemake.params
    like = crops.baseline_table({s: pd.read_csv(h) for s, h in zip(p.seeds, snakemake.input.like_baseline)})
    runs = []
    for h in snakemake.input.confirm:  # .../confirm/<mask>/s9_i0_j14/seed1/history.csv
        seed_dir = Path(h).parent
        runs.append({"mask": seed_dir.parent.parent.name, **crops.parse_run_name(seed_dir.parent.name),
                     "seed": int(seed_dir.name.removeprefix("seed")), "history": pd.read_csv(h)})
    confirm = crops.confirm_table(runs, like)
    tests = crops.confirm_tests(confirm, alpha=p.alpha)
    windows, baseline = pd.read_csv(snakemake.input.windows), pd.read_csv(snakemake.input.baseline)
    v = crops.verdict(windows, baseline, tests, like_baseline=like, alpha=p.alpha, batch_sizes=p.batch_sizes)
    confirm.to_csv(snakemake.output.confirm, index=False, float_format="%.5f")
    tests.to_csv(snakemake.output.tests, index=False, float_format="%.6g")
    pd.DataFrame([v]).to_csv(snakemake.output.verdict, index=False, float_format="%.5f")
    print(tests.to_string(), "\n", v["verdict"])
