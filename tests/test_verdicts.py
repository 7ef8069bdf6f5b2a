"""The verdict engine, proven by simulation: error rates under the null and under the published effect.

Each simulation draws 2,000 studies from a fixed seed; the rate it measures is in the assertion message.
Where a rule's rate is exactly its level by construction (a 95% prediction interval covers a published run
drawn from our distribution 95% of the time; a test at its margin rejects 5% of the time), the simulated rate
is allowed 3 Monte Carlo standard errors (MC) around it: 2,000 draws measure 0.95 only to +-0.005.
"""

import math

import numpy as np
import pytest

from anatomy import verdicts as v

STUDIES = 2000
MU, SD = 0.80, 0.01
MC = 3 * math.sqrt(0.05 * 0.95 / STUDIES)  # 0.0146


def claim(type_, published, **kw):
    return v.Claim(key="x", study="test", text="x", type=type_, published=published, source="simulation", **kw)


def rate(rng, make, words, *, scale="laptop", studies=STUDIES, comparisons=1):
    """The share of ``studies`` simulated studies whose verdict is in ``words``; ``make(rng)`` -> (claim, evidence)."""
    hits = 0
    for _ in range(studies):
        c, e = make(rng)
        hits += v.judge(c, e, scale=scale, comparisons=comparisons).word in words
    return hits / studies


# ---------------------------------------------------------------- a published value drawn from our own distribution

@pytest.mark.parametrize("type_", ["attainment", "point"])
@pytest.mark.parametrize("n", [3, 5, 10])
def test_a_published_run_from_our_own_distribution_is_judged_consistent(type_, n):
    rng = np.random.default_rng(n)

    def make(rng):
        return claim(type_, rng.normal(MU, SD)), v.Evidence(list(rng.normal(MU, SD, n)))

    for scale in ("laptop", "full"):
        r = rate(rng, make, v.AGREES, scale=scale)
        assert r >= 0.95 - MC, f"{type_}, n = {n}, {scale}: judged consistent in {r:.3f} of {STUDIES} (want 0.95)"


def test_the_old_rule_would_fail_that_test_and_worsen_with_n():
    """The published value inside the CI of our mean (the rule this engine replaces) misses often and more so
    with more seeds: the reason for prediction intervals."""
    rng = np.random.default_rng(1)
    misses = {}
    for n in (3, 10):
        out = 0
        for _ in range(STUDIES):
            e = v.estimate(rng.normal(MU, SD, n))
            out += not (e.lo <= rng.normal(MU, SD) <= e.hi)
        misses[n] = out / STUDIES
    assert misses[3] > 0.10 and misses[10] > misses[3] + 0.1, misses


@pytest.mark.parametrize("type_", ["attainment", "point"])
def test_a_published_value_three_sd_above_is_flagged_at_n_10(type_):
    rng = np.random.default_rng(2)

    def make(rng):
        return claim(type_, MU + 3 * SD), v.Evidence(list(rng.normal(MU, SD, 10)))

    r = rate(rng, make, {v.NOT_AT_SCALE})
    assert r >= 0.80, f"{type_}: flagged in {r:.3f} (want >= 0.80)"
    full = rate(rng, make, {v.CONTRADICTED}, scale="full")
    assert full >= 0.80, f"{type_} at full scale: contradicted in {full:.3f} (want >= 0.80)"


def test_a_point_claim_three_sd_below_ours_says_ours_higher_not_short_of_it():
    rng = np.random.default_rng(3)
    make = lambda rng: (claim("point", MU - 3 * SD), v.Evidence(list(rng.normal(MU, SD, 10))))  # noqa: E731
    r = rate(rng, make, {v.OURS_HIGHER})
    assert r >= 0.80, f"ours higher in {r:.3f}"
    assert rate(rng, make, {v.NOT_AT_SCALE}) == 0


@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_attainment_three_sd_above_the_published_value_is_attained_never_short(n):
    rng = np.random.default_rng(4)
    make = lambda rng: (claim("attainment", MU), v.Evidence(list(rng.normal(MU + 3 * SD, SD, n))))  # noqa: E731
    for scale in ("laptop", "full"):
        bad = rate(rng, make, {v.NOT_AT_SCALE, v.CONTRADICTED, v.OURS_LOWER}, scale=scale, studies=500)
        assert bad == 0, f"n = {n}, {scale}: short of it in {bad:.3f}"


# ---------------------------------------------------------------- effects

CROPS = dict(effect=0.0005, sd=0.00026, n=3, comparisons=4)
SAYS_NO_WINDOW_BEATS = {v.NO_EFFECT, v.NO_EFFECT_SHOWN, v.REVERSED, v.CONTRADICTED}


def test_crops_true_effect_equal_to_the_published_one_rarely_says_no_window_beats_the_full_image():
    c = CROPS
    rng = np.random.default_rng(5)
    make = lambda rng: (claim("effect", c["effect"]), v.Evidence(list(rng.normal(c["effect"], c["sd"], c["n"]))))  # noqa: E731
    for scale in ("laptop", "full"):
        r = rate(rng, make, SAYS_NO_WINDOW_BEATS, scale=scale, comparisons=c["comparisons"])
        assert r <= 0.05, f"{scale}: 'no window beats the full image' in {r:.3f} (want <= 0.05)"


