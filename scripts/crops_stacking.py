"""Rule crops_stacking: ensembles over image regions vs over seeds (no TensorFlow)."""
from pathlib import Path

from anatomy.logs import log_step

with log_step(snakemake):
    import numpy as np
    import pandas as pd

    from anatomy.plots.crops import stacking_bars
    from anatomy.studies.crops import stacking_across

    val, test, ranking_rows = {}, {}, []
    for pred, hist in zip(snakemake.input.windows, snakemake.input.histories):
        name = Path(pred).parent.name
        with np.load(pred) as p:
            val[name], test[name] = p["val"], p["test"]
            y_val, y_test = p["val_labels"], p["test_labels"]
        ranking_rows.append((pd.read_csv(hist)["val_accuracy"].max(), name))
    ranking = [name for _, name in sorted(ranking_rows, key=lambda t: (-t[0], t[1]))]
    control = []
    for p in snakemake.input.baseline:
        with np.load(p) as d:
            control.append(d["test"])
    table = stacking_across(val, test, y_val, y_test, ranking, k=snakemake.params.k, control_probs=control,
                            seed=snakemake.params.seed)
    table.to_csv(snakemake.output.table, index=False, float_format="%.5f")
    stacking_bars(table, snakemake.output.figure, provenance=snakemake.params.provenance)
    print(table.to_string())
