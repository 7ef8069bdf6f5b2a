# The anatomy of a dataset of your own (anatomy: <name>: ...) -> results/datasets/<name>/.
# Parts: memorisation, windows, examples, clustering, subset, ensemble (docs/datasets.md).
# Nothing here imports TensorFlow.
from anatomy.io import read_json
from anatomy.studies.anatomy import (
    memorisation_runs,
    part_settings,
    settings,
    subset_runs,
    window_grid,
    window_run,
)
from anatomy.studies.anatomy_report import provenance

ANATOMY = config.get("anatomy") or {}
ANATOMY_NAMES = "|".join(re.escape(n) for n in ANATOMY) or "(?!)"


def anatomy_final_output():
    return [f"{RESULTS}/datasets/{name}/anatomy.md" for name in ANATOMY]


def anatomy_dir(name):
    return f"{RESULTS}/datasets/{name}"


def anatomy_provenance(wc):
    return provenance(wc.name, DATASETS[wc.name]["source"], SCALE)


ANATOMY_H5 = f"{RESULTS}/datasets/{{name}}/data.h5"
# One training run of a part (rules anatomy_train and anatomy_fold), its log and benchmark names.
ANATOMY_RUN = f"{RESULTS}/datasets/{{name}}/{{part}}/{{run}}/seed{{seed}}"
ANATOMY_RUN_LOG = f"datasets/{{name}}/{{part}}_{{run}}_seed{{seed}}"


def anatomy_part_settings(wc):
    return part_settings(ANATOMY[wc.name], wc.part)


def anatomy_backup(wc):
    return f"{RESUME}/datasets/{wc.name}/{wc.part}/{wc.run}/seed{wc.seed}"


def anatomy_output(part, path, caption=None):
    """A part's table or figure under results/datasets/<name>/, in that dataset's report category."""
    return in_report(
        f"{RESULTS}/datasets/{{name}}/{path}",
        caption or f"anatomy_{part}",
        "dataset: {name}",
        part,
    )


def anatomy_runs(wc, part, runs, seeds, kind):
    """``kind`` (a file name) in every run folder of ``part``: each run on each seed."""
    d = anatomy_dir(wc.name)
    return [f"{d}/{part}/{run}/seed{seed}/{kind}" for run in runs for seed in seeds]


rule anatomy_train:
    input:
        h5=ANATOMY_H5,
        # subset runs: the training images ranked by the examples part's data map
        ranking=lambda wc: (
            [f"{anatomy_dir(wc.name)}/examples.csv"] if wc.part == "subset" else []
        ),
    output:
        **run_outputs(ANATOMY_RUN),
    log:
        f"{RESULTS}/logs/{ANATOMY_RUN_LOG}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{ANATOMY_RUN_LOG}.tsv"
    wildcard_constraints:
        name=ANATOMY_NAMES,
        part="memorisation|windows|subset",
        run=r"clean|labels_p[0-9.]+|pixels_permutation|full|s\d+_i\d+_j\d+|(easy|hard|random)_f[0-9.]+",
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **train_resources(mem_mb=3000, runtime=120),
    params:
        **TRAIN_PARAMS,
        settings=anatomy_part_settings,
        backup=anatomy_backup,
    script:
        "../scripts/own/train.py"


# The runs that also write predictions.npz: examples and ensemble folds, clustering (IIC) runs.
use rule anatomy_train as anatomy_fold with:
    input:
        h5=ANATOMY_H5,
    output:
        **run_outputs(ANATOMY_RUN),
        predictions=f"{ANATOMY_RUN}/predictions.npz",
    wildcard_constraints:
        name=ANATOMY_NAMES,
        part="examples|ensemble|clustering",
        run=r"fold\d+|iic",


def anatomy_memorisation_runs(wc, kind="history.csv"):
    s = settings(ANATOMY[wc.name])
    runs = memorisation_runs(s)
    return anatomy_runs(wc, "memorisation", runs, s["memorisation"]["seeds"], kind)


def anatomy_window_runs(wc):
    """Every window of the grid (from the image shape in the dataset's manifest, on the first seed) and the
    full-image runs (on every seed)."""
    s = settings(ANATOMY[wc.name])
    shape = read_json(checkpoints.dataset.get(name=wc.name).output.manifest)["shape"]
    seeds = s["windows"]["seeds"]
    windows = [window_run(*w) for w in window_grid(s, shape)]
    return anatomy_runs(wc, "windows", ["full"], seeds, "history.csv") + anatomy_runs(
        wc, "windows", windows, seeds[:1], "history.csv"
    )


