"""Rule digits_ladder_table: the ablation ladder on the local leaderboard (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    import numpy as np

    from anatomy.studies import digits as d

    y = d.read_test_labels(snakemake.input.test_labels)
    seeds, k = snakemake.params.seeds, snakemake.params.folds
    runs = iter(snakemake.input.runs)  # per seed: step1, epochs, lr_steps, augment, then k folds
    test_acc, holdout_acc = {}, {}
    acc = lambda probs, labels: float((probs.argmax(1) == labels).mean())  # noqa: E731
    for s in seeds:
        for row in ("step1", "epochs", "lr_steps", "augment"):
            p = d.read_predictions(next(runs))
            held = ~p["seen"]
            holdout_acc[(row, s)] = acc(p["probs"][held], p["labels"][held])
            test_acc[(row, s)] = np.nan if y is None else acc(p["test"], y)
        preds = [d.read_predictions(next(runs)) for _ in range(k)]
        oof = d.out_of_fold(preds)
        holdout_acc[("ensemble", s)] = float((oof["oof_prediction"] == oof["label"]).mean())
        test_acc[("ensemble", s)] = np.nan if y is None else acc(d.ensemble([p["test"] for p in preds]), y)
    table = d.ladder(test_acc, holdout_acc, seeds)
    table.to_csv(snakemake.output[0], index=False, float_format="%.5f")
    print(table.to_string())
