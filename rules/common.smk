# Glue: config validation, path helpers, config slices, wildcard constraints.
# Nothing here imports TensorFlow (dry runs stay fast).
import os
import re
import sys
from pathlib import Path

SCRIPTS = str(Path(workflow.basedir) / "scripts")
sys.path.insert(0, SCRIPTS)
# The rule scripts run in their own Python processes: they too import `anatomy` from
# this checkout, not from whichever checkout `pip install -e` last pointed at.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [
        SCRIPTS,
        *[
            p
            for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and p != SCRIPTS
        ],
    ]
)

from snakemake.exceptions import WorkflowError
from anatomy.config import ConfigError, config_kind, validate_config

try:
    validate_config(config, Path(workflow.basedir) / "config" / "schema.yaml")
except ConfigError as e:
    raise WorkflowError(str(e)) from None

RESULTS = "results"
RESUME = f"{RESULTS}/.resume"  # training backups: never a declared output
SCALE = (
    config_kind(config, workflow.configfiles)
    if config["scale"] == "quick"
    else config["scale"]
)
if config["precision"] != "float32":
    SCALE += f", {config['precision']}"  # every figure and the summary say so
# One environment for every rule (`--software-deployment-method conda`); the path is relative to rules/.
CONDA_ENV = "../envs/tensorflow.yaml"
DATA_LABELS = {
    "embedded": "embedded sample",
    "download": "full dataset",
    "npz": "local npz",
}


wildcard_constraints:
    seed=r"\d+",
    i=r"\d+",
    j=r"\d+",
    size=r"\d+",
    mask="window|as_published",


def in_report(path, caption, category, subcategory=None):
    """An output shown in the Snakemake report, captioned by report/<caption>.rst."""
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category=category,
        subcategory=subcategory,
    )


def data_label(name):
    """How a dataset was sourced, for figure subtitles and the summary."""
    src = config["data"][name]["source"]
    if name == "digits":
        return (
            f"derived from MNIST {data_label('mnist')}"
            if src == "derived"
            else "Kaggle competition files"
        )
    return DATA_LABELS[src]


EMBEDDED = {
    "mnist": str(Path(workflow.basedir) / "resources" / "mnist_sample.npz"),
    "cifar10": str(Path(workflow.basedir) / "resources" / "cifar10_sample.npz"),
}


def source_input(name):
    """The files a dataset is built from (so that a new local file reruns the build)."""
    section = config["data"][name]
    if name == "digits":
        if section["source"] == "derived":
            return {"mnist": f"{RESULTS}/data/mnist.h5"}
        return {
            "train_csv": f"{section['path']}/train.csv",
            "test_csv": f"{section['path']}/test.csv",
        }
    if section["source"] == "embedded":
        return {"source": EMBEDDED[name]}
    if section["source"] == "npz":
        return {"source": section["path"]}
    return {}  # download: fetched inside the job


def train_resources(mem_mb=4000, runtime=60):
    """Every training rule: one GPU when there is one, memory and minutes for SLURM."""
    return {"gpu": 1, "mem_mb": mem_mb, "runtime": runtime}


# What every training rule passes on besides its own slice of the config.
TRAIN_PARAMS = {
    "deterministic": config["deterministic"],
    "precision": config["precision"],
}


def run_outputs(prefix):
    """The training contract's declared outputs under ``prefix``."""
    return {
        "model": f"{prefix}/model.keras",
        "history": f"{prefix}/history.csv",
        "metrics": f"{prefix}/metrics.json",
    }


def get_final_output():
    return [
        f"{RESULTS}/data/mnist.h5",
        f"{RESULTS}/data/cifar10/manifest.json",
        f"{RESULTS}/data/digits/train.csv",
        f"{RESULTS}/crops/figures/baseline_curves.png",
        f"{RESULTS}/crops/verdict.csv",
        f"{RESULTS}/crops/stacking.csv",
        f"{RESULTS}/cifar/summary.csv",
        f"{RESULTS}/iic/summary.csv",
        f"{RESULTS}/summary.md",
        *digits_final_output(),  # defined in rules/digits.smk
        *coreset_final_output(),  # defined in rules/coreset.smk
        *datasets_final_output(),  # defined in rules/datasets.smk
        *anatomy_final_output(),  # defined in rules/anatomy.smk
    ]
