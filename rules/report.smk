# Cross-study results: results/summary.{csv,md} (every published claim, typed, and our verdict on it).


rule summary:
    input:
        crops_baseline=f"{RESULTS}/crops/baseline.csv",
        crops_confirm=f"{RESULTS}/crops/confirm.csv",
        cifar=f"{RESULTS}/cifar/summary.csv",
        iic_runs=f"{RESULTS}/iic/runs.csv",
        digits_leaderboard=f"{RESULTS}/digits/leaderboard.csv",
        digits_bootstrap=f"{RESULTS}/digits/bootstrap.csv",
        digits_ladder=f"{RESULTS}/digits/ladder.csv",
        coreset=(
            [f"{RESULTS}/coreset/runs.csv"] if config["coreset"]["enabled"] else []
        ),
    output:
        csv=in_report(f"{RESULTS}/summary.csv", "summary", "0 summary"),
        md=f"{RESULTS}/summary.md",
    log:
        f"{RESULTS}/logs/summary.log",
    conda:
        CONDA_ENV
    params:
        scale=SCALE,
        data={
            "mnist": f"MNIST {data_label('mnist')}",
            "cifar10": f"CIFAR-10 {data_label('cifar10')}",
            "digits": f"digits {data_label('digits')}",
        },
        cifar_base_lr=config["cifar"]["base_lr"],
    script:
        "../scripts/shared/summary.py"