@pytest.mark.parametrize("n", [3, 5, 10])
def test_an_effect_of_zero_is_rarely_called_an_effect(n):
    rng = np.random.default_rng(6)
    make = lambda rng: (claim("effect", 0.03), v.Evidence(list(rng.normal(0, SD, n))))  # noqa: E731
    r = rate(rng, make, {v.REPRODUCED, v.SMALLER, v.LARGER, v.EFFECT_SHOWN})
    assert r <= 0.05, f"n = {n}: an effect claimed in {r:.3f} under the null (want <= 0.05)"


@pytest.mark.parametrize("n", [3, 5, 10])
def test_an_effect_drawn_like_the_published_one_is_not_called_smaller_or_larger(n):
    rng = np.random.default_rng(7)
    true = 5 * SD

    def make(rng):
        return claim("effect", rng.normal(true, SD)), v.Evidence(list(rng.normal(true, SD, n)))

    r = rate(rng, make, {v.SMALLER, v.LARGER, v.NO_EFFECT_SHOWN, v.REVERSED})
    assert r <= 0.05 + MC, f"n = {n}: called different in {r:.3f} (want <= 0.05)"


def test_coreset_null_selection_as_good_as_random_rarely_says_size_not_selection():
    """Three seed pairs (selection minus its seed's random subset), all models from one distribution (the
    laptop's seed-to-seed sd 0.0028, so a paired difference has sd 0.0028 x sqrt 2)."""
    rng = np.random.default_rng(8)
    sd = 0.0028 * np.sqrt(2)
    make = lambda rng: (claim("effect", None), v.Evidence(list(rng.normal(0, sd, 3))))  # noqa: E731
    r = rate(rng, make, {v.NO_EFFECT, v.REVERSED, v.CONTRADICTED})
    assert r <= 0.05, f"'size, not selection' in {r:.3f} under the null (want <= 0.05)"
    shown = rate(rng, make, {v.EFFECT_SHOWN})
    assert shown <= 0.05, f"'selection beats random' in {shown:.3f} under the null (want <= 0.05)"
    # and a lead of 6 paired sd (0.024) is shown in most studies of three seed pairs
    lead = lambda rng: (claim("effect", None), v.Evidence(list(rng.normal(6 * sd, sd, 3))))  # noqa: E731
    power = rate(rng, lead, {v.EFFECT_SHOWN})
    assert power >= 0.80, f"a lead of 6 paired sd shown in {power:.3f} (want >= 0.80)"


def test_no_effect_needs_an_equivalence_test_and_holds_its_level_at_the_margin():
    rng = np.random.default_rng(9)
    margin = 0.01
    at_margin = lambda rng: (claim("effect", 0.03, margin=margin), v.Evidence(list(rng.normal(margin, SD / 2, 10))))  # noqa: E731
    r = rate(rng, at_margin, {v.NO_EFFECT})
    assert r <= 0.05 + MC, f"'no effect' in {r:.3f} when the true effect is the margin (want <= 0.05)"
    zero = lambda rng: (claim("effect", 0.03, margin=margin), v.Evidence(list(rng.normal(0, SD / 4, 10))))  # noqa: E731
    assert rate(rng, zero, {v.NO_EFFECT}) >= 0.8
    no_margin = lambda rng: (claim("effect", 0.03), v.Evidence(list(rng.normal(0, SD / 4, 10))))  # noqa: E731
    assert rate(rng, no_margin, {v.NO_EFFECT}) == 0  # without a declared margin it is never said


def test_not_settled_states_the_minimum_detectable_effect():
    out = v.judge(claim("effect", 0.0005), v.Evidence([0.0001, -0.0002, 0.0004]), scale="laptop", comparisons=4)
    assert out.word == v.NOT_SETTLED and "minimum detectable effect" in out.statistic
    assert out.estimate.lo < 0.0005 < out.estimate.hi and out.estimate.lo < 0


# ---------------------------------------------------------------- equivalence and non-inferiority

@pytest.mark.parametrize("n", [3, 5, 10])
def test_equivalence_and_non_inferiority_hold_their_level_at_the_margin(n):
    rng = np.random.default_rng(10 + n)
    m = 0.02
    for type_, true, word in (("equivalence", m, v.EQUIVALENT), ("equivalence", -m, v.EQUIVALENT),
                              ("noninferiority", -m, v.NON_INFERIOR)):
        make = lambda rng: (claim(type_, None, margin=m), v.Evidence(list(rng.normal(true, SD, n))))  # noqa: E731
        r = rate(rng, make, {word})
        assert r <= 0.05 + MC, f"{type_}, n = {n}, true difference {true:+g}: {word} in {r:.3f} (want <= 0.05)"


