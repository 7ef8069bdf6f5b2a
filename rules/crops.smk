# Study 1 (crops): the Keras MNIST CNN on full images and on 9x9 windows.


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
        predictions=f"{RESULTS}/crops/baseline/seed{{seed}}/predictions.npz",
    log:
        f"{RESULTS}/logs/crops/baseline_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/crops/baseline_seed{{seed}}.tsv"
    params:
        train=crops_train_params(config["crops"]["baseline"]["batch_size"]),
        backup=lambda wc: f"{RESUME}/crops/baseline/seed{wc.seed}",
        deterministic=config["deterministic"],
        precision=config["precision"],
        data_seed=config["seed"],
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


rule crops_mask:
    output:
        f"{RESULTS}/crops/masks/{{mask}}/s{{size}}_i{{i}}_j{{j}}.npy",
    localrule: True
    run:
        from anatomy.studies.crops import write_mask

        write_mask(output[0], wildcards.mask, int(wildcards.i), int(wildcards.j), int(wildcards.size))


rule crops_window:
    input:
        mnist=f"{RESULTS}/data/mnist.h5",
        init=f"{RESULTS}/crops/init/seed{config['seed']}.weights.h5",
        mask=f"{RESULTS}/crops/masks/{{mask}}/s{{size}}_i{{i}}_j{{j}}.npy",
    output:
        **run_outputs(f"{RESULTS}/crops/{{mask}}/s{{size}}_i{{i}}_j{{j}}"),
        predictions=f"{RESULTS}/crops/{{mask}}/s{{size}}_i{{i}}_j{{j}}/predictions.npz",
    log:
        f"{RESULTS}/logs/crops/{{mask}}_s{{size}}_i{{i}}_j{{j}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/crops/{{mask}}_s{{size}}_i{{i}}_j{{j}}.tsv"
    params:
        train=crops_train_params(config["crops"]["window"]["batch_size"]),
        backup=lambda wc: f"{RESUME}/crops/{wc.mask}/s{wc.size}_i{wc.i}_j{wc.j}",
        deterministic=config["deterministic"],
        precision=config["precision"],
        data_seed=config["seed"],
        seed=config["seed"],
    threads: config["threads"]
    resources:
        **train_resources(mem_mb=3000, runtime=240),
    script:
        "../scripts/train_crops.py"


CROPS_FIGURES = {
    "heatmap_window": "accuracy by window position, true windows",
    "heatmap_as_published": "accuracy by window position, the seed's mask",
    "importance": "per-pixel importance",
    "examples": "best and worst windows on test digits",
    "masks_compared": "true window vs the seed's mask",
    "ink_vs_accuracy": "accuracy against ink kept",
    "curves": "training curves of baselines and best windows",
}


rule crops_aggregate:
    input:
        mnist=f"{RESULTS}/data/mnist.h5",
        baseline=expand(f"{RESULTS}/crops/baseline/seed{{seed}}/history.csv", seed=config["crops"]["baseline"]["seeds"]),
        windows=[f"{d}/history.csv" for d in crops_window_dirs()],
    output:
        windows=report(f"{RESULTS}/crops/windows.csv", caption="../report/crops_windows.rst", category="1 crops", subcategory="tables"),
        baseline=f"{RESULTS}/crops/baseline.csv",
        beats=report(f"{RESULTS}/crops/beats_baseline.csv", caption="../report/crops_beats.rst", category="1 crops", subcategory="tables"),
        verdict=report(f"{RESULTS}/crops/verdict.csv", caption="../report/crops_verdict.rst", category="1 crops", subcategory="tables"),
        **{
            name: report(f"{RESULTS}/crops/figures/{name}.png", caption=f"../report/crops_{name}.rst", category="1 crops", subcategory="figures")
            for name in CROPS_FIGURES
        },
    log:
        f"{RESULTS}/logs/crops/aggregate.log",
    params:
        seeds=config["crops"]["baseline"]["seeds"],
        size=config["crops"]["window"]["size"],
        provenance=f"data: MNIST {data_label('mnist')} | config: {SCALE}",
    script:
        "../scripts/crops_aggregate.py"


rule crops_stacking:
    input:
        baseline=expand(f"{RESULTS}/crops/baseline/seed{{seed}}/predictions.npz", seed=config["crops"]["baseline"]["seeds"]),
        windows=[f"{d}/predictions.npz" for d in crops_window_dirs("window")],
        histories=[f"{d}/history.csv" for d in crops_window_dirs("window")],
    output:
        table=report(f"{RESULTS}/crops/stacking.csv", caption="../report/crops_stacking.rst", category="1 crops", subcategory="tables"),
        figure=report(f"{RESULTS}/crops/figures/stacking.png", caption="../report/crops_stacking.rst", category="1 crops", subcategory="figures"),
    log:
        f"{RESULTS}/logs/crops/stacking.log",
    params:
        k=config["crops"]["stacking"]["k"],
        seed=config["seed"],
        provenance=f"data: MNIST {data_label('mnist')} | config: {SCALE}",
    script:
        "../scripts/crops_stacking.py"
