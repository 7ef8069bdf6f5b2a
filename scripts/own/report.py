"""Rule anatomy_report: results/datasets/<name>/anatomy.md, the dataset's one-page report."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.studies.anatomy_report import write_report

    write_report(snakemake.output[0], dict(snakemake.input.items()), name=snakemake.params.name,
                 settings=snakemake.params.settings, scale=snakemake.params.scale)
