# Study 1 (crops): the Keras MNIST CNN on full images and on 9x9 windows.

CROPS_PROVENANCE = f"data: MNIST {data_label('mnist')} | config: {SCALE}"


def crops_train_params(batch_size):
    """The config slice one crops training uses (and nothing else)."""
    c = config["crops"]
    return {
        "train_size": c["train_size"],
        "validation_size": c["validation_size"],
        "learning_rate": c["learning_rate"],
        "loss": c["loss"],
        "stopping": c["stopping"],
        "batch_size": batch_size,
    }


rule crops_initial_weights:
    output:
        f"{RESULTS}/crops/init/seed{{seed}}.weights.h5",
    log:
        f"{RESULTS}/logs/crops/init_seed{{seed}}.log",
    conda:
        CONDA_ENV
    params:
        model="mnist_cnn",
    script:
        "../scripts/shared/init_weights.py"


# Every crops training is one run folder under results/crops/, named by what differs:
#   baseline/seed<s>                       the full image at the baseline's batch size
#   baseline_window_batch/seed<s>          the full image at the windows' batch size (when they differ)
#   <mask>/s<size>_i<i>_j<j>               one window, from the config's seed
#   confirm/<mask>/s<size>_i<i>_j<j>/seed<s>  a top window retrained on a baseline seed (the checkpoint's)
CROPS_RUN = re.compile(
    r"(?:confirm/)?"
    r"(?:(?P<full>baseline|baseline_window_batch)|(?P<mask>window|as_published)/s(?P<size>\d+)_i(?P<i>\d+)_j(?P<j>\d+))"
    r"(?:/seed(?P<seed>\d+))?"
)


def crops_run(run):
    """A run folder's spec: seed, batch size, and its window mask file (None: the full image)."""
    m = CROPS_RUN.fullmatch(run)
    c = config["crops"]
    batch = c["baseline" if m["full"] == "baseline" else "window"]["batch_size"]
    mask = (
        m["mask"]
        and f"{RESULTS}/crops/masks/{m['mask']}/s{m['size']}_i{m['i']}_j{m['j']}.npy"
    )
    return {"seed": int(m["seed"] or config["seed"]), "batch_size": batch, "mask": mask}


def crops_like_baseline_run(seed):
    """The full-image run at the windows' batch size from seed ``seed``'s initial weights (the like-for-like
    control of the confirmation); the baseline itself when the two batch sizes agree."""
    c = config["crops"]
    same = c["window"]["batch_size"] == c["baseline"]["batch_size"]
    return f"{'baseline' if same else 'baseline_window_batch'}/seed{seed}"


def crops_window_runs(mask=None):
    """Every configured window (both masks unless ``mask`` is given)."""
    c = config["crops"]
    return [
        f"{m}/s{c['window']['size']}_i{i}_j{j}"
        for m, grid in c["grids"].items()
        if mask is None or m == mask
        for i in grid["rows"]
        for j in grid["cols"]
    ]


def crops_window_dirs(mask=None):
    return [f"{RESULTS}/crops/{run}" for run in crops_window_runs(mask)]


def crops_baseline_files(name):
    """``name`` in every baseline run folder (one per baseline seed)."""
    seeds = config["crops"]["baseline"]["seeds"]
    return [f"{RESULTS}/crops/baseline/seed{s}/{name}" for s in seeds]


def crops_train_input(wc):
    spec = crops_run(wc.run)
    init = {"init": f"{RESULTS}/crops/init/seed{spec['seed']}.weights.h5"}
    return {**init, "mask": spec["mask"]} if spec["mask"] else init


# One rule for every crops training (the run folders above).
rule crops_train:
    input:
        unpack(crops_train_input),
        mnist=f"{RESULTS}/data/mnist.h5",
    output:
        **run_outputs(f"{RESULTS}/crops/{{run}}"),
        predictions=f"{RESULTS}/crops/{{run}}/predictions.npz",
    log:
        f"{RESULTS}/logs/crops/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/crops/{{run}}.tsv"
    wildcard_constraints:
        run=re.sub(r"\?P<\w+>", "?:", CROPS_RUN.pattern),  # the same runs, without group names
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **train_resources(mem_mb=3000, runtime=240),
    params:
        **TRAIN_PARAMS,
        train=lambda wc: crops_train_params(crops_run(wc.run)["batch_size"]),
        backup=lambda wc: f"{RESUME}/crops/{wc.run}",
        seed=lambda wc: crops_run(wc.run)["seed"],
        data_seed=config["seed"],
    script:
        "../scripts/crops/train.py"


rule crops_baseline_curves:
    input:
        histories=crops_baseline_files("history.csv"),
    output:
        in_report(
            f"{RESULTS}/crops/figures/baseline_curves.png",
            "crops_baseline_curves",
            "1 crops",
            "training curves",
        ),
    log:
        f"{RESULTS}/logs/crops/baseline_curves.log",
    conda:
        CONDA_ENV
    params:
        seeds=config["crops"]["baseline"]["seeds"],
        provenance=CROPS_PROVENANCE,
    script:
        "../scripts/crops/baseline_figure.py"


