"""Rule digits_leaderboard: every submission and every single model on the local test labels (no TensorFlow)."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.studies import digits as d
    from anatomy.studies import digits_results, kaggle

    inp = snakemake.input
    y = d.read_test_labels(inp.test_labels)
    folds = d.read_folds(inp.folds)
    n_folds = len(inp.folds_pred)
    entries = [{"entry": f"submission_{n}", "kind": "submission",
                "members": 1 if n == "simple" else n_folds, "labels": kaggle.read_submission_labels(p)}
               for n, p in zip(snakemake.params.names, inp.submissions)]
    step1 = d.read_predictions(inp.step1)
    entries.append({"entry": "step1 model", "kind": "single model", "members": 1, "labels": step1["test"].argmax(1)})
    for k, p in enumerate(inp.folds_pred):
        pred = d.read_predictions(p)
        entries.append({"entry": f"fold {k} model", "kind": "single model", "members": 1,
                        "labels": pred["test"].argmax(1), **digits_results.fold_validation(pred, folds, k)})
    table = kaggle.leaderboard(entries, y)
    table.to_csv(snakemake.output[0], index=False, float_format="%.5f")
    print(table.to_string())
