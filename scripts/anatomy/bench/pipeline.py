"""Rows ``pipeline/*``: every study's training step on the workflow's data path vs ``model.fit`` on NumPy
arrays, and the coreset selection's compiled step vs ``train_on_batch``."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from anatomy.bench.common import row, side_by_side, study_models
from anatomy.bench.flops import training_flops


def _fit_rates(model, data_fn, x_np, y_np, *, batch: int, steps: int, compare: Callable) -> tuple[float, float]:
    """Images/s of ``fit`` on the workflow's ArrayData vs on NumPy arrays, same model, batch, steps."""
    n = batch * steps

    def ours():
        model.fit(data_fn(n).dataset(0, 1), epochs=1, verbose=0)
        return n

    def theirs():
        model.fit(x_np[:n], y_np[:n], batch_size=batch, epochs=1, verbose=0, shuffle=True)
        return n

    return compare(ours, theirs)


def bench_pipeline(paths: dict, cfg: dict, *, scale: float, repeats: int, device: str) -> tuple[list, dict]:
    """The training step of every study's model on the workflow's data path vs ``model.fit`` on arrays."""
    import keras
    import tensorflow as tf

    from anatomy.data.cifar10 import read_cifar10
    from anatomy.io import read_dataset_h5
    from anatomy.models.iic_net import IICTrainer, iic_net
    from anatomy.models.unet import compile_unet, residual_unet
    from anatomy.studies.cifar import normalize
    from anatomy.studies.iic import make_pair, transform_names
    from anatomy.training.pipeline import ArrayData
    from anatomy.training.step import make_train_step

    rows, rates = [], {}
    steps = lambda s: max(2, int(round(s * scale)))  # noqa: E731

    def compare(ours, theirs):
        """Warm-up (tracing, allocation), then both sides interleaved."""
        ours(), theirs()
        return side_by_side(ours, theirs, repeats)

    def add(name, model_name, batch, ours, theirs, flops=None):
        rates[name] = {"ours": ours, "theirs": theirs, "batch": batch, "flops": flops}
        rows.append(row(f"pipeline/{name}", f"{model_name} training, batch {batch}: workflow data path vs "
                        "model.fit on NumPy arrays", ours, theirs, "images/s", goal=0.95, device=device))

    models = study_models(cfg)
    # crops: the Keras MNIST CNN on the HDF5 file
    x, y = read_dataset_h5(paths["mnist"], "train")
    what, build, _, b, _ = models["mnist_cnn"]
    model = build()
    data = lambda n: ArrayData(x[:n], y[:n], batch_size=b, seed=0, target=lambda t: keras.ops.one_hot(t, 10))  # noqa: E731
    xf, yh = x.astype("float32") / 255.0, np.eye(10, dtype="float32")[y]
    add("mnist_cnn", what, b, *_fit_rates(model, data, xf, yh, batch=b, steps=steps(60), compare=compare),
        flops=training_flops(model))

    # the same CNN at batch 128: the compute-efficiency row
    add("mnist_cnn_b128", what, 128,
        *_fit_rates(model, lambda n: ArrayData(x[:n], y[:n], batch_size=128, seed=0,
                                             target=lambda t: keras.ops.one_hot(t, 10)),
                    xf, yh, batch=128, steps=steps(45), compare=compare), flops=training_flops(model))

    # digits: CNNMedium (no augmentation on either side; augmentation has its own rows)
    what, build, _, b, _ = models["cnn_medium"]
    model = build()
    add("cnn_medium", what, b,
        *_fit_rates(model, lambda n: ArrayData(x[:n], y[:n], batch_size=b, seed=0), xf, y, batch=b, steps=steps(150),
                    compare=compare), flops=training_flops(model))

    # cifar: the VGG-like net (config widths) on the TFRecord shards
    _, xc, yc = read_cifar10(paths["cifar10"], "train")
    prep = normalize
    what, build, _, b, _ = models["vgg"]
    model = build()
    add("vgg", what, b,
        *_fit_rates(model, lambda n: ArrayData(xc[:n], yc[:n], batch_size=b, seed=0, preprocess=prep), np.asarray(prep(xc)), yc,
                    batch=b, steps=steps(80), compare=compare), flops=training_flops(model))

    # iic: twins made on the fly in tf.data (ours) vs twins made once up front in NumPy (theirs)
    p = cfg["iic"]
    names = transform_names("all")
    net = iic_net(clusters=p["clusters"], overclusters=p["overclusters"], widths=tuple(p["widths"]), head=p["head"])
    trainer = IICTrainer(net, alpha=1.0, alpha_over=1.0)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    trainer.build((None, 28, 28, 1))
    b = p["batch_size"]
    n = b * steps(50)
    xi = xf[:n]
    views = [np.asarray(v) for v in make_pair(tf.constant(xi), tf.constant([0, 1], tf.int64), names, p["transforms"],
                                              p["pair"])]
    pair = lambda t, s: make_pair(t, s, names, p["transforms"], p["pair"])  # noqa: E731

    def iic_ours():
        trainer.fit(ArrayData(x[:n], np.zeros(n, np.int64), batch_size=b, seed=0, augment=pair).dataset(0, 1),
                    epochs=1, verbose=0)
        return n

    def iic_theirs():
        trainer.fit(tuple(views), np.zeros(n, "float32"), batch_size=b, epochs=1, verbose=0)
        return n

    add("iic_net", "IIC net (twins made in the pipeline vs precomputed)", b, *compare(iic_ours, iic_theirs),
        flops=2 * training_flops(net))

    # coreset: the U-Net (config size) trained batch by batch from the HDF5 arrays, as the selection does
    from anatomy.data.ellipses import make_ellipses

    cs = cfg["coreset"]
    section = cfg["data"]["ellipses"]
    model = residual_unet(section["image_size"], **{k: cs["model"][k] for k in ("start_neurons", "depth", "dropout")},
                          batch_norm_momentum=cs["model"]["batch_norm_momentum"])
    compile_unet(model, learning_rate=1e-3)
    b = cs["batch_size"]
    n = b * steps(24)
    xe, ye = make_ellipses(n, section, np.random.default_rng(0))[:2]
    xef, yef = xe.astype("float32") / 255.0, ye.astype("float32")

    unet_step = make_train_step(model)

    def unet_ours():  # the selection's loop: the compiled step on slices of the in-memory arrays
        for s in range(0, n, b):
            unet_step(xe[s:s + b].astype("float32") / 255.0, ye[s:s + b].astype("float32"))
        return n

    def unet_theirs():
        model.fit(xef, yef, batch_size=b, epochs=1, verbose=0)
        return n

    add("unet", f"coreset residual U-Net {section['image_size']} px (the selection's compiled step vs fit)", b,
        *compare(unet_ours, unet_theirs), flops=training_flops(model))
    return rows, rates


