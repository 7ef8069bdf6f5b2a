"""Rule summary: results/summary.{csv,md} from every study's own tables (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    import pandas as pd

    from anatomy import summary

    p, inp = snakemake.params, snakemake.input
    rows = []
    rows += summary.crops_rows(pd.read_csv(inp.crops).iloc[0], data=f"MNIST {p.data['mnist']}", scale=p.scale)
    rows += summary.cifar_rows(pd.read_csv(inp.cifar), base_lr=p.cifar_base_lr, data=f"CIFAR-10 {p.data['cifar10']}",
                               scale=p.scale)
    rows += summary.iic_rows(pd.read_csv(inp.iic), pd.read_csv(inp.iic_runs), data=f"MNIST {p.data['mnist']}", scale=p.scale)
    rows += summary.digits_rows(pd.read_csv(inp.digits_leaderboard), pd.read_csv(inp.digits_bootstrap),
                                ladder=pd.read_csv(inp.digits_ladder),
                                data=f"digits {p.data['digits']}", scale=p.scale)
    if inp.coreset:
        rows += summary.coreset_rows(pd.read_csv(inp.coreset[0]), data="synthetic ellipses", scale=p.scale)
    df = summary.write_summary(rows, snakemake.output.csv, snakemake.output.md)
    print(df.to_string())
