"""The Kaggle side of the digits study: submission files, their validation, the local leaderboard and the
noise of a public-leaderboard score.

Kaggle scores a submission (``ImageId,Label``, one row per test image) on a
public quarter of its test set; :func:`validate_submission` refuses what Kaggle
would refuse, :func:`leaderboard` scores submissions and single models on the
local test labels, and :func:`bootstrap_public` scores them on seeded
quarter-size subsets to show how much a public score moves by which quarter it
is. Pure numpy/pandas (no TensorFlow); the models and their predictions are in
:mod:`anatomy.studies.digits`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from anatomy.io import atomic_path

PUBLIC_IMAGES = 7_000  # the public leaderboard: a quarter of the 28,000 test images


def public_se(p: float) -> float:
    """The binomial standard error of an accuracy ``p`` scored on the public leaderboard's images."""
    return float(np.sqrt(p * (1 - p) / PUBLIC_IMAGES))


def submission_frame(probs) -> pd.DataFrame:
    """Competition format: ImageId from 1, Label the argmax class."""
    labels = np.asarray(probs).argmax(1)
    return pd.DataFrame({"ImageId": np.arange(1, len(labels) + 1), "Label": labels.astype(np.int64)})


def write_submission(path, probs) -> pd.DataFrame:
    df = submission_frame(probs)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return df


class SubmissionError(ValueError):
    """A submission file Kaggle would refuse: the message names the file, the line and the column."""


def count_rows(csv_path) -> int:
    """Data rows of a CSV with a header (test.csv: one per test image)."""
    with open(csv_path, "rb") as f:
        return max(0, sum(1 for line in f if line.strip()) - 1)


def validate_submission(path, n_test: int) -> int:
    """Check a submission against the competition's format; return its row count.

    Header exactly ``ImageId,Label``; ``n_test`` rows (one per row of
    test.csv); ImageId 1..N in order; Label an integer 0-9. Any violation
    raises :class:`SubmissionError` naming the file, line (1 = header) and column.
    """
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: file not found")
    lines = path.read_text().splitlines()
    if not lines or lines[0].strip().lstrip("\ufeff") != "ImageId,Label":
        got = lines[0] if lines else "<empty file>"
        raise SubmissionError(f"{path}: line 1 (header) is {got!r}, expected 'ImageId,Label'")
    rows = lines[1:]
    while rows and not rows[-1].strip():  # a trailing newline is fine
        rows.pop()
    for n, line in enumerate(rows, start=2):
        fields = line.split(",")
        if not line.strip():
            raise SubmissionError(f"{path}: line {n} is blank (column 'ImageId' is empty)")
        if len(fields) != 2:
            raise SubmissionError(f"{path}: line {n} has {len(fields)} fields, expected 2 (ImageId,Label)")
        image_id, label = (s.strip() for s in fields)
        if not (image_id.isascii() and image_id.isdigit()) or int(image_id) != n - 1:
            raise SubmissionError(f"{path}: line {n}, column 'ImageId' is {image_id!r}, expected {n - 1} "
                                  "(ImageId must run 1..N in order)")
        if not (label.isascii() and label.isdigit() and len(label) == 1):
            raise SubmissionError(f"{path}: line {n}, column 'Label' is {label!r}, expected an integer 0-9")
    if len(rows) != n_test:
        raise SubmissionError(f"{path}: {len(rows)} rows, expected {n_test} (one per row of test.csv); "
                              f"line {len(rows) + 2 if len(rows) < n_test else n_test + 2}, column 'ImageId'"
                              f" {'missing' if len(rows) < n_test else 'is one too many'}")
    return len(rows)


def read_submission_labels(path) -> np.ndarray:
    return pd.read_csv(path)["Label"].to_numpy(np.int64)


def leaderboard(entries: list[dict], y_test) -> pd.DataFrame:
    """Score every submission and every single model on the local test labels.

    ``entries``: dicts with ``entry``, ``kind`` ('submission' or 'single
    model'), ``members`` and ``labels`` (predicted classes); any other key is
    copied. Unknown labels (the competition's files): accuracy empty and a note.
    """
    rows = []
    for e in entries:
        row = {k: v for k, v in e.items() if k != "labels"}
        pred = np.asarray(e["labels"])
        row["n_test"] = len(pred)
        if y_test is None:
            row.update(test_accuracy=np.nan, test_errors=np.nan,
                       note="unknown: the competition keeps its test labels (submit to Kaggle to score)")
        else:
            row.update(test_accuracy=float((pred == y_test).mean()), test_errors=int((pred != y_test).sum()), note="")
        rows.append(row)
    return pd.DataFrame(rows)


def public_subsets(n: int, *, subsets: int, fraction: float, seed: int) -> np.ndarray:
    """``subsets`` x m test indices, m = round(fraction x n), each row drawn without replacement
    (Kaggle's public leaderboard is one fixed, unknown quarter of the test set)."""
    m = int(round(fraction * n))
    if not 0 < m <= n:
        raise ValueError(f"digits.bootstrap.fraction={fraction} of {n} test images gives an empty subset")
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(n, m, replace=False) for _ in range(subsets)])


def bootstrap_public(preds: dict, y_test, *, subsets: int, fraction: float, seed: int):
    """Public-style scores of each submission on the same seeded quarter-size subsets.

    Returns ``(summary, scores)``: per submission (and per difference to the
    first one) the full-test accuracy, mean, sd and the 2.5 / 97.5 % points;
    and the per-subset scores (long table) for the figure.
    """
    names = list(preds)
    if y_test is None:
        summary = pd.DataFrame({"submission": names, "note": "unknown: the competition keeps its test labels"})
        return summary, pd.DataFrame(columns=["subset", "submission", "accuracy"])
    idx = public_subsets(len(y_test), subsets=subsets, fraction=fraction, seed=seed)
    correct = {k: (np.asarray(v) == y_test).astype(float) for k, v in preds.items()}
    per = {k: c[idx].mean(1) for k, c in correct.items()}
    rows = []

    def stats(name, full, s):
        return {"submission": name, "full_test_accuracy": full, "subsets": subsets, "subset_size": idx.shape[1],
                "public_mean": s.mean(), "public_sd": s.std(ddof=1), "public_q025": np.quantile(s, 0.025),
                "public_q975": np.quantile(s, 0.975), "note": ""}

    for k in names:
        rows.append(stats(k, correct[k].mean(), per[k]))
    for k in names[1:]:
        d = per[k] - per[names[0]]
        r = stats(f"{k} - {names[0]}", correct[k].mean() - correct[names[0]].mean(), d)
        r["note"] = f"difference on the same subsets; {(d <= 0).mean():.1%} of subsets do not rank {k} above {names[0]}"
        rows.append(r)
    scores = pd.DataFrame([{"subset": b, "submission": k, "accuracy": per[k][b]}
                           for k in names for b in range(subsets)])
    return pd.DataFrame(rows), scores
