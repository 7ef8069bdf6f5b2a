# Study 5 (digits): the Kaggle Digit Recognizer kernel (CNNMedium, affine augmentation,
# k-fold ensemble), its submissions, and the measurements of its flaws: own-fold
# validation, out-of-fold hardest examples, the ablation ladder, public-leaderboard noise.
# Only the training jobs import TensorFlow; they also write every prediction.

DIGITS = f"{RESULTS}/digits"
DIGITS_PROVENANCE = f"data: digits {data_label('digits')} | config: {SCALE}"


def digits_submissions():
    return ["simple", "ensemble"] + (
        ["tta"] if config["digits"]["tta"]["enabled"] else []
    )


def digits_ladder_seeds():
    return config["digits"]["ladder"]["seeds"]


def digits_runs():
    """Every digits training, per seed: run folder (under results/digits/, then seed<s>) -> kind (its
    config slice), part (the rows of folds.csv it trains on) and fold (None: the seed's shared start).
    """
    runs = {"step1": {"kind": "step1", "part": "step1", "fold": None}}
    for row in ("epochs", "lr_steps", "augment"):
        runs[f"ladder/{row}"] = {"kind": row, "part": "step1", "fold": None}
    for k in range(config["digits"]["step2"]["folds"]):
        runs[f"cv/fold{k}"] = {"kind": "fold", "part": f"fold{k}", "fold": k}
    return runs


DIGITS_RUNS = digits_runs()


def digits_train_params(kind):
    """The config slice one training uses: kind is step1, a ladder row, or fold."""
    d = config["digits"]
    steps = kind in ("lr_steps", "augment", "fold")
    augment = kind in ("augment", "fold")
    return {
        "batch_size": d["batch_size"],
        "learning_rate": d["learning_rate"],
        "epochs": d["step1"]["epochs"] if kind == "step1" else d["step2"]["epochs"],
        "lr_drops": d["step2"]["lr_drops"] if steps else [],
        "lr_factor": d["step2"]["lr_factor"] if steps else 1.0,
        "augmentation": d["augmentation"] if augment else None,
        "tta": d["tta"]["copies"] if kind == "fold" and d["tta"]["enabled"] else 0,
    }


def digits_fold_init(seed, fold):
    """Fold ``fold``'s own initial weights for ``seed`` (the single models share init/seed<seed>.weights.h5)."""
    return f"{DIGITS}/init/seed{seed}/fold{fold}.weights.h5"


def digits_fold_init_seed(seed, fold):
    """The seed of one fold model's initial weights: a stable function of (seed, fold)."""
    from anatomy.studies.digits import fold_init_seed

    return fold_init_seed(int(seed), int(fold))


def digits_fold_runs(seed, name="predictions.npz"):
    return [
        f"{DIGITS}/{run}/seed{seed}/{name}"
        for run, spec in DIGITS_RUNS.items()
        if spec["kind"] == "fold"
    ]


def digits_submission_files():
    """Every submission, and the proof that it passed the format check."""
    return {
        kind: expand(
            f"{DIGITS}/submissions/submission_{{name}}.{ext}", name=digits_submissions()
        )
        for kind, ext in (("submissions", "csv"), ("validated", "validated"))
    }


def digits_submission_input(wc):
    if wc.name == "simple":
        return [f"{DIGITS}/step1/seed{config['seed']}/predictions.npz"]
    return digits_fold_runs(config["seed"])


def digits_ladder_runs():
    """Every prediction file the ladder reads, named '<row>_seed<s>' (step1, epochs, lr_steps, augment)
    and 'fold<k>_seed<s>' (k as in the fold folders, from 0)."""
    return {
        f"{run.split('/')[-1]}_seed{s}": f"{DIGITS}/{run}/seed{s}/predictions.npz"
        for s in digits_ladder_seeds()
        for run in DIGITS_RUNS
    }


DIGITS_FIGURES = {
    "fold_curves": "training curves",
    "ensemble_vs_single": "leaderboard",
    "hardest": "hardest examples",
    "bootstrap": "public leaderboard noise",
    "ladder": "ablation ladder",
}


def digits_final_output():
    subs = [
        f"{DIGITS}/submissions/submission_{n}.{ext}"
        for n in digits_submissions()
        for ext in ("csv", "validated")
    ]
    tables = [
        f"{DIGITS}/{t}.csv" for t in ("leaderboard", "ladder", "bootstrap", "hardest")
    ]
    return subs + tables + [f"{DIGITS}/figures/{n}.png" for n in DIGITS_FIGURES]


def digits_report(path, name, subcategory):
    return in_report(path, f"digits_{name}", "5 digits", subcategory)


rule digits_arrays:
    input:
        train=f"{RESULTS}/data/digits/train.csv",
        test=f"{RESULTS}/data/digits/test.csv",
    output:
        f"{DIGITS}/arrays.npz",
    log:
        f"{RESULTS}/logs/digits/arrays.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=3000,
    script:
        "../scripts/digits/arrays.py"


