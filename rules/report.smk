# Cross-study results: results/summary.{csv,md} (our numbers beside the published ones).


rule summary:
    input:
        crops=f"{RESULTS}/crops/verdict.csv",
        cifar=f"{RESULTS}/cifar/summary.csv",
        iic=f"{RESULTS}/iic/summary.csv",
        iic_runs=f"{RESULTS}/iic/runs.csv",
        digits_leaderboard=f"{RESULTS}/digits/leaderboard.csv",
        digits_bootstrap=f"{RESULTS}/digits/bootstrap.csv",
        digits_ladder=f"{RESULTS}/digits/ladder.csv",
        coreset=(
            [f"{RESULTS}/coreset/verdict.csv"] if config["coreset"]["enabled"] else []
        ),
    output:
        csv=report(
            f"{RESULTS}/summary.csv",
            caption="../report/summary.rst",
            category="0 summary",
        ),
        md=f"{RESULTS}/summary.md",
    log:
        f"{RESULTS}/logs/summary.log",
    conda:
        CONDA_ENV
    params:
        scale=SCALE,
        data={name: data_label(name) for name in ("mnist", "cifar10", "digits")},
        cifar_base_lr=config["cifar"]["base_lr"],
    script:
        "../scripts/summary.py"
