# Study 3 (iic): Invariant Information Clustering on MNIST, without labels.


def iic_train_params():
    """The config slice one IIC training uses."""
    c = config["iic"]
    return {
        k: c[k]
        for k in (
            "train_size",
            "batch_size",
            "epochs",
            "learning_rate",
            "widths",
            "head",
            "clusters",
            "overclusters",
            "transforms",
            "pair",
            "alpha_warmup_epochs",
        )
    }


def iic_alpha_over(alpha):
    over = config["iic"]["alpha_over"]
    return alpha if over is None else over


def iic_run_dirs():
    c = config["iic"]
    return [
        f"{RESULTS}/iic/{t}/a{a:g}_o{iic_alpha_over(a):g}/seed{s}"
        for t in c["transform_sets"]
        for a in c["alphas"]
        for s in c["seeds"]
    ]


rule iic_train:
    input:
        mnist=f"{RESULTS}/data/mnist.h5",
    output:
        **run_outputs(f"{RESULTS}/iic/{{tset}}/a{{alpha}}_o{{alpha_over}}/seed{{seed}}"),
        predictions=f"{RESULTS}/iic/{{tset}}/a{{alpha}}_o{{alpha_over}}/seed{{seed}}/predictions.npz",
    log:
        f"{RESULTS}/logs/iic/{{tset}}_a{{alpha}}_o{{alpha_over}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/iic/{{tset}}_a{{alpha}}_o{{alpha_over}}_seed{{seed}}.tsv"
    wildcard_constraints:
        tset="all|rotate|distort|binarize|noise",
        alpha=r"[0-9.e+-]+",
        alpha_over=r"[0-9.e+-]+",
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **train_resources(mem_mb=4000, runtime=240),
    params:
        **TRAIN_PARAMS,
        train=iic_train_params(),
        backup=lambda wc: f"{RESUME}/iic/{wc.tset}/a{wc.alpha}_o{wc.alpha_over}/seed{wc.seed}",
    script:
        "../scripts/iic/train.py"


IIC_FIGURES = {
    "transforms": "an image and its twins under each transform set",
    "curves_by_set": "curves per transform set",
    "curves_by_alpha": "curves per alpha",
    "confusion": "true label vs cluster, 10-way head",
    "confusion_over": "true label vs cluster, 50-way head",
    "overcluster_examples": "purest and most mixed overclusters",
}


rule iic_aggregate:
    input:
        mnist=f"{RESULTS}/data/mnist.h5",
        histories=[f"{d}/history.csv" for d in iic_run_dirs()],
        predictions=[f"{d}/predictions.npz" for d in iic_run_dirs()],
        metrics=[f"{d}/metrics.json" for d in iic_run_dirs()],
    output:
        **{
            name: in_report(
                f"{RESULTS}/iic/figures/{name}.png", f"iic_{name}", "3 iic", "figures"
            )
            for name in IIC_FIGURES
        },
        runs=in_report(f"{RESULTS}/iic/runs.csv", "iic_runs", "3 iic", "tables"),
        summary=in_report(
            f"{RESULTS}/iic/summary.csv", "iic_summary", "3 iic", "tables"
        ),
        gif=in_report(
            f"{RESULTS}/iic/figures/p_over_epochs.gif",
            "iic_p_over_epochs",
            "3 iic",
            "figures",
        ),
    log:
        f"{RESULTS}/logs/iic/aggregate.log",
    conda:
        CONDA_ENV
    params:
        clusters=config["iic"]["clusters"],
        overclusters=config["iic"]["overclusters"],
        provenance=f"data: MNIST {data_label('mnist')} (labels only to score) | config: {SCALE}",
    script:
        "../scripts/iic/aggregate.py"
