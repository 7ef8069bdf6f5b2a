"""Rule coreset_aggregate: runs.csv, the verdict, the re-check histogram and every coreset figure (no TensorFlow)."""
from pathlib import Path

from anatomy.logs import log_step

with log_step(snakemake):
    import numpy as np
    import pandas as pd

    from anatomy.io import read_dataset_h5, read_json
    from anatomy.plots import coreset as plots
    from anatomy.studies import coreset

    inp, out, p = snakemake.input, snakemake.output, snakemake.params
    prov = p.provenance
    x, y = read_dataset_h5(inp.train, "train")
    x_test, y_test = read_dataset_h5(inp.test, "test")
    metrics = {}
    arrays = {}
    for m_path, a_path in zip(inp.metrics, inp.predictions):
        m = read_json(m_path)
        metrics[m["run"]] = m
        with np.load(a_path) as a:
            arrays[m["run"]] = {k: a[k] for k in a.files}
    runs = coreset.runs_table(metrics)
    runs.to_csv(out.runs, index=False, float_format="%.5f")
    coreset.verdict(runs, pass_score=p.pass_score, margin_sd=p.margin_sd).to_csv(out.verdict, index=False)
    recheck = {run: a["recheck_scores"] for run, a in arrays.items()}
    coreset.recheck_histogram(recheck).to_csv(out.recheck_table, index=False, float_format="%.3f")

    histories = {Path(h).parent.name: pd.read_csv(h) for h in inp.histories}
    selected = {Path(s).parent.name: pd.read_csv(s)["index"].to_numpy() for s in inp.selected}
    rng = np.random.default_rng(p.seed)
    plots.pairs(x, y, np.sort(rng.choice(len(x), min(10, len(x)), replace=False)), out.pairs, provenance=prov)
    plots.selected_vs_scanned(histories, len(x), out.selected_vs_scanned, provenance=prov)
    plots.score_vs_size(runs, histories, out.score_vs_size, provenance=prov)
    plots.selected_grid(x, y, selected["in_order"], out.selected_grid, provenance=prov)
    shown = coreset.runs_shown(list(arrays))
    plots.predictions(x_test, y_test, {r: arrays[r]["test_probs"] for r in shown}, out.predictions, provenance=prov)
    plots.recheck({r: recheck[r] for r in coreset.recheck_shown(list(recheck))}, p.pass_score, out.recheck,
                  provenance=prov)
    print(runs.to_string())