def bench_selection(cfg: dict, *, n_pairs: int, device: str) -> dict:
    """The coreset selection from fresh weights, tracing included: the compiled step vs ``train_on_batch``.

    Both start from the same weights and dropout seeds and must select the same
    pairs (the notes say whether they did). The compiled step runs first, so any
    warm cache in this process favours the old loop.
    """
    import keras

    from anatomy.data.ellipses import make_ellipses
    from anatomy.models.unet import compile_unet, residual_unet
    from anatomy.studies.coreset import select_in_memory, unet_kwargs
    from anatomy.training.step import make_train_step

    cs, section = cfg["coreset"], cfg["data"]["ellipses"]
    x, y = make_ellipses(n_pairs, section, np.random.default_rng(1))[:2]
    params = {**cs, "image_size": section["image_size"]}

    def selection(compiled: bool):
        keras.utils.set_random_seed(0)
        model = compile_unet(residual_unet(**unet_kwargs(params)), learning_rate=cs["learning_rate"])
        t0 = time.perf_counter()
        state = select_in_memory(model, x, y, params, seed=0,
                                 train_batch=make_train_step(model) if compiled else model.train_on_batch)
        return time.perf_counter() - t0, state.selected

    t_new, new = selection(True)
    t_old, old = selection(False)
    return row("pipeline/coreset_selection", f"coreset selection of {n_pairs} pairs from fresh weights, tracing "
               "included: compiled step vs train_on_batch", n_pairs / t_new, n_pairs / t_old, "pairs/s", goal=2,
               device=device, notes=f"{t_new:.1f} s vs {t_old:.1f} s; {len(new)} pairs selected; the same pairs: "
               + ("yes" if new == old else "NO"))