def anatomy_folds(wc, part="examples"):
    """Every fold model's predictions.npz: the examples part's (one seed) or the ensemble's (its seeds)."""
    e = settings(ANATOMY[wc.name])[part]
    seeds = [e["seed"]] if part == "examples" else e["seeds"]
    folds = [f"fold{k}" for k in range(e["folds"])]
    return anatomy_runs(wc, part, folds, seeds, "predictions.npz")


def anatomy_clustering_runs(wc, kind="history.csv"):
    seeds = settings(ANATOMY[wc.name])["clustering"]["seeds"]
    return anatomy_runs(wc, "clustering", ["iic"], seeds, kind)


def anatomy_subset_runs(wc):
    s = settings(ANATOMY[wc.name])
    return anatomy_runs(
        wc, "subset", subset_runs(s), s["subset"]["seeds"], "metrics.json"
    )


# Each part's table and figure: rule anatomy_<part>, script scripts/own/<part>.py. Its inputs, and the
# outputs and params it has beyond table.csv, figures/<part>.png and the provenance.
ANATOMY_AGGREGATIONS = {
    "memorisation": {
        "input": {
            "h5": ANATOMY_H5,
            "histories": anatomy_memorisation_runs,
            "metrics": lambda wc: anatomy_memorisation_runs(wc, "metrics.json"),
        },
    },
    "windows": {"input": {"h5": ANATOMY_H5, "histories": anatomy_window_runs}},
    "examples": {
        "input": {"h5": ANATOMY_H5, "predictions": anatomy_folds},
        "output": {
            "summary": f"{RESULTS}/datasets/{{name}}/examples_audit.csv",
            "datamap": anatomy_output(
                "examples",
                "figures/examples_datamap.png",
                "anatomy_examples_datamap",
            ),
        },
        "params": {"show": lambda wc: settings(ANATOMY[wc.name])["examples"]["top"]},
    },
    "clustering": {
        "input": {
            "h5": ANATOMY_H5,
            "histories": anatomy_clustering_runs,
            "predictions": lambda wc: anatomy_clustering_runs(wc, "predictions.npz"),
        },
        "output": {
            "confusion": f"{RESULTS}/datasets/{{name}}/clustering_confusion.csv"
        },
    },
    "subset": {"input": {"h5": ANATOMY_H5, "metrics": anatomy_subset_runs}},
    "ensemble": {
        "input": {"predictions": lambda wc: anatomy_folds(wc, "ensemble")},
        "params": {
            "resamples": lambda wc: settings(ANATOMY[wc.name])["ensemble"]["bootstrap"]
        },
    },
}


for part, spec in ANATOMY_AGGREGATIONS.items():

    rule:
        name:
            f"anatomy_{part}"
        input:
            **spec["input"],
        output:
            **spec.get("output", {}),
            table=anatomy_output(part, f"{part}.csv"),
            figure=anatomy_output(part, f"figures/{part}.png"),
        log:
            f"{RESULTS}/logs/datasets/{{name}}/{part}.log",
        wildcard_constraints:
            name=ANATOMY_NAMES,
        conda:
            CONDA_ENV
        params:
            **spec.get("params", {}),
            provenance=anatomy_provenance,
            part=part,  # the script's name: Snakemake reads the script path when the job runs, after the loop
        script:
            "../scripts/own/{params.part}.py"


def anatomy_tables(wc):
    """Every table of the dataset's parts, by file name: <part>.csv and the others a part writes
    (examples_audit, clustering_confusion)."""
    out = {}
    for part, spec in ANATOMY_AGGREGATIONS.items():
        if part in settings(ANATOMY[wc.name]):
            for path in [f"{part}.csv", *map(str, spec.get("output", {}).values())]:
                if path.endswith(".csv"):
                    out[Path(path).stem] = f"{anatomy_dir(wc.name)}/{Path(path).name}"
    return out


rule anatomy_report:
    input:
        unpack(anatomy_tables),
        manifest=f"{RESULTS}/datasets/{{name}}/manifest.json",
    output:
        anatomy_output("report", "anatomy.md"),
    log:
        f"{RESULTS}/logs/datasets/{{name}}/anatomy.log",
    wildcard_constraints:
        name=ANATOMY_NAMES,
    localrule: True
    conda:
        CONDA_ENV
    params:
        name=lambda wc: wc.name,
        settings=lambda wc: settings(ANATOMY[wc.name]),
        scale=SCALE,
    script:
        "../scripts/own/report.py"