@pytest.mark.parametrize("n", [3, 5, 10])
def test_equivalence_and_non_inferiority_rarely_flag_a_true_zero(n):
    rng = np.random.default_rng(20 + n)
    for type_ in ("equivalence", "noninferiority"):
        make = lambda rng: (claim(type_, None, margin=0.02), v.Evidence(list(rng.normal(0, SD, n))))  # noqa: E731
        r = rate(rng, make, {v.NOT_AT_SCALE, v.CONTRADICTED, v.OURS_HIGHER, v.OURS_LOWER}, scale="full")
        assert r <= 0.05, f"{type_}, n = {n}: flagged in {r:.3f} with no true difference (want <= 0.05)"
    r = rate(rng, lambda rng: (claim("noninferiority", None, margin=0.02), v.Evidence(list(rng.normal(0, SD, 10)))),
             {v.NON_INFERIOR})
    if n == 10:
        assert r >= 0.8, f"non-inferior in {r:.3f} at n = 10 with no true difference"


# ---------------------------------------------------------------- fits

def test_fits_every_model_at_or_above_the_threshold():
    c = claim("fits", 0.9)
    assert v.judge(c, v.Evidence([0.99, 0.95, 0.9]), scale="laptop").word == v.FITTED  # on the bound: fitted
    assert v.judge(c, v.Evidence([0.218]), scale="laptop").word == v.NOT_AT_SCALE
    assert v.judge(c, v.Evidence([0.218, 0.3]), scale="full").word == v.NOT_FITTED
    assert v.judge(c, v.Evidence([0.95, 0.3]), scale="full").word == v.NOT_SETTLED
    assert v.judge(c, v.Evidence([]), scale="full").word == v.NOT_MEASURED


# ---------------------------------------------------------------- ties, boundaries, n = 0, 1, 2, NaN

def test_ties_are_handled_explicitly():
    t = v.one_sided_paired_test([1e-4, 1e-4])
    assert not t["reject"] and math.isnan(t["p"])  # sd 0: no spread to test against
    for type_, pub in (("effect", 0.0005), ("point", 0.9), ("equivalence", None), ("noninferiority", None)):
        out = v.judge(claim(type_, pub, margin=0.02), v.Evidence([1e-4, 1e-4, 1e-4]), scale="full")
        assert out.word == v.NOT_SETTLED and "tied" in out.statistic, (type_, out)
    # a tie above an attainment threshold attains it: no spread is needed for ours >= published
    assert v.judge(claim("attainment", 0.85), v.Evidence([0.9, 0.9]), scale="laptop").word == v.ATTAINED


@pytest.mark.parametrize("type_", ["attainment", "point", "effect", "equivalence", "noninferiority", "fits"])
def test_n_0_1_2_and_nan_runs(type_):
    pub = None if type_ in ("equivalence", "noninferiority") else 0.5
    c = claim(type_, pub, margin=0.02)
    assert v.judge(c, v.Evidence([]), scale="full").word == v.NOT_MEASURED
    assert v.judge(c, v.Evidence([float("nan")]), scale="full").word == v.NOT_MEASURED
    one = v.judge(c, v.Evidence([0.4]), scale="full")
    assert one.n == 1 and one.word in ({v.ONE_RUN, v.NOT_FITTED} if type_ != "fits" else {v.NOT_FITTED}), one
    assert one.word not in (v.REPRODUCED, v.CONTRADICTED, v.NOT_AT_SCALE)
    two = v.judge(c, v.Evidence([0.4, 0.41, float("nan")]), scale="full")
    assert two.n == 2 and "NaN run(s) dropped" in two.statistic and two.word in v.WORDS


def test_one_run_with_an_external_spread_named_in_the_claim_is_judged():
    c = claim("point", 0.964, external_sd=0.002, external_sd_source="seed spread elsewhere", published_se=0.0022)
    out = v.judge(c, v.Evidence([0.9873]), scale="laptop")
    assert out.word == v.OURS_HIGHER and "external sd 0.002" in out.rule
    assert v.judge(c, v.Evidence([0.966]), scale="laptop").word == v.CONSISTENT


def test_published_exactly_on_a_bound():
    e = v.Evidence([0.80, 0.81, 0.82])
    assert v.judge(claim("attainment", 0.81), e, scale="full").word == v.ATTAINED  # ours == published
    half = v._prediction_half(claim("point", 0.8), v.estimate([0.80, 0.81, 0.82]), 0.95, True)
    on_bound = v.judge(claim("point", 0.81 + half), e, scale="full")
    assert on_bound.word == v.CONSISTENT  # the interval is closed
    assert v.judge(claim("point", 0.81 + half + 1e-9), e, scale="full").word == v.CONTRADICTED


def test_scale_words():
    assert v.at_claim_scale("full") and v.at_claim_scale("full, mixed_float16")
    assert not v.at_claim_scale("laptop") and not v.at_claim_scale("quick") and not v.at_claim_scale("custom")


def test_claims_refuse_a_missing_margin_or_value_and_an_unknown_type():
    with pytest.raises(ValueError, match="margin"):
        claim("equivalence", None)
    with pytest.raises(ValueError, match="published value"):
        claim("point", None)
    with pytest.raises(ValueError, match="type"):
        claim("roughly", 1.0)