rule crops_mask:
    output:
        f"{RESULTS}/crops/masks/{{mask}}/s{{size}}_i{{i}}_j{{j}}.npy",
    localrule: True
    conda:
        CONDA_ENV
    run:
        from anatomy.studies.crops import write_mask

        write_mask(
            output[0],
            wildcards.mask,
            int(wildcards.i),
            int(wildcards.j),
            int(wildcards.size),
        )


CROPS_FIGURES = {
    "heatmap_window": "accuracy by window position, true windows",
    "heatmap_as_published": "accuracy by window position, the article's mask",
    "importance": "per-pixel importance",
    "examples": "best and worst windows on test digits",
    "masks_compared": "true window vs the article's mask",
    "ink_vs_accuracy": "accuracy against ink kept",
    "curves": "training curves of baselines and best windows",
}


rule crops_aggregate:
    input:
        mnist=f"{RESULTS}/data/mnist.h5",
        baseline=crops_baseline_files("history.csv"),
        windows=[f"{d}/history.csv" for d in crops_window_dirs()],
    output:
        **{
            name: in_report(
                f"{RESULTS}/crops/figures/{name}.png",
                f"crops_{name}",
                "1 crops",
                "figures",
            )
            for name in CROPS_FIGURES
        },
        windows=in_report(
            f"{RESULTS}/crops/windows.csv", "crops_windows", "1 crops", "tables"
        ),
        baseline=f"{RESULTS}/crops/baseline.csv",
    log:
        f"{RESULTS}/logs/crops/aggregate.log",
    conda:
        CONDA_ENV
    params:
        seeds=config["crops"]["baseline"]["seeds"],
        size=config["crops"]["window"]["size"],
        top=config["crops"]["confirm"]["top"],
        provenance=CROPS_PROVENANCE,
    script:
        "../scripts/crops/aggregate.py"


checkpoint crops_select:
    input:
        windows=[f"{d}/history.csv" for d in crops_window_dirs()],
    output:
        f"{RESULTS}/crops/selected.csv",
    log:
        f"{RESULTS}/logs/crops/select.log",
    conda:
        CONDA_ENV
    params:
        top=config["crops"]["confirm"]["top"],
    script:
        "../scripts/crops/select.py"


def crops_confirm_histories(wildcards):
    """Every confirmation run the checkpoint's selection asks for (top windows x baseline seeds)."""
    import pandas as pd

    selected = pd.read_csv(checkpoints.crops_select.get().output[0])
    return [
        f"{RESULTS}/crops/confirm/{r.mask}/s{r.size}_i{r.i}_j{r.j}/seed{seed}/history.csv"
        for r in selected.itertuples()
        for seed in config["crops"]["baseline"]["seeds"]
    ]


rule crops_verdict:
    input:
        windows=f"{RESULTS}/crops/windows.csv",
        baseline=f"{RESULTS}/crops/baseline.csv",
        like_baseline=expand(
            "{d}/history.csv",
            d=[
                f"{RESULTS}/crops/{crops_like_baseline_run(s)}"
                for s in config["crops"]["baseline"]["seeds"]
            ],
        ),
        confirm=crops_confirm_histories,
    output:
        confirm=in_report(
            f"{RESULTS}/crops/confirm.csv", "crops_confirm", "1 crops", "tables"
        ),
        tests=in_report(
            f"{RESULTS}/crops/confirm_tests.csv", "crops_confirm", "1 crops", "tables"
        ),
        verdict=in_report(
            f"{RESULTS}/crops/verdict.csv", "crops_verdict", "1 crops", "tables"
        ),
    log:
        f"{RESULTS}/logs/crops/verdict.log",
    conda:
        CONDA_ENV
    params:
        seeds=config["crops"]["baseline"]["seeds"],
        alpha=config["crops"]["confirm"]["alpha"],
        batch_sizes={
            "baseline": config["crops"]["baseline"]["batch_size"],
            "window": config["crops"]["window"]["batch_size"],
        },
    script:
        "../scripts/crops/verdict.py"


rule crops_stacking:
    input:
        baseline=crops_baseline_files("predictions.npz"),
        windows=[f"{d}/predictions.npz" for d in crops_window_dirs("window")],
        histories=[f"{d}/history.csv" for d in crops_window_dirs("window")],
    output:
        table=in_report(
            f"{RESULTS}/crops/stacking.csv", "crops_stacking", "1 crops", "tables"
        ),
        figure=in_report(
            f"{RESULTS}/crops/figures/stacking.png",
            "crops_stacking",
            "1 crops",
            "figures",
        ),
    log:
        f"{RESULTS}/logs/crops/stacking.log",
    conda:
        CONDA_ENV
    params:
        k=config["crops"]["stacking"]["k"],
        seed=config["seed"],
        provenance=CROPS_PROVENANCE,
    script:
        "../scripts/crops/stacking.py"
