"""Published claims as typed records, and the one engine that turns our runs into a verdict on each.

Pure numpy/scipy (no TensorFlow): the aggregation and summary jobs use it.

A :class:`Claim` is what a paper or post says, typed by what kind of statement
it is; each study keeps its own claims (``CLAIMS`` in its module). Our side of
it is :class:`Evidence`: one number per trained model (or per seed pair, for a
paired difference), never per resample. :func:`judge` returns a
:class:`Verdict`: one word of :data:`WORDS`, the statistic with its interval,
and the rule that turned it into the word. The rules, by type:

- attainment ("reaches X"): ours >= X -> attained; below it but X inside the
  prediction interval -> consistent; else short of it.
- point ("about X"): X inside the prediction interval -> consistent; else
  ours higher / short of it.
- effect ("adds d"): our confidence interval against 0 (Bonferroni over the
  ``comparisons``) and the prediction interval against d -> reproduced /
  smaller / larger / effect shown / reversed; an interval that holds 0 ->
  no effect (only by an equivalence test within the claim's margin), no
  effect shown (it also excludes d), or not settled, with the minimum
  detectable effect at this n.
- equivalence ("about as well", margin m): two one-sided tests -> equivalent.
- non-inferiority ("no worse than", margin m): one-sided lower bound > -m.
- fits ("still fitted", threshold): every model at or above it -> fitted.
- reported: numbers without a verdict.

A published number is one run with its own noise: it is compared through a
prediction interval, half-width t(1 - a/2, df) x sqrt(sd^2 (1/n + 1/m) + se^2)
for n of our runs, m published runs and the published value's own test-set
standard error se. "Not at this scale" is said only when ours falls short and
the config's scale is below the claim's; "contradicted" only at the claim's
scale with n >= 2. With one run (and no external spread named in the claim)
nothing that needs a spread is decided: "not settled (one run)".
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

ATTAINED = "attained"
CONSISTENT = "consistent"
OURS_HIGHER = "ours higher"
OURS_LOWER = "ours lower"
REPRODUCED = "reproduced"
SMALLER = "smaller effect"
LARGER = "larger effect"
EFFECT_SHOWN = "effect shown"
REVERSED = "reversed"
NO_EFFECT = "no effect"
NO_EFFECT_SHOWN = "no effect shown"
EQUIVALENT = "equivalent"
NON_INFERIOR = "non-inferior"
FITTED = "fitted"
NOT_FITTED = "not fitted"
NOT_AT_SCALE = "not at this scale"
CONTRADICTED = "contradicted"
NOT_SETTLED = "not settled"
ONE_RUN = "not settled (one run)"
NOT_MEASURED = "not measured"
REPORTED = "reported"
WORDS = (ATTAINED, CONSISTENT, OURS_HIGHER, OURS_LOWER, REPRODUCED, SMALLER, LARGER, EFFECT_SHOWN, REVERSED,
         NO_EFFECT, NO_EFFECT_SHOWN, EQUIVALENT, NON_INFERIOR, FITTED, NOT_FITTED, NOT_AT_SCALE, CONTRADICTED,
         NOT_SETTLED, ONE_RUN, NOT_MEASURED, REPORTED)
# the words that say a published value or effect is consistent with ours
AGREES = (ATTAINED, CONSISTENT, REPRODUCED, EQUIVALENT, NON_INFERIOR, FITTED)
TYPES = ("attainment", "point", "effect", "equivalence", "noninferiority", "fits", "reported")
RULES = {
    "attainment": "ours >= published -> attained; else published inside our 95% prediction interval -> consistent; "
                  "else short of it",
    "point": "published inside our 95% prediction interval -> consistent; else ours higher / short of it",
    "effect": "95% CI (Bonferroni) above 0 -> effect shown, then published effect inside the prediction interval "
              "-> reproduced, else smaller / larger; CI holds 0 -> no effect (equivalence test within the margin), "
              "no effect shown (published effect excluded) or not settled (minimum detectable effect stated)",
    "equivalence": "90% CI inside (-margin, +margin) (two one-sided tests at 5%) -> equivalent",
    "noninferiority": "one-sided 95% lower bound above -margin -> non-inferior",
    "fits": "every trained model at or above the threshold -> fitted",
    "reported": "reported, not judged: the number depends on the setup",
}


@dataclass(frozen=True)
class Claim:
    """One published claim, typed. ``published`` is the value (attainment, point), the effect (effect),
    the threshold (fits) or None (no number published; equivalence / non-inferiority compare with 0)."""

    key: str
    study: str
    text: str
    type: str
    published: float | None
    source: str
    shown: str = ""                 # the published value as the summary shows it
    published_runs: int = 1         # how many runs stand behind the published value
    published_se: float = 0.0       # its own test-set standard error, where known
    margin: float | None = None     # equivalence / non-inferiority margin, or the effect's equivalence margin
    external_sd: float | None = None  # a run-to-run sd named for n = 1, with where it comes from
    external_sd_source: str = ""
    why: str = ""                   # why this type, in one line
    figure: str = ""                # the figure that shows it (under results/<study>/)

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"claim {self.key!r}: type {self.type!r} is not one of {TYPES}")
        if self.type in ("equivalence", "noninferiority") and not (self.margin and self.margin > 0):
            raise ValueError(f"claim {self.key!r}: a {self.type} claim needs a positive margin")
        if self.type in ("attainment", "point", "fits") and self.published is None:
            raise ValueError(f"claim {self.key!r}: a {self.type} claim needs a published value")

    @property
    def published_text(self) -> str:
        return self.shown or ("" if self.published is None else f"{self.published:g}")


@dataclass
class Evidence:
    """Our side of a claim: one value per trained model (or per seed pair: a paired difference).

    ``reference``: a second group (e.g. controls) for a difference of means,
    ``values`` minus ``reference``, with their pooled sd. ``spread``: runs
    whose seed-to-seed sd stands in where the groups have none of their own
    (two single runs), with its df. ``ours`` is how the summary shows our
    number; ``finding`` the study's own words for it.
    """

    values: list = field(default_factory=list)
    reference: list | None = None
    spread: list | None = None
    ours: str = ""
    finding: str = ""
    details: str = ""
    unit: str = "trained models"


@dataclass(frozen=True)
class Estimate:
    """A mean (or difference of means) with the sd of one unit, n, df and a two-sided interval."""

    name: str
    mean: float
    sd: float
    n: int
    lo: float
    hi: float
    level: float = 0.95
    df: float = float("nan")
    se: float = float("nan")

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    def text(self, digits: int = 4, *, unit: str = "", signed: bool = True) -> str:
        """E.g. 'paired diff +0.0004 ± 0.0011, n = 3 seed pairs, 95% CI [-0.0023, +0.0031]'."""
        f = f"{{:{'+' if signed else ''}.{digits}f}}"
        s = f"{self.name} {f.format(self.mean)}"
        if math.isfinite(self.sd):
            s += f" ± {self.sd:.{digits}f}"
        s += f", n = {self.n}" + (f" {unit}" if unit else "")
        if self.has_interval:
            s += f", {self.level:.0%} CI [{f.format(self.lo)}, {f.format(self.hi)}]"
        elif self.n == 1:
            s += ", one run: no interval"
        return s


@dataclass(frozen=True)
class Verdict:
    word: str
    estimate: Estimate
    statistic: str
    rule: str

    @property
    def n(self) -> int:
        return self.estimate.n


def _finite(values) -> np.ndarray:
    v = np.asarray([] if values is None else values, dtype=float).ravel()
    return v[np.isfinite(v)]


def estimate(values, reference=None, *, name: str = "mean", level: float = 0.95, external_sd: float | None = None,
             spread=None) -> Estimate:
    """The mean of ``values`` (minus the mean of ``reference``) with a t interval at ``level``.

    One group: sd over the values, df n - 1, se sd / sqrt(n). Two groups: the
    pooled sd, df n1 + n2 - 2, se sd sqrt(1/n1 + 1/n2). Where that leaves no
    df (one run) the sd of ``spread`` is used (df its n - 1), else an
    ``external_sd`` with a normal quantile. A zero sd
    (all values tied) gives no interval: ties show no spread to judge by.
    """

    v, r = _finite(values), (None if reference is None else _finite(reference))
    nan = float("nan")
    n = int(v.size + (0 if r is None else r.size))
    if v.size == 0 or (r is not None and r.size == 0):
        return Estimate(name, nan, nan, n, nan, nan, level)
    mean = float(v.mean() - (0.0 if r is None else r.mean()))
    if r is None:
        df, k = v.size - 1, 1 / v.size
        ss = float(((v - v.mean()) ** 2).sum())
    else:
        df, k = v.size + r.size - 2, 1 / v.size + 1 / r.size
        ss = float(((v - v.mean()) ** 2).sum() + ((r - r.mean()) ** 2).sum())
    w = _finite(spread)
    if df >= 1:
        sd = math.sqrt(ss / df)
    elif w.size >= 2:
        df, sd = w.size - 1, float(w.std(ddof=1))
    elif external_sd is not None:
        sd, df = float(external_sd), float("inf")
    else:
        return Estimate(name, mean, nan, n, nan, nan, level)
    if not sd > 0:
        return Estimate(name, mean, sd, n, nan, nan, level, df, 0.0)
    q = _quantile(float(df), 0.5 + level / 2)
    se = sd * math.sqrt(k)
    return Estimate(name, mean, sd, n, mean - q * se, mean + q * se, level, float(df), se)


def one_sided_paired_test(diffs, *, alpha: float = 0.05, comparisons: int = 1) -> dict:
    """H0: mean paired difference <= 0, H1: > 0; one-sided t test at ``alpha`` / ``comparisons`` (Bonferroni).

    Nothing is rejected with fewer than two differences, nor when they are all
    equal (sd 0: no spread to test against, whatever their sign).
    """
    from scipy import stats

    d = _finite(diffs)
    level = alpha / max(1, comparisons)
    est = estimate(d, name="paired diff", level=1 - 2 * level)
    if d.size < 2 or not est.sd > 0:
        t, p, reject = float("nan"), float("nan"), False
    else:
        res = stats.ttest_1samp(d, 0.0, alternative="greater")
        t, p = float(res.statistic), float(res.pvalue)
        reject = p < level
    return {"estimate": est, "t": t, "p": p, "alpha": alpha, "comparisons": max(1, comparisons),
            "level": level, "reject": reject}


def at_claim_scale(scale: str) -> bool:
    """Is a config labelled ``scale`` at the published scale? ('full', possibly with a precision note)."""
    return str(scale).split(",")[0].strip() == "full"


@functools.lru_cache(maxsize=4096)
def _quantile(df: float, p: float) -> float:
    """The t quantile (normal where df is infinite); cached: a study judges a few (df, p) pairs many times."""
    from scipy import stats

    return float(stats.norm.ppf(p) if not math.isfinite(df) else stats.t.ppf(p, df))


def _prediction_half(claim: Claim, e: Estimate, level: float, paired_unit: bool) -> float:
    """Half-width of the interval for (published - ours): our mean's noise, the published runs' own seed noise
    (sd / sqrt(m), or sd sqrt(2 / m) for a difference of two groups) and its test-set standard error."""
    unit_var = e.sd ** 2 * (1.0 if paired_unit else 2.0)
    var = e.se ** 2 + unit_var / max(1, claim.published_runs) + claim.published_se ** 2
    return _quantile(e.df, 0.5 + level / 2) * math.sqrt(var)


def judge(claim: Claim, evidence: Evidence, *, scale: str, comparisons: int = 1, alpha: float = 0.05) -> Verdict:
    """The verdict on ``claim`` from ``evidence`` at config ``scale`` (see the module docstring for the rules)."""
    full = at_claim_scale(scale)
    name = claim.key.replace("_", " ")
    if claim.type == "reported":
        e = estimate(evidence.values, evidence.reference, name=name)
        stat = "; ".join(x for x in (f"n = {e.n} {_unit(evidence.unit, e.n)}" if e.n else "", evidence.details)
                         if x)
        return Verdict(REPORTED, e, stat or "no number: stated", RULES["reported"])
    if claim.type == "fits":
        return _fits(claim, evidence, full)
    two_sided = claim.type in ("equivalence", "noninferiority")
    level = 1 - 2 * alpha if two_sided else 1 - alpha / max(1, comparisons)
    e = estimate(evidence.values, evidence.reference, name=name, level=level, external_sd=claim.external_sd,
                 spread=evidence.spread)
    rule = RULES[claim.type] + (f"; level {level:.1%} (Bonferroni over {comparisons})" if comparisons > 1 else "")
    stat = _statistic(e, evidence, signed=claim.type not in ("attainment", "point"))
    if claim.external_sd is not None and e.df == float("inf"):
        rule += f"; one run: external sd {claim.external_sd:g} ({claim.external_sd_source})"
        stat = stat.replace(f" ± {e.sd:.4f}", f" ± {e.sd:.4f} (the claim's external sd)", 1)
    if not math.isfinite(e.mean):
        return Verdict(NOT_MEASURED, e, stat or "not measured", rule)
    p = claim.published
    if claim.type == "attainment" and e.mean >= p:
        return Verdict(ATTAINED, e, stat, rule)
    if not e.has_interval:
        tied = e.n >= 2 and e.sd == 0
        return Verdict(NOT_SETTLED if tied else ONE_RUN, e,
                       stat + ("; all values tied: no spread to judge by" if tied else ""), rule)
    paired = evidence.reference is None
    if claim.type in ("attainment", "point"):
        half = _prediction_half(claim, e, 0.95, paired)
        stat += f"; 95% prediction interval for one published value [{e.mean - half:+.4f}, {e.mean + half:+.4f}]"
        if abs(p - e.mean) <= half:
            return Verdict(CONSISTENT, e, stat, rule)
        return Verdict(_off(e.mean > p, full, e.n), e, stat, rule)
    if claim.type == "effect":
        return _effect(claim, e, stat, rule, full, paired, alpha)
    m = claim.margin
    rule += f"; margin {m:g}"
    if claim.type == "equivalence":
        if -m < e.lo and e.hi < m:
            return Verdict(EQUIVALENT, e, stat, rule)
        if e.lo >= m or e.hi <= -m:
            return Verdict(_off(e.lo >= m, full, e.n), e, stat, rule)
        return Verdict(NOT_SETTLED, e, stat, rule)
    if e.lo > -m:  # non-inferiority
        return Verdict(NON_INFERIOR, e, stat, rule)
    if e.hi <= -m:
        return Verdict(_off(False, full, e.n), e, stat, rule)
    return Verdict(NOT_SETTLED, e, stat, rule)


def _off(higher: bool, full: bool, n: int) -> str:
    """Ours lies outside the published value's interval, on this side."""
    if full and n >= 2:
        return CONTRADICTED
    if higher:
        return OURS_HIGHER
    return OURS_LOWER if full else NOT_AT_SCALE


