"""Rule digits_figure: one figure of the digits study (the {figure} wildcard) from its tables (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    import pandas as pd

    from anatomy.plots import digits as plots

    inp, out, p, figure = snakemake.input, snakemake.output[0], snakemake.params, snakemake.wildcards.figure
    if figure == "fold_curves":
        hist = {f"fold {k}": pd.read_csv(h) for k, h in enumerate(inp.histories)}
        hist["step 1"] = pd.read_csv(inp.step1)
        plots.fold_curves(hist, out, provenance=p.provenance)
    elif figure == "ensemble_vs_single":
        plots.ensemble_vs_single(pd.read_csv(inp.leaderboard), out, provenance=p.provenance)
    elif figure == "hardest":
        from anatomy.studies.digits import read_arrays

        x, _, _ = read_arrays(inp.arrays)
        plots.hardest(pd.read_csv(inp.hardest), x, out, show=p.show, provenance=p.provenance)
    elif figure == "bootstrap":
        plots.bootstrap(pd.read_csv(inp.summary), pd.read_csv(inp.scores), out, provenance=p.provenance)
    elif figure == "ladder":
        plots.ladder(pd.read_csv(inp.ladder), out, provenance=p.provenance)
    else:
        raise ValueError(f"unknown digits figure '{figure}'")
