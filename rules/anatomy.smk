# The anatomy of a dataset of your own (anatomy: <name>: ...) -> results/datasets/<name>/.
# Parts: memorisation, windows, examples, clustering, subset, ensemble (docs/datasets.md).
# Nothing here imports TensorFlow.
from anatomy.io import read_json
from anatomy.studies.anatomy import (
    PARTS,
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


rule anatomy_train:
    input:
        h5=f"{RESULTS}/datasets/{{name}}/data.h5",
        # subset runs: the training images ranked by the examples part's data map
        ranking=lambda wc: (
            [f"{anatomy_dir(wc.name)}/examples.csv"] if wc.part == "subset" else []
        ),
    output:
        **run_outputs(f"{RESULTS}/datasets/{{name}}/{{part}}/{{run}}/seed{{seed}}"),
    log:
        f"{RESULTS}/logs/datasets/{{name}}/{{part}}_{{run}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/datasets/{{name}}/{{part}}_{{run}}_seed{{seed}}.tsv"
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
        settings=lambda wc: part_settings(ANATOMY[wc.name], wc.part),
        backup=lambda wc: f"{RESUME}/datasets/{wc.name}/{wc.part}/{wc.run}/seed{wc.seed}",
        contract_keys=["model", "history", "metrics"],
    script:
        "../scripts/own/train.py"


rule anatomy_fold:
    """The runs that also write predictions.npz: examples and ensemble folds, clustering (IIC) runs."""
    input:
        h5=f"{RESULTS}/datasets/{{name}}/data.h5",
    output:
        **run_outputs(f"{RESULTS}/datasets/{{name}}/{{part}}/{{run}}/seed{{seed}}"),
        predictions=f"{RESULTS}/datasets/{{name}}/{{part}}/{{run}}/seed{{seed}}/predictions.npz",
    log:
        f"{RESULTS}/logs/datasets/{{name}}/{{part}}_{{run}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/datasets/{{name}}/{{part}}_{{run}}_seed{{seed}}.tsv"
    wildcard_constraints:
        name=ANATOMY_NAMES,
        part="examples|ensemble|clustering",
        run=r"fold\d+|iic",
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **train_resources(mem_mb=3000, runtime=120),
    params:
        **TRAIN_PARAMS,
        settings=lambda wc: part_settings(ANATOMY[wc.name], wc.part),
        backup=lambda wc: f"{RESUME}/datasets/{wc.name}/{wc.part}/{wc.run}/seed{wc.seed}",
        contract_keys=["model", "history", "metrics", "predictions"],
    script:
        "../scripts/own/train.py"


def anatomy_memorisation_runs(wc, kind="history.csv"):
    m = settings(ANATOMY[wc.name])["memorisation"]
    return [
        f"{anatomy_dir(wc.name)}/memorisation/{run}/seed{seed}/{kind}"
        for run in memorisation_runs(settings(ANATOMY[wc.name]))
        for seed in m["seeds"]
    ]


rule anatomy_memorisation:
    input:
        h5=f"{RESULTS}/datasets/{{name}}/data.h5",
        histories=anatomy_memorisation_runs,
        metrics=lambda wc: anatomy_memorisation_runs(wc, "metrics.json"),
    output:
        table=in_report(
            f"{RESULTS}/datasets/{{name}}/memorisation.csv",
            "anatomy_memorisation",
            "dataset: {name}",
            "memorisation",
        ),
        figure=in_report(
            f"{RESULTS}/datasets/{{name}}/figures/memorisation.png",
            "anatomy_memorisation",
            "dataset: {name}",
            "memorisation",
        ),
    log:
        f"{RESULTS}/logs/datasets/{{name}}/memorisation.log",
    wildcard_constraints:
        name=ANATOMY_NAMES,
    conda:
        CONDA_ENV
    params:
        provenance=anatomy_provenance,
    script:
        "../scripts/own/memorisation.py"


def anatomy_window_runs(wc):
    """Every window of the grid (from the image shape in the dataset's manifest) and the full-image runs."""
    s = settings(ANATOMY[wc.name])
    shape = read_json(checkpoints.dataset.get(name=wc.name).output.manifest)["shape"]
    d = f"{anatomy_dir(wc.name)}/windows"
    first = s["windows"]["seeds"][0]
    return [f"{d}/full/seed{seed}/history.csv" for seed in s["windows"]["seeds"]] + [
        f"{d}/{window_run(*w)}/seed{first}/history.csv" for w in window_grid(s, shape)
    ]


rule anatomy_windows:
    input:
        h5=f"{RESULTS}/datasets/{{name}}/data.h5",
        histories=anatomy_window_runs,
    output:
        table=in_report(
            f"{RESULTS}/datasets/{{name}}/windows.csv",
            "anatomy_windows",
            "dataset: {name}",
            "windows",
        ),
        figure=in_report(
            f"{RESULTS}/datasets/{{name}}/figures/windows.png",
            "anatomy_windows",
            "dataset: {name}",
            "windows",
        ),
    log:
        f"{RESULTS}/logs/datasets/{{name}}/windows.log",
    wildcard_constraints:
        name=ANATOMY_NAMES,
    conda:
        CONDA_ENV
    params:
        provenance=anatomy_provenance,
    script:
        "../scripts/own/windows.py"


def anatomy_folds(wc):
    e = settings(ANATOMY[wc.name])["examples"]
    return [
        f"{anatomy_dir(wc.name)}/examples/fold{k}/seed{e['seed']}/predictions.npz"
        for k in range(e["folds"])
    ]


rule anatomy_examples:
    input:
        h5=f"{RESULTS}/datasets/{{name}}/data.h5",
        predictions=anatomy_folds,
    output:
        table=in_report(
            f"{RESULTS}/datasets/{{name}}/examples.csv",
            "anatomy_examples",
            "dataset: {name}",
            "examples",
        ),
        summary=f"{RESULTS}/datasets/{{name}}/examples_audit.csv",
        figure=in_report(
            f"{RESULTS}/datasets/{{name}}/figures/examples.png",
            "anatomy_examples",
            "dataset: {name}",
            "examples",
        ),
        datamap=in_report(
            f"{RESULTS}/datasets/{{name}}/figures/examples_datamap.png",
            "anatomy_examples_datamap",
            "dataset: {name}",
            "examples",
        ),
    log:
        f"{RESULTS}/logs/datasets/{{name}}/examples.log",
    wildcard_constraints:
        name=ANATOMY_NAMES,
    conda:
        CONDA_ENV
    params:
        provenance=anatomy_provenance,
        show=lambda wc: settings(ANATOMY[wc.name])["examples"]["top"],
    script:
        "../scripts/own/examples.py"


def anatomy_clustering_runs(wc, kind="history.csv"):
    c = settings(ANATOMY[wc.name])["clustering"]
    return [
        f"{anatomy_dir(wc.name)}/clustering/iic/seed{seed}/{kind}"
        for seed in c["seeds"]
    ]


rule anatomy_clustering:
    input:
        h5=f"{RESULTS}/datasets/{{name}}/data.h5",
        histories=anatomy_clustering_runs,
        predictions=lambda wc: anatomy_clustering_runs(wc, "predictions.npz"),
    output:
        table=in_report(
            f"{RESULTS}/datasets/{{name}}/clustering.csv",
            "anatomy_clustering",
            "dataset: {name}",
            "clustering",
        ),
        confusion=f"{RESULTS}/datasets/{{name}}/clustering_confusion.csv",
        figure=in_report(
            f"{RESULTS}/datasets/{{name}}/figures/clustering.png",
            "anatomy_clustering",
            "dataset: {name}",
            "clustering",
        ),
    log:
        f"{RESULTS}/logs/datasets/{{name}}/clustering.log",
    wildcard_constraints:
        name=ANATOMY_NAMES,
    conda:
        CONDA_ENV
    params:
        provenance=anatomy_provenance,
    script:
        "../scripts/own/clustering.py"


def anatomy_subset_runs(wc):
    s = settings(ANATOMY[wc.name])
    return [
        f"{anatomy_dir(wc.name)}/subset/{run}/seed{seed}/metrics.json"
        for run in subset_runs(s)
        for seed in s["subset"]["seeds"]
    ]


rule anatomy_subset:
    input:
        h5=f"{RESULTS}/datasets/{{name}}/data.h5",
        metrics=anatomy_subset_runs,
    output:
        table=in_report(
            f"{RESULTS}/datasets/{{name}}/subset.csv",
            "anatomy_subset",
            "dataset: {name}",
            "subset",
        ),
        figure=in_report(
            f"{RESULTS}/datasets/{{name}}/figures/subset.png",
            "anatomy_subset",
            "dataset: {name}",
            "subset",
        ),
    log:
        f"{RESULTS}/logs/datasets/{{name}}/subset.log",
    wildcard_constraints:
        name=ANATOMY_NAMES,
    conda:
        CONDA_ENV
    params:
        provenance=anatomy_provenance,
    script:
        "../scripts/own/subset.py"


def anatomy_ensemble_folds(wc):
    e = settings(ANATOMY[wc.name])["ensemble"]
    return [
        f"{anatomy_dir(wc.name)}/ensemble/fold{k}/seed{seed}/predictions.npz"
        for seed in e["seeds"]
        for k in range(e["folds"])
    ]


rule anatomy_ensemble:
    input:
        predictions=anatomy_ensemble_folds,
    output:
        table=in_report(
            f"{RESULTS}/datasets/{{name}}/ensemble.csv",
            "anatomy_ensemble",
            "dataset: {name}",
            "ensemble",
        ),
        figure=in_report(
            f"{RESULTS}/datasets/{{name}}/figures/ensemble.png",
            "anatomy_ensemble",
            "dataset: {name}",
            "ensemble",
        ),
    log:
        f"{RESULTS}/logs/datasets/{{name}}/ensemble.log",
    wildcard_constraints:
        name=ANATOMY_NAMES,
    conda:
        CONDA_ENV
    params:
        provenance=anatomy_provenance,
        resamples=lambda wc: settings(ANATOMY[wc.name])["ensemble"]["bootstrap"],
    script:
        "../scripts/own/ensemble.py"


def anatomy_tables(wc):
    parts = [p for p in PARTS if p in settings(ANATOMY[wc.name])]
    out = {p: f"{anatomy_dir(wc.name)}/{p}.csv" for p in parts}
    if "examples" in parts:
        out["examples_audit"] = f"{anatomy_dir(wc.name)}/examples_audit.csv"
    if "clustering" in parts:
        out["clustering_confusion"] = f"{anatomy_dir(wc.name)}/clustering_confusion.csv"
    return out


rule anatomy_report:
    input:
        unpack(anatomy_tables),
        manifest=f"{RESULTS}/datasets/{{name}}/manifest.json",
    output:
        in_report(
            f"{RESULTS}/datasets/{{name}}/anatomy.md",
            "anatomy_report",
            "dataset: {name}",
            "report",
        ),
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
