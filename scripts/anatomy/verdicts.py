"""The statistics behind every verdict, and the rules that turn them into words.

Pure numpy/scipy (no TensorFlow): the aggregation and summary jobs use it.

Every verdict in the workflow is one of :data:`WORDS` and comes with
(a) an :class:`Estimate` - the statistic, its spread and n, and an interval -
and (b) the rule that turned it into the word, stated in plain text. The
rules are deliberately conservative: without an interval (n < 2) nothing is
called "reproduced" on a difference, and with one it is "reproduced" only when
the published value lies inside the interval widened by a stated tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

REPRODUCED = "reproduced"
SMALLER = "a gain exists but smaller"
LARGER = "a gain exists, larger than published"
NOT_AT_SCALE = "not at this scale"
CONTRADICTED = "contradicted"
SUGGESTIVE = "suggestive, not settled"
WORDS = (REPRODUCED, SMALLER, LARGER, NOT_AT_SCALE, CONTRADICTED, SUGGESTIVE)


@dataclass(frozen=True)
class Estimate:
    """A mean with its sample standard deviation, n and a two-sided interval (NaN where n < 2)."""

    name: str
    mean: float
    sd: float
    n: int
    lo: float
    hi: float
    level: float = 0.95
    method: str = "t"

    @property
    def has_interval(self) -> bool:
        return self.n >= 2 and math.isfinite(self.lo) and math.isfinite(self.hi)

    def text(self, digits: int = 4) -> str:
        """E.g. 'paired diff +0.0004 ± 0.0011, n = 3, 95% CI [-0.0023, +0.0031]'."""
        f = f"{{:+.{digits}f}}"
        s = f"{self.name} {f.format(self.mean)}"
        if self.n >= 2 and math.isfinite(self.sd):
            s += f" ± {self.sd:.{digits}f}"
        s += f", n = {self.n}"
        if self.has_interval:
            kind = "CI" if self.method == "t" else f"{self.method} interval"
            s += f", {self.level:.0%} {kind} [{f.format(self.lo)}, {f.format(self.hi)}]"
        else:
            s += ", no interval (n < 2)"
        return s


def t_interval(values, *, name: str = "mean", level: float = 0.95) -> Estimate:
    """Student-t interval for the mean of ``values`` (NaNs dropped)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return Estimate(name, float("nan"), float("nan"), 0, float("nan"), float("nan"), level)
    mean = float(v.mean())
    if n < 2:
        return Estimate(name, mean, float("nan"), n, float("nan"), float("nan"), level)
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n))
    return Estimate(name, mean, sd, n, mean - half, mean + half, level)


def t_from_summary(mean: float, sd: float, n: int, *, name: str = "mean", level: float = 0.95) -> Estimate:
    """:func:`t_interval` from a table's mean, sample sd and n (when the per-run values are not at hand)."""
    from scipy import stats

    n = int(n)
    if n < 2 or not math.isfinite(sd):
        return Estimate(name, float(mean), float("nan"), n, float("nan"), float("nan"), level)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n))
    return Estimate(name, float(mean), float(sd), n, mean - half, mean + half, level)


