"""Checkpoint crops_select: the top windows of each mask by held-out accuracy, to be confirmed on the baseline's seeds."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.io import atomic_path
    from anatomy.studies.crops_results import grid_table, rank_windows, window_runs

    selected = rank_windows(grid_table(window_runs(snakemake.input.windows)), top=snakemake.params.top)
    with atomic_path(snakemake.output[0]) as tmp:
        selected.to_csv(tmp, index=False, float_format="%.5f")
    print(selected.to_string())
