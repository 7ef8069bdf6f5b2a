"""Jobs that do not train or predict never import TensorFlow (each such import costs 5-6 s a job)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from conftest import ROOT

# Rule scripts that build a model, write TFRecords or initial weights: TensorFlow is their job.
TRAINING = {"train_cifar.py", "train_coreset.py", "train_crops.py", "train_iic.py", "digits_train.py",
            "init_weights.py", "coreset_init.py", "digits_fold_init.py", "build_cifar10.py", "anatomy_train.py"}
SCRIPTS = sorted(p.name for p in (ROOT / "scripts").glob("*.py") if p.name not in TRAINING)


def _imports(path) -> list[str]:
    """Every import statement of a script, wherever it sits (the rule scripts import inside `with`)."""
    tree = ast.parse(path.read_text())
    return [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


@pytest.mark.parametrize("script", SCRIPTS)
def test_non_training_rule_scripts_do_not_import_tensorflow(script):
    code = "\n".join(["import sys", *_imports(ROOT / "scripts" / script),
                      "print(__import__('json').dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
                      "('tensorflow', 'keras'))))"])
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=ROOT / "scripts", env={"PYTHONPATH": str(ROOT / "scripts"), "PATH": ""})
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout.strip().splitlines()[-1]) == [], f"{script} imports TensorFlow/Keras"


def test_the_list_of_training_scripts_is_current():
    names = {p.name for p in (ROOT / "scripts").glob("*.py")}
    assert TRAINING <= names, TRAINING - names