rule digits_folds:
    input:
        arrays=f"{DIGITS}/arrays.npz",
    output:
        f"{DIGITS}/folds.csv",
    log:
        f"{RESULTS}/logs/digits/folds.log",
    conda:
        CONDA_ENV
    params:
        train_size=config["digits"]["train_size"],
        validation_fraction=config["digits"]["validation_fraction"],
        folds=config["digits"]["step2"]["folds"],
        seed=config["seed"],
    script:
        "../scripts/digits/folds.py"


# The single models of one seed (step 1 and the ladder's rungs 2-4) share one start, so the
# rungs compare like for like.
rule digits_initial_weights:
    output:
        f"{DIGITS}/init/seed{{seed}}.weights.h5",
    log:
        f"{RESULTS}/logs/digits/init_seed{{seed}}.log",
    conda:
        CONDA_ENV
    params:
        model="cnn_medium",
    script:
        "../scripts/shared/init_weights.py"


# Each fold model starts from its own weights, seeded by (seed, fold), as the kernel initialised
# every fold independently; one job per seed writes all k files (TensorFlow's start-up paid once).
rule digits_fold_initial_weights:
    output:
        [
            digits_fold_init("{seed}", k)
            for k in range(config["digits"]["step2"]["folds"])
        ],
    log:
        f"{RESULTS}/logs/digits/init_seed{{seed}}_folds.log",
    conda:
        CONDA_ENV
    params:
        model="cnn_medium",
        seeds=lambda wc: [
            digits_fold_init_seed(wc.seed, k)
            for k in range(config["digits"]["step2"]["folds"])
        ],
    script:
        "../scripts/digits/fold_init_weights.py"


def digits_train_init(wc):
    """A fold model starts from its own weights; step 1 and the ladder's rungs share one file per seed."""
    fold = DIGITS_RUNS[wc.run]["fold"]
    if fold is None:
        return f"{DIGITS}/init/seed{wc.seed}.weights.h5"
    return digits_fold_init(wc.seed, fold)


def digits_train_init_seed(wc):
    fold = DIGITS_RUNS[wc.run]["fold"]
    return int(wc.seed) if fold is None else digits_fold_init_seed(wc.seed, fold)


# One rule for every digits training: step 1 (step1), the ladder's rungs 2-4
# (ladder/epochs, ladder/lr_steps, ladder/augment) and the k-fold models (cv/fold<k>).
rule digits_train:
    input:
        arrays=f"{DIGITS}/arrays.npz",
        folds=f"{DIGITS}/folds.csv",
        test_labels=f"{RESULTS}/data/digits/test_labels.csv",
        init=digits_train_init,
    output:
        **run_outputs(f"{DIGITS}/{{run}}/seed{{seed}}"),
        predictions=f"{DIGITS}/{{run}}/seed{{seed}}/predictions.npz",
    log:
        f"{RESULTS}/logs/digits/{{run}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/digits/{{run}}/seed{{seed}}.tsv"
    wildcard_constraints:
        run="|".join(DIGITS_RUNS),
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **train_resources(mem_mb=3000, runtime=180),
    params:
        **TRAIN_PARAMS,
        train=lambda wc: digits_train_params(DIGITS_RUNS[wc.run]["kind"]),
        part=lambda wc: DIGITS_RUNS[wc.run]["part"],
        backup=lambda wc: f"{RESUME}/digits/{wc.run}/seed{wc.seed}",
        init_seed=digits_train_init_seed,
    script:
        "../scripts/digits/train.py"


rule digits_submission:
    input:
        digits_submission_input,
    output:
        digits_report(
            f"{DIGITS}/submissions/submission_{{name}}.csv",
            "submission",
            "submissions",
        ),
    log:
        f"{RESULTS}/logs/digits/submission_{{name}}.log",
    wildcard_constraints:
        name="simple|ensemble|tta",
    conda:
        CONDA_ENV
    params:
        key=lambda wc: "test_tta" if wc.name == "tta" else "test",
    script:
        "../scripts/digits/submission.py"


rule digits_validate_submission:
    input:
        submission=f"{DIGITS}/submissions/submission_{{name}}.csv",
        test=f"{RESULTS}/data/digits/test.csv",
    output:
        f"{DIGITS}/submissions/submission_{{name}}.validated",
    log:
        f"{RESULTS}/logs/digits/validate_{{name}}.log",
    wildcard_constraints:
        name="simple|ensemble|tta",
    conda:
        CONDA_ENV
    script:
        "../scripts/digits/validate.py"


