"""Rule digits_validate_submission: refuse a submission Kaggle would refuse; write a marker when it passes."""
from anatomy.logs import log_step

with log_step(snakemake):
    from anatomy.io import atomic_path
    from anatomy.studies.kaggle import count_rows, validate_submission

    n = validate_submission(snakemake.input.submission, count_rows(snakemake.input.test))
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text(f"ok: {snakemake.input.submission}: header ImageId,Label; {n} rows = rows of test.csv; "
                       "ImageId 1..N in order; labels 0-9\n")
    print(f"{snakemake.input.submission}: valid ({n} rows)")
