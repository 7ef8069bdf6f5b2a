"""Rules coreset_select and coreset_control: one U-Net training step (a selection run or a control)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.studies import coreset

    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    files = {**{k: out[k] for k in ("model", "history", "metrics", "predictions")}, "backup": p.backup}
    common = dict(train_h5=inp.train, test_h5=inp.test, init_weights=inp.init, params=p.train,
                  threads=snakemake.threads, seed=int(p.seed), deterministic=p.deterministic,
                  precision=p.precision)
    if snakemake.rule == "coreset_select":
        coreset.run_selection(files={**files, "selected": out.selected}, shuffle_seed=p.shuffle_seed, **common)
    else:
        control = snakemake.wildcards.control
        if control == "full":
            coreset.run_control(files=files, kind="full", size=None, subset_seed=None, **common)
        else:
            import pandas as pd

            size = len(pd.read_csv(inp.selected))
            coreset.run_control(files=files, kind="random", size=size,
                                subset_seed=int(control[len("random_seed"):]), **common)