rule digits_leaderboard:
    input:
        **digits_submission_files(),
        step1=f"{DIGITS}/step1/seed{config['seed']}/predictions.npz",
        folds_pred=digits_fold_runs(config["seed"]),
        folds=f"{DIGITS}/folds.csv",
        test_labels=f"{RESULTS}/data/digits/test_labels.csv",
    output:
        digits_report(f"{DIGITS}/leaderboard.csv", "leaderboard", "tables"),
    log:
        f"{RESULTS}/logs/digits/leaderboard.log",
    conda:
        CONDA_ENV
    params:
        names=digits_submissions(),
    script:
        "../scripts/digits/leaderboard.py"


rule digits_ladder_table:
    input:
        unpack(lambda wc: digits_ladder_runs()),
        test_labels=f"{RESULTS}/data/digits/test_labels.csv",
    output:
        digits_report(f"{DIGITS}/ladder.csv", "ladder", "tables"),
    log:
        f"{RESULTS}/logs/digits/ladder.log",
    conda:
        CONDA_ENV
    params:
        seeds=digits_ladder_seeds(),
        folds=config["digits"]["step2"]["folds"],
    script:
        "../scripts/digits/ladder.py"


rule digits_hardest:
    input:
        folds_pred=digits_fold_runs(config["seed"]),
    output:
        digits_report(f"{DIGITS}/hardest.csv", "hardest", "tables"),
    log:
        f"{RESULTS}/logs/digits/hardest.log",
    conda:
        CONDA_ENV
    params:
        top=config["digits"]["hardest"]["top"],
    script:
        "../scripts/digits/hardest.py"


rule digits_bootstrap:
    input:
        **digits_submission_files(),
        test_labels=f"{RESULTS}/data/digits/test_labels.csv",
    output:
        summary=digits_report(f"{DIGITS}/bootstrap.csv", "bootstrap", "tables"),
        scores=f"{DIGITS}/bootstrap_scores.csv",
    log:
        f"{RESULTS}/logs/digits/bootstrap.log",
    conda:
        CONDA_ENV
    params:
        names=digits_submissions(),
        bootstrap=config["digits"]["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/digits/bootstrap.py"


def digits_figure_input(wc):
    """What each figure of the digits study is drawn from (the rule below)."""
    seed = config["seed"]
    return {
        "fold_curves": {
            "histories": digits_fold_runs(seed, "history.csv"),
            "step1": f"{DIGITS}/step1/seed{seed}/history.csv",
        },
        "ensemble_vs_single": {"leaderboard": f"{DIGITS}/leaderboard.csv"},
        "hardest": {
            "hardest": f"{DIGITS}/hardest.csv",
            "arrays": f"{DIGITS}/arrays.npz",
        },
        "bootstrap": {
            "summary": f"{DIGITS}/bootstrap.csv",
            "scores": f"{DIGITS}/bootstrap_scores.csv",
        },
        "ladder": {"ladder": f"{DIGITS}/ladder.csv"},
    }[wc.figure]


rule digits_figure:
    input:
        unpack(digits_figure_input),
    output:
        digits_report(f"{DIGITS}/figures/{{figure}}.png", "figures", "figures"),
    log:
        f"{RESULTS}/logs/digits/figure_{{figure}}.log",
    wildcard_constraints:
        figure="|".join(DIGITS_FIGURES),
    conda:
        CONDA_ENV
    params:
        # only the hardest-examples figure reads it, so only that one reruns when it changes
        show=lambda wc: (
            config["digits"]["hardest"]["show"] if wc.figure == "hardest" else None
        ),
        provenance=DIGITS_PROVENANCE,
    script:
        "../scripts/digits/figure.py"


# Opt-in, never part of `rule all` or the tests: send a validated submission to
# Kaggle with the official client. Needs `pip install kaggle`, an API token in
# ~/.kaggle/kaggle.json (or KAGGLE_USERNAME / KAGGLE_KEY), the competition's
# rules accepted on kaggle.com, and data.digits.source: kaggle (predictions of
# the derived MNIST test set are not the competition's 28,000 images). Run:
#   snakemake --cores 1 results/digits/kaggle/submitted_ensemble.txt
rule digits_kaggle_submit:
    input:
        submission=f"{DIGITS}/submissions/submission_{{name}}.csv",
        validated=f"{DIGITS}/submissions/submission_{{name}}.validated",
    output:
        f"{DIGITS}/kaggle/submitted_{{name}}.txt",
    log:
        f"{RESULTS}/logs/digits/kaggle_submit_{{name}}.log",
    wildcard_constraints:
        name="simple|ensemble|tta",
    localrule: True
    conda:
        CONDA_ENV
    params:
        competition="digit-recognizer",
        source=config["data"]["digits"]["source"],
        message=lambda wc: f"dataset-anatomy {wc.name} ({SCALE} config)",
    shell:
        """
        if [ "{params.source}" != kaggle ]; then
            echo "refusing to submit: data.digits.source is '{params.source}', not 'kaggle' (the competition's test.csv)" >{log}
            exit 1
        fi
        kaggle competitions submit -c {params.competition} -f {input.submission} -m "{params.message}" >{output} 2>{log}
        """