def percentile_interval(samples, *, name: str, point: float | None = None, level: float = 0.95) -> Estimate:
    """An interval from resampled statistics (bootstrap): ``point`` (or their mean) and their percentiles."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    a = (1 - level) / 2
    return Estimate(name, float(s.mean() if point is None else point), float(s.std(ddof=1)), int(s.size),
                    float(np.quantile(s, a)), float(np.quantile(s, 1 - a)), level, method="bootstrap")


def one_sided_paired_test(diffs, *, alpha: float = 0.05, comparisons: int = 1) -> dict:
    """H0: mean paired difference <= 0, H1: > 0; one-sided t test at ``alpha`` / ``comparisons`` (Bonferroni).

    Returns the estimate, the t statistic, the p value, the corrected level and
    whether H0 is rejected. With fewer than two differences nothing is rejected.
    """
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    level = alpha / max(1, comparisons)
    # the one-sided test at `level` is the lower bound of a two-sided (1 - 2 level) interval
    est = t_interval(d, name="paired diff", level=1 - 2 * level)
    if d.size < 2 or not est.sd > 0:
        t, p = float("nan"), float("nan")
        reject = bool(d.size >= 2 and est.sd == 0 and est.mean > 0)
    else:
        res = stats.ttest_1samp(d, 0.0, alternative="greater")
        t, p = float(res.statistic), float(res.pvalue)
        reject = p < level
    return {"estimate": est, "t": t, "p": p, "alpha": alpha, "comparisons": max(1, comparisons),
            "level": level, "reject": reject}


def against_published(est: Estimate, published: float, *, scale: str, tolerance: float = 0.0) -> tuple[str, str]:
    """Is the published value consistent with ours? -> (verdict, rule).

    With an interval: reproduced when ``published`` lies in [lo - tolerance,
    hi + tolerance]. Without one: reproduced when |mean - published| <=
    tolerance. Otherwise "not at this scale" below full scale and
    "contradicted" at full scale.
    """
    if not math.isfinite(est.mean):
        return NOT_AT_SCALE, "not measured"
    if est.has_interval:
        ok = est.lo - tolerance <= published <= est.hi + tolerance
        rule = (f"reproduced if {published:g} lies in our {est.level:.0%} interval"
                + (f" widened by {tolerance:g}" if tolerance else ""))
    else:
        ok = abs(est.mean - published) <= tolerance
        rule = f"reproduced if |ours - {published:g}| <= {tolerance:g} (one run: no interval)"
    if ok:
        return REPRODUCED, rule
    side = "above" if est.mean > published else "below"
    return (CONTRADICTED if scale == "full" else NOT_AT_SCALE), rule + "; otherwise " + (
        "contradicted at full scale" if scale == "full" else "not at this scale (below full scale)") + (
        f"; ours lies {side} it")


def gain_verdict(est: Estimate, published: float, *, scale: str, tolerance: float = 0.0) -> tuple[str, str]:
    """A published gain (> 0) against our estimate of it -> (verdict, rule).

    - reproduced: ``published`` inside our interval widened by ``tolerance``;
    - a gain exists but smaller / larger: the interval excludes 0 and lies below / above it;
    - no interval (n < 2): never "reproduced" unless within ``tolerance``; else not at this scale;
    - the interval includes 0: contradicted at full scale when it also excludes
      ``published``, otherwise not at this scale.
    """
    rule = (f"{est.level:.0%} interval vs published {published:+g}"
            + (f" (tolerance {tolerance:g})" if tolerance else "")
            + ": inside -> reproduced; above 0 but below -> smaller; includes 0 -> no gain shown")
    if not math.isfinite(est.mean):
        return NOT_AT_SCALE, "not measured"
    if not est.has_interval:
        if abs(est.mean - published) <= tolerance:
            return REPRODUCED, f"|ours - {published:+g}| <= {tolerance:g} (one run: no interval)"
        return NOT_AT_SCALE, "one run: no interval, so no gain can be claimed or denied"
    if est.lo - tolerance <= published <= est.hi + tolerance:
        return REPRODUCED, rule
    if est.lo > 0:
        return (SMALLER if est.hi < published else LARGER), rule
    return (CONTRADICTED if scale == "full" else NOT_AT_SCALE), rule


def prediction_multiple(n: int, level: float = 0.975) -> float:
    """k such that one more control exceeds the controls' mean by more than k x their sd with
    probability 1 - ``level`` (normal scores; the one-sided prediction bound t(level, n - 1) x sqrt(1 + 1/n))."""
    from scipy import stats

    if n < 2:
        return float("inf")
    return float(stats.t.ppf(level, n - 1) * math.sqrt(1 + 1 / n))


def margin_verdict(margin: float, spread: float, *, multiple: float, n: int, what: str,
                   level: float | None = 0.975) -> tuple[str, str]:
    """One run's margin over the mean of ``n`` controls, settled only when it exceeds k x ``spread``.

    ``spread`` is the controls' sample standard deviation (ddof 1). ``k`` is
    ``multiple``, raised where needed to the one-sided prediction bound
    :func:`prediction_multiple` at ``level`` (default 0.975: above the two-sided
    95% prediction interval of one more control), so that a run drawn from the
    controls' own distribution is called settled at most 1 - ``level`` of the
    time whatever ``n`` (a fixed 2 sd would be at n = 3 in 11%, at n = 2 in 18%).
    ``level=None`` uses ``multiple`` as it is. Needs n >= 2 controls and a
    positive spread. Returns (word, rule): REPRODUCED when settled,
    SUGGESTIVE when the margin is positive but not settled, NOT_AT_SCALE otherwise.
    """
    k = max(multiple, prediction_multiple(n, level)) if (level is not None and n >= 2) else multiple
    if level is not None:
        k_text = (f"k = max({multiple:g}, t({level:g}, n - 1) x sqrt(1 + 1/n))"
                  + (f" = {k:.2f}" if math.isfinite(k) else ""))
        why = f" (the run above the {2 * level - 1:.0%} prediction interval of one more control)"
    else:
        k_text, why = f"k = {multiple:g}", ""
    rule = (f"settled when the margin exceeds k x the sd of the {what}, {k_text}{why}; n = {n}, "
            "needs n >= 2 and a positive sd; a positive margin short of that is suggestive")
    if n >= 2 and math.isfinite(spread) and spread > 0 and math.isfinite(margin) and margin > k * spread:
        return REPRODUCED, rule
    return (SUGGESTIVE if margin > 0 else NOT_AT_SCALE), rule
