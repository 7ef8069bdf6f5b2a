"""results/summary.{csv,md}: every published claim, typed, beside our numbers and the verdict on it.

The claims live in their studies' modules (``anatomy.studies.<study>_results`` for each of
:data:`STUDIES`: ``claims()`` and ``claims_evidence``); every "ours" comes from the run's own
tables; every verdict word comes from :func:`anatomy.verdicts.judge`. ``summary.md`` opens
with one line per claim, then a details block per claim; ``summary.csv``
keeps every column.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

COLUMNS = ["study", "claim", "type", "published", "ours", "spread", "n", "verdict", "finding", "statistic", "rule",
           "why_this_type", "data", "config", "source", "figure"]


def judged_row(claim, evidence, *, comparisons: int = 1, data: str, scale: str) -> dict:
    """One summary row: ``claim`` judged on ``evidence`` at ``scale``."""
    from anatomy.verdicts import judge

    v = judge(claim, evidence, scale=scale, comparisons=comparisons)
    e = v.estimate
    return {"study": claim.study, "claim": claim.text, "type": claim.type, "published": claim.published_text,
            "ours": evidence.ours or (f"{e.mean:.4f}" if math.isfinite(e.mean) else "not measured"),
            # the spread column is our own seed-to-seed sd; a named external sd shows in the rule, not here
            "spread": round(e.sd, 4) if (claim.type != "reported" and e.n >= 2 and math.isfinite(e.sd)
                                         and math.isfinite(e.df)) else None,
            "n": e.n, "verdict": v.word,
            "finding": evidence.finding, "statistic": v.statistic or "not measured", "rule": v.rule,
            "why_this_type": claim.why, "data": data, "config": scale, "source": claim.source,
            "figure": f"results/{claim.study}/figures/{claim.figure}" if claim.figure else ""}


def judged_table(items, *, data: str, scale: str) -> pd.DataFrame:
    """:func:`judged_row` for each (claim, evidence, comparisons) of a study's ``claims_evidence``."""
    rows = [judged_row(c, e, comparisons=k, data=data, scale=scale) for c, e, k in items]
    return pd.DataFrame(rows, columns=COLUMNS)


# The studies; each one's claims (and the tables they read) are in anatomy.studies.<study>_results.
STUDIES = ("crops", "cifar", "iic", "coreset", "digits")


def claims_table() -> str:
    """Every study's claims as one markdown table (type, rule, why that type), for docs/studies.md."""
    import importlib

    from anatomy.verdicts import RULES

    lines = ["| study | claim | type | published | rule | why this type |", "|---|---|---|---|---|---|"]
    for study in STUDIES:
        for c in importlib.import_module(f"anatomy.studies.{study}_results").claims().values():
            rule = RULES[c.type] + (f"; margin {c.margin:g}" if c.margin else "")
            lines.append(f"| {study} | {_cell(c.text)} | {c.type} | {_cell(c.published_text)} | {_cell(rule)} | "
                         f"{_cell(c.why)} |")
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return str(v).replace("|", "/").replace("\n", " ")


def _ours(r) -> str:
    s = _cell(r.ours)
    if _cell(r.spread):
        s += f" ± {r.spread:.4f}"
    return s + (f" (n = {int(r.n)})" if _cell(r.n) else "")


def write_summary(table: pd.DataFrame, csv_path, md_path, *, title_note: str = "") -> pd.DataFrame:
    """``summary.csv`` (every column) and ``summary.md``: one line per claim, then a details block per claim."""
    from anatomy.io import atomic_path

    df = table[COLUMNS]
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    lines = ["# dataset-anatomy: the published claims and our verdicts", "",
             "One line per published claim; its details (statistic with interval, rule, data, config, source,",
             "figure) follow below. n counts trained models (seed pairs for paired differences); resamples are",
             "named as such. The verdict words and the rule behind each type: docs/studies.md, 'Claims and",
             "verdicts'.", ""]
    if title_note:
        lines += [title_note, ""]
    lines += ["| # | study | claim | type | published | ours ± spread (n) | verdict |", "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(df.itertuples(index=False), 1):
        lines.append(f"| {i} | {r.study} | {_cell(r.claim)} | {r.type} | {_cell(r.published)} | {_ours(r)} | "
                     f"**{r.verdict}** |")
    lines.append("")
    for i, r in enumerate(df.itertuples(index=False), 1):
        lines += [f"### {i}. {r.study}: {_cell(r.claim)}", "",
                  f"- **verdict:** {r.verdict}" + (f"; finding: {_cell(r.finding)}" if _cell(r.finding) else ""),
                  f"- **statistic:** {_cell(r.statistic)}",
                  f"- **rule ({r.type}):** {_cell(r.rule)}" + (f"; why this type: {_cell(r.why_this_type)}"
                                                              if _cell(r.why_this_type) else ""),
                  f"- **data:** {_cell(r.data)}; **config:** {_cell(r.config)}; **source:** {_cell(r.source)}"
                  + (f"; **figure:** {_cell(r.figure)}" if _cell(r.figure) else ""), ""]
    with atomic_path(md_path) as tmp:
        tmp.write_text("\n".join(lines))
    return df


if __name__ == "__main__":  # python -m anatomy.summary: the claims table of docs/studies.md
    print(claims_table(), end="")
