"""Rows ``batchnorm/<model>``: a training step of each network with BatchNorm, with the project's
:class:`anatomy.models.batchnorm.BatchNorm` (TensorFlow's fused kernel) vs ``keras.layers.BatchNormalization``.

The same network (the config's widths and batch), built once, then cloned with Keras's layer in place of
ours and the same weights; both timed interleaved in one process. The results agree to float32 rounding,
not bit for bit (tests/test_batchnorm.py).
"""

from __future__ import annotations

import numpy as np

from anatomy.bench.common import row, side_by_side, study_models


def with_keras_batchnorm(model):
    """``model`` (functional) with every :class:`BatchNorm` replaced by Keras's layer, same config and weights."""
    import keras

    from anatomy.models.batchnorm import BatchNorm

    def clone(layer):
        if isinstance(layer, BatchNorm):
            return keras.layers.BatchNormalization.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    twin = keras.models.clone_model(model, clone_function=clone)
    twin.set_weights(model.get_weights())
    return twin


def bench_batchnorm(cfg: dict, *, scale: float, repeats: int, device: str) -> list:
    import keras
    import tensorflow as tf

    from anatomy.models.iic_net import IICTrainer, iic_net
    from anatomy.models.unet import compile_unet, residual_unet

    rng = np.random.default_rng(0)
    ip, cs = cfg["iic"], cfg["coreset"]
    _, build_vgg, vgg_shape, vgg_batch, _ = study_models(cfg)["vgg"]
    size = cfg["data"]["ellipses"]["image_size"]
    nets = {  # name: (what, network, input shape, batch)
        "vgg": (f"cifar VGG-like {cfg['cifar']['model']['widths']}", build_vgg(), vgg_shape, vgg_batch),
        "iic_net": (f"IIC net {ip['widths']} (both views)", iic_net(widths=tuple(ip["widths"]), head=ip["head"],
                                                                      clusters=ip["clusters"],
                                                                      overclusters=ip["overclusters"]),
                    (28, 28, 1), ip["batch_size"]),
        "unet": (f"coreset U-Net (start {cs['model']['start_neurons']}, depth {cs['model']['depth']})",
                 residual_unet(size, **cs["model"]), (size, size, 3), cs["batch_size"]),
    }
    steps = max(2, int(round(10 * scale)))
    rows = []
    for name, (what, net, shape, batch) in nets.items():
        x = rng.random((batch, *shape), dtype=np.float32)
        timed = {}
        for side, model in (("ours", net), ("keras", with_keras_batchnorm(net))):
            if name == "iic_net":
                model = IICTrainer(model, alpha=1.0, alpha_over=1.0)
                model.compile(optimizer=keras.optimizers.Adam(ip["learning_rate"]))
                data = ((x, x[:, ::-1]), np.zeros(batch))
            elif name == "unet":
                compile_unet(model, learning_rate=cs["learning_rate"])
                data = (x, (rng.random((batch, *shape[:2], 1)) > 0.5).astype("float32"))
            else:
                model.compile(optimizer=keras.optimizers.SGD(cfg["cifar"]["base_lr"]),
                              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
                data = (x, rng.integers(0, 10, batch))
            batches = iter(tf.data.Dataset.from_tensors(data).repeat())
            model.make_train_function()
            step = model.train_function  # Keras's own training step (what fit runs), traced once
            step(batches)

            def run(step=step, batches=batches):
                for _ in range(steps):
                    step(batches)
                return steps * batch

            timed[side] = run
        ours, theirs = side_by_side(timed["ours"], timed["keras"], repeats)
        rows.append(row(f"batchnorm/{name}", f"{what} training step, batch {batch}: fused BatchNorm vs "
                        "keras.layers.BatchNormalization", ours, theirs, "images/s", goal=1.0, device=device,
                        notes="same mathematics, equal to float32 rounding"))
    return rows
