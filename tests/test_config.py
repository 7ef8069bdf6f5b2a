"""anatomy.config.validate_config against config/schema.yaml: closed sections, named keys."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from anatomy.config import ConfigError, load_yaml, validate_config

from conftest import ROOT

SCHEMA = ROOT / "config" / "schema.yaml"
QUICK = load_yaml(ROOT / "config" / "config.yaml")
FULL = load_yaml(ROOT / "config" / "full.yaml")


def _config(**changes):
    """A deep copy of the quick config with dotted keys set (value ``...`` deletes the key)."""
    cfg = copy.deepcopy(QUICK)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = cfg
        for p in parents:
            node = node[p]
        if value is ...:
            del node[leaf]
        else:
            node[leaf] = value
    return cfg


def _error(cfg) -> str:
    with pytest.raises(ConfigError) as e:
        validate_config(cfg, SCHEMA)
    return str(e.value)


@pytest.mark.parametrize("name", ["config.yaml", "full.yaml"])
def test_shipped_configs_validate(name):
    cfg = load_yaml(ROOT / "config" / name)
    assert validate_config(cfg, SCHEMA) is cfg


def test_unknown_top_level_key():
    msg = _error(_config(colour="blue"))
    assert "'colour'" in msg and "not known" in msg


def test_unknown_nested_key_named_with_its_path():
    msg = _error(_config(crops__foo=1))
    assert "'crops.foo'" in msg
    # the message lists what is allowed there
    assert "window" in msg and "stopping" in msg


def test_unknown_deeply_nested_key():
    msg = _error(_config(crops__stopping__max_epoch=3))
    assert "'crops.stopping.max_epoch'" in msg


def test_every_problem_listed():
    msg = _error(_config(crops__foo=1, bar=2))
    assert "'crops.foo'" in msg and "'bar'" in msg


def test_negative_max_epochs():
    msg = _error(_config(crops__stopping__max_epochs=-1))
    assert "crops.stopping.max_epochs" in msg and "-1" in msg


def test_wrong_type_threads():
    msg = _error(_config(threads="two"))
    assert re.search(r"'threads'.*'two'.*integer", msg), msg


def test_missing_required_key():
    msg = _error(_config(seed=...))
    assert "seed" in msg


def test_window_larger_than_image():
    msg = _error(_config(crops__window__size=30))
    assert "crops.window.size" in msg and "30" in msg


def test_window_grid_runs_past_image():
    cfg = _config()
    cfg["crops"]["grids"]["window"]["rows"] = [0, 20]  # 20 + 9 > 28
    msg = _error(cfg)
    assert "crops.grids.window.rows" in msg and "19" in msg


@pytest.mark.parametrize("section", ["mnist", "cifar10"])
def test_npz_source_needs_path(section):
    cfg = _config()
    cfg["data"][section] = {**cfg["data"][section], "source": "npz", "path": None}
    msg = _error(cfg)
    assert f"data.{section}.path" in msg
    cfg["data"][section]["path"] = "/some/file.npz"
    validate_config(cfg, SCHEMA)


def test_kaggle_source_needs_path():
    cfg = _config()
    cfg["data"]["digits"] = {**cfg["data"]["digits"], "source": "kaggle", "path": None}
    assert "data.digits.path" in _error(cfg)


def test_empty_seeds_rejected():
    msg = _error(_config(crops__baseline__seeds=[]))
    assert "crops.baseline.seeds" in msg


def test_duplicate_seeds_rejected():
    assert "crops.baseline.seeds" in _error(_config(crops__baseline__seeds=[1, 1]))


def test_confirmation_seeds_must_be_fresh():
    """The grid (which chooses the windows) runs at `seed`; confirming on that seed again is not fresh."""
    msg = _error(_config(crops__baseline__seeds=[0, 1, 2]))
    assert "crops.baseline.seeds" in msg and "fresh" in msg


def test_confirm_section_is_validated():
    assert "crops.confirm.top" in _error(_config(crops__confirm__top=0))
    assert "crops.confirm.alpha" in _error(_config(crops__confirm__alpha=0.9))


def test_nested_command_line_values_are_coerced_by_the_schemas_types():
    """`--config 'crops={stopping: {max_epochs: 2}}'` arrives as strings; the schema's types decide."""
    cfg = _config()
    cfg["crops"]["stopping"] = {"max_epochs": "2", "patience": "15", "ratio": "0.995"}
    cfg["crops"]["grids"]["window"]["rows"] = ["0", "9"]
    cfg["crops"]["train_size"] = "null"
    cfg["data"]["digits"] = {**cfg["data"]["digits"], "source": "kaggle", "path": "/dir/2020"}
    out = validate_config(cfg, SCHEMA)
    assert out["crops"]["stopping"] == {"max_epochs": 2, "patience": 15, "ratio": 0.995}
    assert out["crops"]["grids"]["window"]["rows"] == [0, 9] and out["crops"]["train_size"] is None
    assert out["data"]["digits"]["path"] == "/dir/2020"  # a string where the schema allows one stays one
    cfg["crops"]["stopping"]["max_epochs"] = "two"
    assert "crops.stopping.max_epochs" in _error(cfg)
    cfg["crops"]["stopping"]["max_epochs"] = "2.0"  # a float is still not an integer
    assert "crops.stopping.max_epochs" in _error(cfg)


def test_unknown_source_rejected():
    cfg = _config()
    cfg["data"]["mnist"]["source"] = "ftp"
    assert "data.mnist.source" in _error(cfg)


