"""Jobs that do not train or predict never import TensorFlow (each such import costs 5-6 s a job)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT

# Rule scripts that build a model, write TFRecords or initial weights: TensorFlow is their job.
TRAINING = {"cifar/train.py", "coreset/train.py", "crops/train.py", "iic/train.py", "digits/train.py",
            "shared/init_weights.py", "coreset/init_weights.py", "digits/fold_init_weights.py", "data/cifar10.py",
            "own/train.py"}
# the rule scripts: scripts/<study>/<step>.py (scripts/anatomy/ is the package)
RULE_SCRIPTS = {str(p.relative_to(ROOT / "scripts")) for p in (ROOT / "scripts").glob("*/*.py")
                if p.parent.name != "anatomy"}
SCRIPTS = sorted(RULE_SCRIPTS - TRAINING)


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
    assert TRAINING <= RULE_SCRIPTS, TRAINING - RULE_SCRIPTS


def test_every_rule_script_sits_in_its_study_folder_and_every_one_is_used():
    """One naming scheme: scripts/<study>/<step>.py, each named by exactly the rules that run it."""
    assert not list((ROOT / "scripts").glob("*.py")), "a rule script outside scripts/<study>/"
    from anatomy.studies.anatomy import PARTS

    used = set()
    for smk in (ROOT / "rules").glob("*.smk"):
        used |= set(re.findall(r'"\.\./scripts/([\w/]+\.py)"', smk.read_text()))
        # the anatomy parts' rules, made in a loop: scripts/own/<part>.py
        if '"../scripts/own/{params.part}.py"' in smk.read_text():
            used |= {f"own/{part}.py" for part in PARTS}
    assert used == RULE_SCRIPTS, (RULE_SCRIPTS - used, used - RULE_SCRIPTS)
