"""Rule digits_csv: Kaggle Digit Recognizer CSVs (derived from MNIST | the competition's files)."""
from pathlib import Path

from anatomy.data.digits import build_digits
from anatomy.logs import log_step

with log_step(snakemake):
    p = snakemake.params.digits
    counts = build_digits(Path(snakemake.output.train).parent, source=p["source"], seed=snakemake.params.seed,
                          train_fraction=p["train_fraction"], mnist_h5=snakemake.input.get("mnist"),
                          path=p["path"])
    print(f"digits CSVs written ({p['source']}): {counts}")
