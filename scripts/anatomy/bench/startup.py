"""Row ``startup/keras_import``: a training job's Keras import vs a plain ``import keras``."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from anatomy.bench.common import ROOT, row


def bench_startup(*, repeats: int) -> list:
    """A training job's Keras import, as ``configure_tensorflow`` does it (without the extras no job uses)
    against a plain ``import keras``: each in a fresh interpreter, the best of ``repeats``."""
    code = {"ours": "from anatomy.training.setup import import_keras; import_keras()", "theirs": "import keras"}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT / "scripts")}
    best = {}
    for k, c in code.items():
        times = []
        for _ in range(max(1, repeats)):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", c], check=True, env=env, capture_output=True)
            times.append(time.perf_counter() - t)
        best[k] = min(times)
    return [row("startup/keras_import", "a fresh interpreter importing Keras and TensorFlow: without its optional "
                "scikit-learn and IPython extras (as every training job) vs plain `import keras`", best["ours"],
                best["theirs"], "s", goal=0.9, higher_is_better=False)]
