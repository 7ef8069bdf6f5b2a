"""Rows ``precision/<model>``: a training step under ``mixed_bfloat16`` vs ``float32`` (the configs' default).

The same model and batch, built once under each Keras dtype policy in one process and timed interleaved.
bfloat16 runs on AMX / AVX512-BF16 units where the CPU has them (recent Intel Xeons) and is emulated,
slower, where it has not: the ratio says which this machine is. Results are not identical (bfloat16 keeps
8 bits of mantissa), so the configs keep float32; ``precision: mixed_bfloat16`` is the user's choice.
"""

from __future__ import annotations

import numpy as np

from anatomy.bench.common import row, side_by_side, study_models


def bench_precision(cfg: dict, *, scale: float, repeats: int, device: str) -> list:
    import keras

    steps = max(2, int(round(20 * scale)))
    rng = np.random.default_rng(0)
    rows = []
    before = keras.mixed_precision.global_policy().name
    try:
        for name, (_, build, shape, batch, onehot) in study_models(cfg).items():
            x = rng.random((batch, *shape), dtype=np.float32)
            y = rng.integers(0, 10, batch)
            y = np.eye(10, dtype="float32")[y] if onehot else y
            timed = {}
            for policy in ("mixed_bfloat16", "float32"):
                keras.mixed_precision.set_global_policy(policy)
                model = build()
                model.train_on_batch(x, y)  # trace

                def run(m=model):
                    for _ in range(steps):
                        m.train_on_batch(x, y)
                    return steps * batch

                timed[policy] = run
            ours, theirs = side_by_side(timed["mixed_bfloat16"], timed["float32"], repeats)
            rows.append(row(f"precision/{name}", f"{name} training step, batch {batch}: mixed_bfloat16 vs float32",
                            ours, theirs, "images/s", device=device,
                            notes="not identical results; above 1 on CPUs with AMX / AVX512-BF16"))
    finally:
        keras.mixed_precision.set_global_policy(before)
    return rows
