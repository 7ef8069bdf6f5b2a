# Study 1 (crops): the Keras MNIST CNN on full images and on 9x9 windows.


def crops_train_params(batch_size):
    """The config slice one crops training uses (and nothing else)."""
    c = config["crops"]
    return {
        "train_size": c["train_size"],
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
    params:
        model="mnist_cnn",
    script:
        "../scripts/init_weights.py"


rule crops_baseline:
    input:
        mnist=f"{RESULTS}/data/mnist.h5",
        init=f"{RESULTS}/crops/init/seed{{seed}}.weights.h5",
    output:
        **run_outputs(f"{RESULTS}/crops/baseline/seed{{seed}}"),
    log:
        f"{RESULTS}/logs/crops/baseline_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/crops/baseline_seed{{seed}}.tsv"
    params:
        train=crops_train_params(config["crops"]["baseline"]["batch_size"]),
        backup=lambda wc: f"{RESUME}/crops/baseline/seed{wc.seed}",
        deterministic=config["deterministic"],
        mask=None,
    threads: config["threads"]
    resources:
        **train_resources(mem_mb=3000, runtime=120),
    script:
        "../scripts/train_crops.py"


rule crops_baseline_curves:
    input:
        histories=expand(f"{RESULTS}/crops/baseline/seed{{seed}}/history.csv", seed=config["crops"]["baseline"]["seeds"]),
    output:
        report(
            f"{RESULTS}/crops/figures/baseline_curves.png",
            caption="../report/crops_baseline_curves.rst",
            category="1 crops",
            subcategory="training curves",
        ),
    log:
        f"{RESULTS}/logs/crops/baseline_curves.log",
    params:
        seeds=config["crops"]["baseline"]["seeds"],
        provenance=f"data: MNIST {data_label('mnist')} | config: {SCALE}",
    script:
        "../scripts/plot_crops_baseline.py"
