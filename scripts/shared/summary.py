"""Rule summary: results/summary.{csv,md}, every study's claims judged on its own tables (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    import pandas as pd

    from anatomy.studies import cifar_results, coreset_results, crops_results, digits_results, iic_results
    from anatomy.summary import judged_table, write_summary

    p, inp = snakemake.params, snakemake.input
    parts = [
        (crops_results.claims_evidence(pd.read_csv(inp.crops_baseline), pd.read_csv(inp.crops_confirm)),
         p.data["mnist"]),
        (cifar_results.claims_evidence(pd.read_csv(inp.cifar), base_lr=p.cifar_base_lr), p.data["cifar10"]),
        (iic_results.claims_evidence(pd.read_csv(inp.iic_runs)), p.data["mnist"]),
        (digits_results.claims_evidence(pd.read_csv(inp.digits_leaderboard), pd.read_csv(inp.digits_bootstrap),
                                        pd.read_csv(inp.digits_ladder)), p.data["digits"]),
    ]
    if inp.coreset:
        parts.append((coreset_results.claims_evidence(pd.read_csv(inp.coreset[0])), "synthetic ellipses"))
    table = pd.concat([judged_table(items, data=data, scale=p.scale) for items, data in parts], ignore_index=True)
    print(write_summary(table, snakemake.output.csv, snakemake.output.md).to_string())
