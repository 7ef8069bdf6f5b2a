# Datasets named in the config (datasets: <name>: ...) -> results/datasets/<name>/. No TensorFlow here.
from anatomy.data.own import source_files

DATASETS = config.get("datasets") or {}


def datasets_final_output():
    return [
        f"{RESULTS}/datasets/{name}/{f}"
        for name in DATASETS
        for f in ("data.h5", "manifest.json")
    ]


checkpoint dataset:
    input:
        lambda wc: [str(p) for p in source_files(DATASETS[wc.name])],
    output:
        h5=f"{RESULTS}/datasets/{{name}}/data.h5",
        manifest=f"{RESULTS}/datasets/{{name}}/manifest.json",
    log:
        f"{RESULTS}/logs/datasets/{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/datasets/{{name}}.tsv"
    wildcard_constraints:
        # only configured names (a name no dataset has matches nothing)
        name="|".join(re.escape(n) for n in DATASETS) or "(?!)",
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
    params:
        dataset=lambda wc: DATASETS[wc.name],
    script:
        "../scripts/own/build.py"
