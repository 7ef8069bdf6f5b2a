"""Rule dataset: one dataset named in the config (npz | folder | csv) -> data.h5 + manifest.json."""
from anatomy.data.own import build_own_dataset
from anatomy.logs import log_step

with log_step(snakemake):
    m = build_own_dataset(snakemake.wildcards.name, snakemake.params.dataset,
                          snakemake.output.h5, snakemake.output.manifest)
    print(f"dataset '{m['name']}' written from {m['source']}: {m['shape']} images, "
          f"classes {m['classes']}, sizes {m['sizes']}")
