"""Config validation at load time: the JSON schema plus checks a schema cannot say.

Every message names the key (``crops.window.size``), the offending value and
what is allowed, before any job runs (scikit-learn's style of error).
"""

from __future__ import annotations

import copy

from pathlib import Path

import yaml


class ConfigError(ValueError):
    pass


def deep_merge(base: dict, new: dict) -> dict:
    """``new`` over ``base``, dicts merged key by key (as ``snakemake --configfile`` merges configs)."""
    out = copy.deepcopy(base)
    for k, v in new.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def load_yaml(path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f) or {}


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _is_int(checker, instance) -> bool:
    # JSON Schema counts 2.0 as an integer; the rules use these values in range()
    # and '{:05d}', so a YAML float such as `folds: 2.0` must be refused here.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _validator_class():
    import jsonschema

    base = jsonschema.Draft202012Validator
    return jsonschema.validators.extend(base, type_checker=base.TYPE_CHECKER.redefine("integer", _is_int))


def schema_errors(config: dict, schema: dict) -> list[str]:
    validator = _validator_class()(schema)
    out = []
    for e in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        where = _key(e.absolute_path)
        if e.validator == "additionalProperties":
            allowed = sorted(e.schema.get("properties", {}))
            extra = sorted(set(map(str, e.instance)) - set(allowed))
            for k in extra:
                key = f"{where}.{k}" if e.absolute_path else k
                out.append(f"config key '{key}' is not known (allowed under {where}: {', '.join(allowed)})")
        elif e.validator == "required":
            out.append(f"config key '{where}': {e.message}")
        else:
            out.append(f"config key '{where}': {e.message}")
    return out


_SCALARS = {"integer": int, "number": (int, float), "boolean": bool, "null": type(None)}


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref", "")
    if ref.startswith("#/"):
        node = root
        for part in ref[2:].split("/"):
            node = node[part]
        return {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def coerce_strings(value, schema: dict, root: dict | None = None):
    """Turn strings into the numbers, booleans or nulls the schema asks for, recursively.

    Snakemake's ``--config 'crops={stopping: {max_epochs: 2}}'`` hands nested values over as
    strings ('2'); each is parsed as YAML and kept only when the result has a type the schema
    allows, so a real string stays a string and validation still names a wrong value.
    """
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return {k: coerce_strings(v, props[k], root) if k in props else v for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items")
        return [coerce_strings(v, items, root) for v in value] if isinstance(items, dict) else value
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    # An empty string is not a value (YAML would read it as null): it stays a string, and is refused.
    if isinstance(value, str) and value.strip() and "string" not in types and set(types) & set(_SCALARS):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if any(isinstance(parsed, _SCALARS[t]) and not (t != "boolean" and isinstance(parsed, bool))
               for t in types if t in _SCALARS):
            return parsed
    return value


def semantic_errors(config: dict) -> list[str]:
    """Checks across keys that the schema cannot express."""
    out = []
    crops = config.get("crops", {})
    size = crops.get("window", {}).get("size")
    side = 28  # MNIST
    if isinstance(size, int):
        if size > side:
            out.append(f"config key 'crops.window.size': {size} is larger than the {side}x{side} MNIST image")
        for mask, grid in crops.get("grids", {}).items():
            for axis in ("rows", "cols"):
                for v in grid.get(axis, []):
                    if isinstance(v, int) and v + min(size, side) > side:
                        out.append(
                            f"config key 'crops.grids.{mask}.{axis}': a {size}x{size} window at {v} "
                            f"runs past the {side}-pixel image (largest start is {side - size})"
                        )
    seeds = crops.get("baseline", {}).get("seeds")
    if isinstance(seeds, list) and config.get("seed") in seeds:
        out.append(f"config key 'crops.baseline.seeds': {seeds} includes the grid's seed (`seed`: {config['seed']}); "
                   "the windows chosen on runs at that seed are confirmed on these seeds, which must be fresh")
    tr = config.get("iic", {}).get("transforms", {})
    if isinstance(tr.get("scale_min"), (int, float)) and isinstance(tr.get("scale_max"), (int, float)) \
            and tr["scale_min"] > tr["scale_max"]:
        out.append(f"config key 'iic.transforms.scale_min': {tr['scale_min']} is larger than "
                   f"iic.transforms.scale_max ({tr['scale_max']})")
    for name, section in (("data.mnist", config.get("data", {}).get("mnist", {})),
                          ("data.cifar10", config.get("data", {}).get("cifar10", {}))):
        if section.get("source") == "npz" and not section.get("path"):
            out.append(f"config key '{name}.path': required when {name}.source is 'npz'")
    digits = config.get("data", {}).get("digits", {})
    if digits.get("source") == "kaggle" and not digits.get("path"):
        out.append("config key 'data.digits.path': required when data.digits.source is 'kaggle' "
                   "(a folder holding the competition's train.csv and test.csv)")
    out += [f"config key 'anatomy.{name}': no dataset '{name}' under datasets (named: "
            f"{', '.join(config.get('datasets') or {}) or 'none'})"
            for name in config.get("anatomy") or {} if name not in (config.get("datasets") or {})]
    out += [f"config key 'anatomy.{name}.subset': ranks the training images by the examples part's data map; "
            f"add anatomy.{name}.examples (e.g. {{}})"
            for name, entry in (config.get("anatomy") or {}).items()
            if isinstance(entry, dict) and "subset" in entry and "examples" not in entry]
    return out + dataset_errors(config.get("datasets") or {})


# The keys each source of a named dataset needs, and those it also takes.
DATASET_KEYS = {
    "npz": (["path"], ["classes"]),
    "folder": (["path"], ["resize", "classes"]),
    "csv": (["train", "test", "shape"], ["classes"]),
}


def dataset_errors(datasets: dict) -> list[str]:
    """Which keys go with which ``datasets.<name>.source``, and the channel count of a csv shape."""
    out = []
    for name, spec in datasets.items():
        if not isinstance(spec, dict) or spec.get("source") not in DATASET_KEYS:
            continue
        key, source = f"datasets.{name}", spec["source"]
        needed, optional = DATASET_KEYS[source]
        out += [f"config key '{key}.{k}': required when {key}.source is '{source}'" for k in needed if k not in spec]
        out += [f"config key '{key}.{k}': not used with source '{source}' (it takes {', '.join(needed + optional)})"
                for k in spec if k not in ["source", *needed, *optional]]
        shape = spec.get("shape")
        if source == "csv" and isinstance(shape, list) and len(shape) == 3 and shape[2] not in (1, 3):
            out.append(f"config key '{key}.shape': {shape} has {shape[2]} channels; use 1 (grey) or 3 (RGB)")
    return out


def validate_config(config: dict, schema_path) -> dict:
    """Raise :class:`ConfigError` listing every problem, or return ``config``."""
    schema = load_yaml(schema_path)
    config.update(coerce_strings(config, schema))
    problems = schema_errors(config, schema)
    if not problems:
        problems = semantic_errors(config)
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))
    return config


def config_kind(config: dict, configfiles) -> str:
    """'quick', 'laptop', 'full' or 'custom', for labelling results."""
    names = {Path(str(p)).name for p in configfiles or []}
    if config.get("label"):
        return str(config["label"])
    for kind in ("full", "laptop"):
        if f"{kind}.yaml" in names:
            return kind
    return "quick" if names <= {"config.yaml"} else "custom"
