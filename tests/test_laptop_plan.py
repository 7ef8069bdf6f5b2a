"""The laptop config's plan, read from Snakemake's own dry run: n >= 3 seeds for every compared setting,
paired by seed, and true windows over the whole image for both crops masks."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import yaml

from anatomy.studies.crops import window_mask
from anatomy.plan import dry_run_jobs
from anatomy.studies.crops_results import parse_run_name
from conftest import ROOT, Workflow

MIN_SEEDS = 3
MIN_WINDOWS = 49


def seeds_by_setting(jobs, rule: str, seed_key: str = "seed") -> dict:
    """Setting (the job's other wildcards) -> the seeds it is trained on (None: a rule without seeds)."""
    out = defaultdict(set)
    for r, wc in jobs:
        if r == rule:
            out[tuple(sorted((k, v) for k, v in wc.items() if k != seed_key))].add(wc.get(seed_key))
    return dict(out)


@pytest.fixture(scope="module")
def laptop(tmp_path_factory):
    config = yaml.safe_load((ROOT / "config" / "laptop.yaml").read_text())
    p = Workflow(tmp_path_factory.mktemp("laptop"), config).run("-n")
    return config, [(j["rule"], j["wildcards"]) for j in dry_run_jobs(p.stdout + p.stderr)]


@pytest.mark.parametrize("rule", ["cifar_train", "iic_train", "digits_train"])
def test_every_compared_setting_has_three_seeds_paired_by_seed(laptop, rule):
    config, jobs = laptop
    settings = seeds_by_setting(jobs, rule)
    assert settings, rule
    for setting, seeds in settings.items():
        assert len(seeds) >= MIN_SEEDS, (rule, setting, seeds)
    assert len({frozenset(s) for s in settings.values()}) == 1, settings  # the same seeds everywhere: pairs


def test_the_runs_of_a_seed_start_from_that_seeds_initial_weights(laptop):
    config, jobs = laptop
    inits = {int(wc["seed"]) for r, wc in jobs if r == "cifar_initial_weights"}
    assert inits == set(config["cifar"]["seeds"]) and len(inits) >= MIN_SEEDS
    assert {r for r, _ in jobs if r.startswith("cifar_") and r.endswith("_variant")}  # variants: shared data


def test_the_cifar_table_covers_every_compared_setting(laptop):
    config, jobs = laptop
    runs = set(seeds_by_setting(jobs, "cifar_train"))
    names = {dict(r)["run"] for r in runs}
    for lr in {*config["cifar"]["lr_grid"], config["cifar"]["base_lr"]}:
        assert {f"bn_lr{lr:g}", f"nobn_lr{lr:g}"} <= names
    assert {"noisybn_lr0.05", "aug_lr0.05", "labels_p0.1", "labels_p1", "pixels_gaussian_per_image",
            "pixels_fixed_permutation"} <= names


def test_iic_compares_alpha_1_and_10_and_the_ladder_every_rung(laptop):
    _, jobs = laptop
    alphas = {dict(s)["alpha"] for s in seeds_by_setting(jobs, "iic_train")}
    assert {"1", "10"} <= alphas
    runs = {dict(s)["run"] for s in seeds_by_setting(jobs, "digits_train")}
    assert {"step1", "ladder/epochs", "ladder/lr_steps", "ladder/augment", "cv/fold0"} <= runs


def test_crops_and_coreset_comparisons_have_three_seeds(laptop):
    config, jobs = laptop
    baseline = {wc["run"] for r, wc in jobs if r == "crops_train" and wc["run"].startswith("baseline/seed")}
    assert len(baseline) >= MIN_SEEDS  # the confirmation retrains the top windows on these seeds
    coreset = {}  # run folder without its seed -> seeds: every selection and control on the same seeds
    for r, wc in jobs:
        if r == "coreset_train":
            run, seed = wc["run"].rsplit("/seed", 1)
            coreset.setdefault(run, set()).add(seed)
    assert set(coreset) == {"select/in_order", "select/shuffled", "control/full", "control/full_matched_steps",
                            "control/random", "control/random_matched_steps"}
    assert len({frozenset(s) for s in coreset.values()}) == 1 and len(coreset["select/in_order"]) >= MIN_SEEDS
    inits = {int(wc["seed"]) for r, wc in jobs if r == "coreset_initial_weights"}
    assert inits == set(config["coreset"]["seeds"])  # a seed's runs start from its own initial weights


def crops_windows(jobs, mask: str) -> set:
    """(i, j, size) of every window trained under ``mask`` (run folders <mask>/s<size>_i<i>_j<j>)."""
    prefix = f"{mask}/"
    names = [wc["run"].removeprefix(prefix) for r, wc in jobs if r == "crops_train" and wc["run"].startswith(prefix)]
    return {(w["i"], w["j"], w["size"]) for w in map(parse_run_name, names)}


@pytest.mark.parametrize("mask", ["window", "as_published"])
def test_each_crops_mask_has_49_windows_that_cover_the_whole_image(laptop, mask):
    config, jobs = laptop
    windows = crops_windows(jobs, mask)
    assert len(windows) >= MIN_WINDOWS, len(windows)
    covered = np.zeros((28, 28), bool)
    for i, j, size in windows:
        covered |= window_mask(i, j, size)
    assert covered.all(), np.argwhere(~covered)
    other = "as_published" if mask == "window" else "window"
    assert {(i, j) for i, j, _ in windows} == {(i, j) for i, j, _ in crops_windows(jobs, other)}  # same positions