def _effect(claim: Claim, e: Estimate, stat: str, rule: str, full: bool, paired: bool, alpha: float) -> Verdict:
    p = claim.published
    sign = 1.0 if p is None or p >= 0 else -1.0
    lo, hi = sorted((sign * e.lo, sign * e.hi))
    if p is not None:
        half = _prediction_half(claim, e, 0.95, paired)
        stat += f"; 95% prediction interval for one published effect [{e.mean - half:+.4f}, {e.mean + half:+.4f}]"
    if lo > 0:
        if p is None:
            return Verdict(EFFECT_SHOWN, e, stat, rule)
        if abs(p - e.mean) <= half:
            return Verdict(REPRODUCED, e, stat, rule)
        return Verdict(SMALLER if sign * e.mean < sign * p else LARGER, e, stat, rule)
    if hi < 0:
        return Verdict(CONTRADICTED if (full and e.n >= 2) else REVERSED, e, stat, rule)
    if claim.margin:
        q = _quantile(e.df, 1 - alpha)
        if -claim.margin < e.mean - q * e.se and e.mean + q * e.se < claim.margin:
            return Verdict(NO_EFFECT, e, stat + f"; 90% CI inside ±{claim.margin:g}", rule)
    if p is not None and abs(p - e.mean) > half:
        return Verdict(NO_EFFECT_SHOWN, e, stat, rule)
    mde = (_quantile(e.df, 0.5 + e.level / 2) + _quantile(e.df, 0.8)) * e.se
    return Verdict(NOT_SETTLED, e, stat + f"; minimum detectable effect at this n (80% power): {mde:.4f}", rule)