@pytest.mark.parametrize("fraction", [0, 1, 1.5])
def test_train_fraction_bounds(fraction):
    cfg = _config()
    cfg["data"]["digits"]["train_fraction"] = fraction
    assert "data.digits.train_fraction" in _error(cfg)


TOP_KEYS = set(load_yaml(SCHEMA)["properties"])
CROPS_KEYS = set(load_yaml(SCHEMA)["properties"]["crops"]["properties"])


@settings(max_examples=25, deadline=None)  # each example validates a whole config (~0.1 s)
@given(key=st.text(min_size=1, max_size=20), under_crops=st.booleans(), value=st.one_of(st.integers(), st.text()))
def test_property_unknown_key_always_named(key, under_crops, value):
    assume(key not in (CROPS_KEYS if under_crops else TOP_KEYS))
    cfg = copy.deepcopy(QUICK)
    (cfg["crops"] if under_crops else cfg)[key] = value
    with pytest.raises(ConfigError) as e:
        validate_config(cfg, SCHEMA)
    msg = str(e.value)
    assert key in msg
    if under_crops:
        assert f"'crops.{key}'" in msg
    else:
        assert f"'{key}'" in msg


def test_unknown_int_and_str_keys_together():
    cfg = _config(colour="blue")
    cfg[1] = "x"  # what `1: x` in a YAML file loads as
    msg = _error(cfg)
    assert "'colour'" in msg and "'1'" in msg


# --------------------------------------------------------------------- more cases, each error naming its key


@pytest.mark.parametrize("dotted", ["crops__grids__window__rows", "crops__grids__as_published__cols",
                                    "crops__baseline__seeds", "cifar__lr_grid", "iic__alphas",
                                    "iic__transform_sets", "iic__seeds", "digits__ladder__seeds"])
def test_empty_grid_names_the_key(dotted):
    msg = _error(_config(**{dotted: []}))
    assert f"'{dotted.replace('__', '.')}'" in msg and "non-empty" in msg, msg


@pytest.mark.parametrize("folds", [1, 0, -3])
def test_fold_count_below_two_names_the_key(folds):
    msg = _error(_config(digits__step2__folds=folds))
    assert "'digits.step2.folds'" in msg and str(folds) in msg, msg


@pytest.mark.parametrize("dotted, value", [("digits__step2__folds", 2.0), ("data__cifar10__shards", 2.0),
                                           ("crops__window__size", 9.0), ("threads", 1.0),
                                           ("crops__stopping__max_epochs", True)])
def test_integer_keys_refuse_floats_and_booleans(dotted, value):
    # YAML `folds: 2.0` loads as a float; JSON Schema would call it an integer, but the
    # rules use it in range() and in '{:05d}' and would fail later with no key named.
    msg = _error(_config(**{dotted: value}))
    assert f"'{dotted.replace('__', '.')}'" in msg and "integer" in msg, msg


def _schema_leaves(node, schema, path=()):
    """(dotted key, schema node) of every scalar key of the quick config (``$ref`` resolved)."""
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    if node.get("type") == "object":
        for k, sub in node.get("properties", {}).items():
            yield from _schema_leaves(sub, schema, path + (k,))
    elif path:
        yield ".".join(path), node


SCHEMA_DICT = load_yaml(SCHEMA)
INT_KEYS = sorted(k for k, n in _schema_leaves(SCHEMA_DICT, SCHEMA_DICT)
                  if n.get("type") in ("integer", ["integer", "null"]))
BOUNDED_KEYS = sorted(k for k, n in _schema_leaves(SCHEMA_DICT, SCHEMA_DICT)
                      if "minimum" in n and n.get("type") in ("integer", "number"))


def _set(cfg, dotted, value):
    *parents, leaf = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[leaf] = value
    return cfg


def _reads_as_integer_or_null(text: str) -> bool:
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return v is None or (isinstance(v, int) and not isinstance(v, bool))


@settings(max_examples=30, deadline=None)
@given(key=st.sampled_from(INT_KEYS),
       value=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5), st.booleans(),
                       st.lists(st.integers(), max_size=2)))
def test_property_wrong_type_for_an_integer_key_is_named(key, value):
    # a string that reads as an integer (or null) is that value: Snakemake's --config passes nested values
    # as strings, and anatomy.config.coerce_strings reads them by the schema's type
    assume(not (isinstance(value, str) and value.strip() and _reads_as_integer_or_null(value)))
    msg = _error(_set(copy.deepcopy(QUICK), key, value))
    assert f"'{key}'" in msg, msg


@settings(max_examples=25, deadline=None)  # each example validates a whole config (~0.1 s)
@given(key=st.sampled_from(BOUNDED_KEYS), below=st.integers(1, 10**6))
def test_property_value_below_the_minimum_is_named(key, below):
    node = dict(_schema_leaves(SCHEMA_DICT, SCHEMA_DICT))[key]
    value = node["minimum"] - below
    msg = _error(_set(copy.deepcopy(QUICK), key, value))
    assert f"'{key}'" in msg and "minimum" in msg, msg


def test_threads_keep_their_maximum_and_tensorboard_is_a_switch():
    from anatomy.config import ConfigError, load_yaml, validate_config

    schema = ROOT / "config" / "schema.yaml"
    for key, value, words in (("threads", 300, "maximum of 256"), ("tensorboard", 3, "tensorboard")):
        c = load_yaml(ROOT / "config" / "config.yaml")
        c[key] = value
        with pytest.raises(ConfigError, match=words):
            validate_config(c, schema)
