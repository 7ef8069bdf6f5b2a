# Study 4 (coreset): U-Net core-set selection on synthetic ellipses ("ships at sea").
from anatomy.studies.coreset_controls import control_run_name


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


def coreset_runs():
    """Every training of the study: run folder (under results/coreset/) -> what differs between runs.
    Per seed (``coreset.seeds``, paired in every comparison): both selection orders, then the full set and
    a random subset of that seed's in-order selection size, each controlled twice: stopped at the target
    and for that selection's gradient steps (``_matched_steps``). A seed's runs share its initial weights.
    """
    runs = {}
    for s in config["coreset"]["seeds"]:
        runs[f"select/in_order/seed{s}"] = {"shuffle_seed": None, "seed": s}
        runs[f"select/shuffled/seed{s}"] = {"shuffle_seed": s, "seed": s}
        for kind in ("full", "random"):
            for matched in (False, True):
                runs[f"control/{control_run_name(kind, matched)}/seed{s}"] = {
                    "control": control_run_name(kind),
                    "matched": matched,
                    "seed": s,
                }
    return runs


CORESET_RUNS = coreset_runs()


def coreset_run_dirs():
    return [f"{RESULTS}/coreset/{run}" for run in CORESET_RUNS]


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


def coreset_train_input(wc):
    """A run starts from its seed's initial weights; a random subset has the seed's in-order selection's
    size, a matched control its gradient steps."""
    spec = CORESET_RUNS[wc.run]
    sel = f"{RESULTS}/coreset/select/in_order/seed{spec['seed']}"
    out = {"init": f"{RESULTS}/coreset/init/seed{spec['seed']}.weights.h5"}
    if spec.get("control", "full") != "full":
        out["selected"] = f"{sel}/selected.csv"
    if spec.get("matched"):
        out["budget"] = f"{sel}/metrics.json"
    return out


# One rule for every coreset training: the selections (select/<order>/seed<s>) and the controls
# (control/<full|random>[_matched_steps]/seed<s>); selected.csv: the pairs the run trained on.
rule coreset_train:
    input:
        unpack(coreset_train_input),
        **CORESET_DATA,
    output:
        **run_outputs(f"{RESULTS}/coreset/{{run}}"),
        selected=f"{RESULTS}/coreset/{{run}}/selected.csv",
        predictions=f"{RESULTS}/coreset/{{run}}/predictions.npz",
    log:
        f"{RESULTS}/logs/coreset/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/coreset/{{run}}.tsv"
    wildcard_constraints:
        run="|".join(re.escape(r) for r in CORESET_RUNS),
    # the selections are the longest jobs, and the matched controls wait for the in-order one:
    # start them first (their upstream rules, ellipses_h5 and coreset_initial_weights, carry it too)
    priority: lambda wc: 1 if wc.run.startswith("select/") else 0
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **train_resources(mem_mb=4000, runtime=600),
    params:
        **TRAIN_PARAMS,
        train=coreset_train_params(),
        spec=lambda wc: CORESET_RUNS[wc.run],
        backup=lambda wc: f"{RESUME}/coreset/{wc.run}",
        seed=lambda wc: CORESET_RUNS[wc.run]["seed"],
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
            f"{RESULTS}/coreset/{run}/history.csv"
            for run in CORESET_RUNS
            if run.startswith("select/")
        ],
        selected=[
            f"{RESULTS}/coreset/{run}/selected.csv"
            for run in CORESET_RUNS
            if run.startswith("select/")
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
