"""TensorFlow set-up for a training job: threads, seeds, determinism, GPU memory."""

from __future__ import annotations

import os
import platform


def configure_tensorflow(*, threads: int, seed: int, deterministic: bool = False) -> dict:
    """Configure TF before any op runs; return a description of the device."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import tensorflow as tf
    import keras

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
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return device_info()


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