def _fits(claim: Claim, evidence: Evidence, full: bool) -> Verdict:
    v = _finite(evidence.values)
    tau = claim.published
    e = estimate(v, name=claim.key.replace("_", " "))
    rule = RULES["fits"] + f" ({tau:g}); every model below it -> not fitted"
    stat = (f"{e.name}: " + ", ".join(f"{x:.4f}" for x in v) + f"; {int((v >= tau).sum())} of {v.size} "
            f"{_unit(evidence.unit, v.size)} at or above {tau:g}" + ("; one run" if v.size == 1 else "")
            + _dropped(evidence) if v.size else "")
    if v.size == 0:
        return Verdict(NOT_MEASURED, e, stat or "not measured", rule)
    if (v >= tau).all():
        return Verdict(FITTED, e, stat, rule)
    if (v < tau).all():
        return Verdict(NOT_FITTED if full else NOT_AT_SCALE, e, stat, rule)
    return Verdict(NOT_SETTLED, e, stat, rule)


def _dropped(evidence: Evidence) -> str:
    dropped = len(np.ravel(evidence.values)) - len(_finite(evidence.values))
    return f"; {dropped} NaN run(s) dropped" if dropped else ""


def _unit(unit: str, n: int) -> str:
    return unit.replace("models", "model").replace("pairs", "pair") if n == 1 else unit


def _statistic(e: Estimate, evidence: Evidence, *, signed: bool = True) -> str:
    if e.n == 0:
        return ""
    unit = _unit(evidence.unit, e.n)
    if evidence.reference is not None:
        unit = f"{unit}: {len(_finite(evidence.values))} vs {len(_finite(evidence.reference))}"
    s = e.text(unit=unit, signed=signed)
    return s + _dropped(evidence) + (f"; {evidence.details}" if evidence.details else "")
