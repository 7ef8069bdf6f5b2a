"""Rule digits_submission: one model's (or the averaged fold models') test predictions -> a submission CSV."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.studies.digits import ensemble, read_predictions
    from anatomy.studies.kaggle import write_submission

    probs = ensemble([read_predictions(p)[snakemake.params.key] for p in snakemake.input])
    df = write_submission(snakemake.output[0], probs)
    print(f"{len(df)} rows from {len(snakemake.input)} model(s); label counts:", df["Label"].value_counts().sort_index().to_dict())
