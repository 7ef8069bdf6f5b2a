"""Rule anatomy_windows: windows.csv and the window heatmap (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.plots.anatomy import windows
    from anatomy.studies.anatomy_results import aggregate_windows

    inp, out = snakemake.input, snakemake.output
    table, x_test = aggregate_windows(inp.h5, inp.histories)
    table.to_csv(out.table, index=False, float_format="%.5f")
    windows(table, x_test, out.figure, provenance=snakemake.params.provenance)
    print(table.to_string())
