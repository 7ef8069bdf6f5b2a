"""TensorFlow set-up for a training job: threads, seeds, determinism, GPU memory."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass


PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# "<steps>:<folder>": the training contract times two epochs of <steps> steps each and writes what they cost to
# <folder> (``anatomy.plan``; :func:`anatomy.training.contract.timing_request`)
TIMING_ENV = "ANATOMY_TIME_EPOCHS"
# Optional extras Keras imports when they are installed and no job here uses through Keras (its scikit-learn
# wrappers, IPython display): 0.8 s of a 4.2 s import, paid by every training job (`python -m anatomy.bench`,
# row startup/keras_import). Our own code imports scikit-learn itself, later, as usual.
KERAS_EXTRAS = ("sklearn", "IPython")


def import_keras():
    """``import keras`` (and TensorFlow) without :data:`KERAS_EXTRAS`, unless one is already imported."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    blocked = [m for m in KERAS_EXTRAS if m not in sys.modules]
    for m in blocked:
        sys.modules[m] = None  # "import m" raises ImportError: Keras skips what needs it
    try:
        import keras
    finally:
        for m in blocked:
            if sys.modules.get(m, 0) is None:
                del sys.modules[m]
    return keras


@dataclass(frozen=True)
class RunSettings:
    """How a training job sets TensorFlow up: ``threads``, the ``seed`` (of Keras, NumPy and Python, and of
    the job's batch order), ``deterministic`` (op determinism) and ``precision``, the Keras dtype policy for
    every layer built afterwards: ``float32`` (the default), ``mixed_float16`` (NVIDIA GPUs with tensor
    cores) or ``mixed_bfloat16`` (TPUs, recent CPUs with AMX/AVX512-BF16)."""

    threads: int
    seed: int
    deterministic: bool = False
    precision: str = "float32"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: {self.precision!r} is not one of {', '.join(PRECISIONS)}")

    @classmethod
    def from_rule(cls, snakemake, *, seed: int) -> RunSettings:
        """A training rule's settings: its ``threads`` and the ``deterministic`` and ``precision`` params every
        training rule receives (``TRAIN_PARAMS`` in rules/common.smk); the seed is the rule's to say."""
        p = snakemake.params
        return cls(threads=snakemake.threads, seed=int(seed), deterministic=p.deterministic, precision=p.precision)


def configure_tensorflow(settings: RunSettings) -> dict:
    """Configure TF by ``settings`` before any op runs; return a description of the device and the precision.

    The models keep their output layers in float32, and Keras wraps the
    optimizer in loss scaling for float16.
    """
    threads, seed, precision = settings.threads, settings.seed, settings.precision
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    keras = import_keras()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(threads, 2)))
        for gpu in tf.config.list_physical_devices("GPU"):
            # Lets several jobs share one card (`--resources gpu=N`).
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        # TensorFlow already initialised in this process (a second call, or tests): its settings stay
        pass
    keras.utils.set_random_seed(seed)
    if settings.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(precision)
    return {**device_info(), "precision": precision}


def device_info() -> dict:
    import tensorflow as tf
    import keras

    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for g in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(g).get("device_name", g.name))
        except Exception:  # details are best effort
            names.append(g.name)
    return {
        "device": "GPU" if gpus else "CPU",
        "device_name": ", ".join(names) if names else (platform.processor() or platform.machine()),
        "cpu_count": os.cpu_count(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()},
    }
