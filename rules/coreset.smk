# Study 4 (coreset): U-Net core-set selection on synthetic ellipses ("ships at sea").


def coreset_train_params():
    """The config slice every coreset training uses (the controls' seeds excluded)."""
    c = config["coreset"]
    return {
        "image_size": config["data"]["ellipses"]["image_size"],
        **{
            k: c[k]
            for k in (
                "model",
                "batch_size",
                "learning_rate",
                "stopping",
                "selection",
                "keep_predictions",
            )
        },
    }


def coreset_run_dirs():
    """Every run folder: both selection orders, then the full set and each random-subset seed, each
    controlled twice: stopped at the target (``full``) and for the in-order selection's gradient steps
    (``full_matched_steps``)."""
    runs = [f"{RESULTS}/coreset/select/{o}" for o in ("in_order", "shuffled")]
    controls = ["full"] + [
        f"random_seed{s}" for s in config["coreset"]["controls"]["random_seeds"]
    ]
    for c in controls:
        runs += [
            f"{RESULTS}/coreset/control/{c}",
            f"{RESULTS}/coreset/control/{c}_matched_steps",
        ]
    return runs


def coreset_final_output():
    if not config["coreset"]["enabled"]:
        return []  # coreset.enabled: false skips the study
    return [f"{RESULTS}/coreset/runs.csv", f"{RESULTS}/coreset/verdict.csv"]


CORESET_DATA = {
    "train": f"{RESULTS}/data/ellipses/train.h5",
    "test": f"{RESULTS}/data/ellipses/test.h5",
}


rule coreset_initial_weights:
    output:
        f"{RESULTS}/coreset/init/seed{{seed}}.weights.h5",
    log:
        f"{RESULTS}/logs/coreset/init_seed{{seed}}.log",
    priority: 1  # the selections wait for it (rule priorities do not pass upstream)
    conda:
        CONDA_ENV
    params:
        model="residual_unet",
        train=coreset_train_params(),
    script:
        "../scripts/coreset/init_weights.py"


rule coreset_select:
    input:
        **CORESET_DATA,
        init=f"{RESULTS}/coreset/init/seed{config['seed']}.weights.h5",
    output:
        **run_outputs(f"{RESULTS}/coreset/select/{{order}}"),
        selected=f"{RESULTS}/coreset/select/{{order}}/selected.csv",
        predictions=f"{RESULTS}/coreset/select/{{order}}/predictions.npz",
    log:
        f"{RESULTS}/logs/coreset/select_{{order}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/coreset/select_{{order}}.tsv"
    wildcard_constraints:
        order="in_order|shuffled",
    # the longest jobs, and the matched controls wait for the in-order one: start them first
    # (their upstream rules, ellipses_h5 and coreset_initial_weights, carry the priority too)
    priority: 1
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **train_resources(mem_mb=4000, runtime=600),
    params:
        **TRAIN_PARAMS,
        train=coreset_train_params(),
        shuffle_seed=lambda wc: (
            config["coreset"]["selection"]["shuffle_seed"]
            if wc.order == "shuffled"
            else None
        ),
        backup=lambda wc: f"{RESUME}/coreset/select/{wc.order}",
        seed=config["seed"],
    script:
        "../scripts/coreset/train.py"


rule coreset_control:
    input:
        **CORESET_DATA,
        init=f"{RESULTS}/coreset/init/seed{config['seed']}.weights.h5",
        # a random subset has the in-order selection's size
        selected=lambda wc: (
            []
            if wc.control == "full"
            else f"{RESULTS}/coreset/select/in_order/selected.csv"
        ),
    output:
        **run_outputs(f"{RESULTS}/coreset/control/{{control}}"),
        predictions=f"{RESULTS}/coreset/control/{{control}}/predictions.npz",
    log:
        f"{RESULTS}/logs/coreset/control_{{control}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/coreset/control_{{control}}.tsv"
    wildcard_constraints:
        control=r"full|random_seed\d+",
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **train_resources(mem_mb=4000, runtime=600),
    params:
        **TRAIN_PARAMS,
        train=coreset_train_params(),
        backup=lambda wc: f"{RESUME}/coreset/control/{wc.control}",
        seed=config["seed"],
    script:
        "../scripts/coreset/train.py"


rule coreset_control_matched:
    input:
        **CORESET_DATA,
        init=f"{RESULTS}/coreset/init/seed{config['seed']}.weights.h5",
        selected=lambda wc: (
            []
            if wc.control == "full"
            else f"{RESULTS}/coreset/select/in_order/selected.csv"
        ),
        # the budget: the in-order selection's gradient steps (its metrics.json)
        budget=f"{RESULTS}/coreset/select/in_order/metrics.json",
    output:
        **run_outputs(f"{RESULTS}/coreset/control/{{control}}_matched_steps"),
        predictions=f"{RESULTS}/coreset/control/{{control}}_matched_steps/predictions.npz",
    log:
        f"{RESULTS}/logs/coreset/control_{{control}}_matched_steps.log",
    benchmark:
        f"{RESULTS}/benchmarks/coreset/control_{{control}}_matched_steps.tsv"
    wildcard_constraints:
        control=r"full|random_seed\d+",
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **train_resources(mem_mb=4000, runtime=600),
    params:
        **TRAIN_PARAMS,
        train=coreset_train_params(),
        backup=lambda wc: f"{RESUME}/coreset/control/{wc.control}_matched_steps",
        seed=config["seed"],
    script:
        "../scripts/coreset/train.py"


CORESET_FIGURES = {
    "pairs": "ten random training pairs",
    "selected_vs_scanned": "selected count against scanned count, both orders",
    "score_vs_size": "test score against training-set size",
    "selected_grid": "selected pairs",
    "predictions": "predictions vs masks on test images",
    "recheck": "re-check histogram",
}


rule coreset_aggregate:
    input:
        **CORESET_DATA,
        metrics=[f"{d}/metrics.json" for d in coreset_run_dirs()],
        predictions=[f"{d}/predictions.npz" for d in coreset_run_dirs()],
        histories=[
            f"{RESULTS}/coreset/select/{o}/history.csv"
            for o in ("in_order", "shuffled")
        ],
        selected=[
            f"{RESULTS}/coreset/select/{o}/selected.csv"
            for o in ("in_order", "shuffled")
        ],
    output:
        **{
            name: in_report(
                f"{RESULTS}/coreset/figures/{name}.png",
                f"coreset_{name}",
                "4 coreset",
                "figures",
            )
            for name in CORESET_FIGURES
        },
        runs=in_report(
            f"{RESULTS}/coreset/runs.csv", "coreset_runs", "4 coreset", "tables"
        ),
        verdict=in_report(
            f"{RESULTS}/coreset/verdict.csv", "coreset_verdict", "4 coreset", "tables"
        ),
        recheck_table=in_report(
            f"{RESULTS}/coreset/recheck_histogram.csv",
            "coreset_recheck_histogram",
            "4 coreset",
            "tables",
        ),
    log:
        f"{RESULTS}/logs/coreset/aggregate.log",
    conda:
        CONDA_ENV
    params:
        seed=config["seed"],
        pass_score=config["coreset"]["stopping"]["target"]
        * config["coreset"]["stopping"]["pass_factor"],
        scale=SCALE,
        provenance=f"data: synthetic ellipses, {config['data']['ellipses']['image_size']} px | config: {SCALE}",
    script:
        "../scripts/coreset/aggregate.py"
