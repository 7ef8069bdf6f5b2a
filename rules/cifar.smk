# Study 2 (cifar): BatchNorm and learning rate, noisy BN, augmentation, corrupted labels and pixels.


def cifar_variants():
    """Every variant file a run reads: name -> what it corrupts (labels with probability p, or pixels)."""
    c = config["cifar"]
    return {
        **{f"labels_p{p:g}": {"label_noise": p} for p in c["label_noise"] if p > 0},
        **{f"pixels_{kind}": {"pixels": kind} for kind in c["pixels"]},
    }


def cifar_runs():
    """Every run of the study: name -> the spec that differs between runs (and its variant file)."""
    c = config["cifar"]
    base = c["base_lr"]
    runs = {}
    for lr in sorted(set(c["lr_grid"]) | {base}):
        runs[f"bn_lr{lr:g}"] = {"batchnorm": True, "learning_rate": lr}
        runs[f"nobn_lr{lr:g}"] = {"batchnorm": False, "learning_rate": lr}
    if c["noise"]["enabled"]:
        # the BN run the noisy one is compared with is scored with re-estimated BN statistics too
        runs[f"bn_lr{base:g}"]["reestimate_bn"] = True
        noise = {k: c["noise"][k] for k in ("shift", "scale_max")}
        # noise_test_draws: noise-on test draws (the noisy-BN run reports three test accuracies)
        runs[f"noisybn_lr{base:g}"] = {
            "batchnorm": True,
            "learning_rate": base,
            "noise": noise,
            "noise_test_draws": c["noise"]["test_draws"],
        }
    if c["augment"]:
        runs[f"aug_lr{base:g}"] = {
            "batchnorm": True,
            "learning_rate": base,
            "augment": True,
        }
    # corrupted labels, then pixels: each run reads its variant file
    for name in cifar_variants():
        runs[name] = {
            "batchnorm": True,
            "learning_rate": base,
            "variant": f"{RESULTS}/cifar/variants/{name}.npz",
        }
    return runs


CIFAR_RUNS = cifar_runs()
CIFAR_SEEDS = config["cifar"]["seeds"]
CIFAR_DATA = [f"{RESULTS}/data/cifar10/manifest.json"]


def cifar_variant_input(wildcards):
    v = CIFAR_RUNS[wildcards.run].get("variant")
    return {"variant": v} if v else {}


CIFAR_VARIANTS = cifar_variants()


rule cifar_variant:
    input:
        manifest=CIFAR_DATA,
    output:
        f"{RESULTS}/cifar/variants/{{variant}}.npz",
    log:
        f"{RESULTS}/logs/cifar/variant_{{variant}}.log",
    wildcard_constraints:
        variant="|".join(re.escape(v) for v in CIFAR_VARIANTS) or "(?!)",
    conda:
        CONDA_ENV
    params:
        spec=lambda wc: CIFAR_VARIANTS[wc.variant],
        seed=config["seed"],
    script:
        "../scripts/cifar/variant.py"


# One file per seed: every run of that seed (BN or not, noisy, augmented, corrupted) starts from its
# kernels, so the comparisons pair like with like.
rule cifar_initial_weights:
    output:
        f"{RESULTS}/cifar/init/seed{{seed}}.weights.h5",
    log:
        f"{RESULTS}/logs/cifar/init_seed{{seed}}.log",
    conda:
        CONDA_ENV
    params:
        model="vgg_like",
        kwargs={**config["cifar"]["model"], "batchnorm": False},
    script:
        "../scripts/shared/init_weights.py"


rule cifar_train:
    input:
        unpack(cifar_variant_input),
        manifest=CIFAR_DATA,
        init=f"{RESULTS}/cifar/init/seed{{seed}}.weights.h5",
    output:
        **run_outputs(f"{RESULTS}/cifar/runs/{{run}}/seed{{seed}}"),
    log:
        f"{RESULTS}/logs/cifar/{{run}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/cifar/{{run}}_seed{{seed}}.tsv"
    wildcard_constraints:
        run="|".join(map(re.escape, CIFAR_RUNS)) or "none",  # escaped: names such as bn_lr1e+06
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **train_resources(mem_mb=4000, runtime=360),
    params:
        **TRAIN_PARAMS,
        spec=lambda wc: {k: v for k, v in CIFAR_RUNS[wc.run].items() if k != "variant"},
        model=config["cifar"]["model"],
        train={
            k: config["cifar"][k]
            for k in ("train_size", "batch_size", "epochs", "weight_decay")
        },
        backup=lambda wc: f"{RESUME}/cifar/{wc.run}/seed{wc.seed}",
        seed=lambda wc: int(wc.seed),
    script:
        "../scripts/cifar/train.py"


CIFAR_FIGURES = {
    "bn_lr": "BatchNorm vs none over learning rates",
    "noisy_bn": "BN with injected noise",
    "augmentation": "augmentation on/off",
    "labels": "corrupted labels",
    "pixels": "corrupted pixels",
    "corruptions_train": "training accuracy under every corruption",
    "corruptions_test": "test accuracy under every corruption",
}


rule cifar_aggregate:
    input:
        histories=expand(
            f"{RESULTS}/cifar/runs/{{run}}/seed{{seed}}/history.csv",
            run=CIFAR_RUNS,
            seed=CIFAR_SEEDS,
        ),
        metrics=expand(
            f"{RESULTS}/cifar/runs/{{run}}/seed{{seed}}/metrics.json",
            run=CIFAR_RUNS,
            seed=CIFAR_SEEDS,
        ),
        labels=[
            s["variant"]
            for s in CIFAR_RUNS.values()
            if "labels_p" in s.get("variant", "")
        ],
    output:
        **{
            name: in_report(
                f"{RESULTS}/cifar/figures/{name}.png",
                f"cifar_{name}",
                "2 cifar",
                "figures",
            )
            for name in CIFAR_FIGURES
        },
        summary=in_report(
            f"{RESULTS}/cifar/summary.csv", "cifar_summary", "2 cifar", "tables"
        ),
        label_table=in_report(
            f"{RESULTS}/cifar/label_corruption.csv",
            "cifar_label_corruption",
            "2 cifar",
            "tables",
        ),
    log:
        f"{RESULTS}/logs/cifar/aggregate.log",
    conda:
        CONDA_ENV
    params:
        base_lr=config["cifar"]["base_lr"],
        figure_seed=CIFAR_SEEDS[0],
        provenance=f"data: CIFAR-10 {data_label('cifar10')} | config: {SCALE}",
    script:
        "../scripts/cifar/aggregate.py"
