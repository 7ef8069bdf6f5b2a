"""The anatomy of a dataset of your own: the studies' questions asked of any labelled image set.

The parts, each switched on per dataset under ``anatomy.<name>`` in the config:

- ``memorisation`` (the cifar study's corruptions): training and test accuracy over epochs with clean
  labels, labels redrawn with probability p (p = 1: random labels) and a fixed pixel permutation, and
  the epochs each takes to be fitted;
- ``windows`` (the crops study's masks): one model per window of the image, everything outside it
  zeroed, and its test accuracy by position, beside full-image models over seeds;
- ``examples`` (the digits study's folds): k-fold out-of-fold probabilities and penultimate-layer
  features, each training image's confidence in its label and its variability over epochs (a data map,
  Swayamdipta et al. 2020) and an audit by cleanlab's ``Datalab``;
- ``clustering`` (the iic study): IIC without labels, scored against them by Hungarian matching at the epoch
  with the lowest IIC loss on the test pairs (never chosen by labels), and the overclustering head's purity;
- ``subset`` (the coreset study's controls): test accuracy against training-set size for the easiest, the
  hardest (by the examples part's data-map confidence) and random training images, every size trained for
  the same number of gradient steps, over seeds;
- ``ensemble`` (the digits study's ensemble and TTA): single fold models, their k-fold ensemble and
  test-time augmentation on the test split, over seeds, with bootstrap intervals.

This module: the settings, the runs they ask for, the data of each run and its training (through
:func:`anatomy.training.contract.fit_with_contract`; only :func:`train_anatomy_run` imports TensorFlow).
The tables, the audit and the report: :mod:`anatomy.studies.anatomy_results`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from anatomy.io import write_npz
from anatomy.studies import cifar, coreset_controls, crops, digits, iic
from anatomy.training.setup import RunSettings

PARTS = ("memorisation", "windows", "examples", "clustering", "subset", "ensemble")
MODELS = ("small_cnn", "vgg")
# The narrow VGG of the cifar study's quick config: three blocks of one 3x3 convolution each.
VGG = {"widths": (16, 32, 64), "convs_per_block": 1, "dense": 128}
MAX_WINDOWS = 100  # the default stride keeps the window grid at or below this many windows

DEFAULTS = {
    "model": "auto",
    "batch_size": 32,
    "learning_rate": 0.001,
    "memorisation": {"epochs": 20, "seeds": [0], "label_noise": [1.0], "permutation": True},
    "windows": {"size": None, "stride": None, "epochs": 5, "seeds": [0, 1, 2]},
    "examples": {"folds": 3, "epochs": 8, "seed": 0, "top": 20},
    "clustering": {"epochs": 10, "seeds": [0], "alpha": 4.0, "overclustering": 5, "batch_size": 100},
    "subset": {"sizes": [0.1, 0.25, 0.5], "steps": 300, "seeds": [0, 1, 2]},
    "ensemble": {"folds": 3, "epochs": 8, "seeds": [0, 1], "tta": 4, "bootstrap": 1000,
                 # the digits kernel's affine augmentation: in training with its probability, for TTA on every copy
                 "augmentation": {"probability": 0.5, "scale": [0.95, 1.05], "rotation_deg": 7, "shear_deg": 3,
                                  "translation_px": 2}},
}
# The IIC network and pairs of the clustering part: the iic study's (half the post's trunk, two transformed views).
IIC = {"widths": [16, 32, 64, 128], "head": "gap_mlp", "pair": "two_twins", "alpha_warmup_epochs": 2,
       "transforms": {"rotation_deg": 25, "shear_deg": 15, "scale_min": 0.85, "scale_max": 1.15,
                      "binarize_threshold": 0.5, "noise_std": 0.2, "jitter": 0.2}}
SUBSET_KINDS = ("easy", "hard", "random")


# ---------------------------------------------------------------- settings and the runs they ask for

def settings(entry: dict | None) -> dict:
    """One ``anatomy.<name>`` entry with every default filled in; only the parts it names are kept."""
    entry = entry or {}
    out = {k: entry.get(k, DEFAULTS[k]) for k in ("model", "batch_size", "learning_rate")}
    for part in PARTS:
        if part in entry:
            out[part] = {**DEFAULTS[part], **(entry[part] or {})}
    return out


def part_settings(entry: dict, part: str) -> dict:
    """What one part's trainings use (the shared keys and that part's own): their rule's params."""
    s = settings(entry)
    return {"model": s["model"], "batch_size": s["batch_size"], "learning_rate": s["learning_rate"], part: s[part]}


def choose_model(name: str, shape) -> str:
    """``auto``: the small CNN for grey images, the narrow VGG for colour; else the configured name."""
    if name == "auto":
        return "small_cnn" if shape[-1] == 1 else "vgg"
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}' (use auto, {', '.join(MODELS)})")
    return name


def memorisation_runs(s: dict) -> list[str]:
    m = s["memorisation"]
    return ["clean", *[f"labels_p{p:g}" for p in m["label_noise"]]] + (["pixels_permutation"] if m["permutation"] else [])


def window_size(s: dict, shape) -> int:
    """The configured window side, or a third of the shorter image side (9 of 28, as the crops study)."""
    return s["windows"]["size"] or max(1, round(min(shape[0], shape[1]) / 3))


def positions(side: int, size: int, stride: int) -> list[int]:
    """Window starts along one axis every ``stride`` pixels, the last flush with the edge (every pixel covered)."""
    if size > side:
        raise ValueError(f"a {size}-pixel window does not fit a {side}-pixel side")
    starts = list(range(0, side - size + 1, stride))
    return starts if starts[-1] == side - size else starts + [side - size]


def default_stride(shape, size: int, max_windows: int = MAX_WINDOWS) -> int:
    """The smallest stride whose grid covers the image in at most ``max_windows`` windows."""
    stride = 1
    while len(positions(shape[0], size, stride)) * len(positions(shape[1], size, stride)) > max_windows:
        stride += 1
    return stride


def window_grid(s: dict, shape) -> list[tuple[int, int, int]]:
    """(size, i, j) of every window of the configured grid, for an image of ``shape`` (H, W, ...)."""
    size = window_size(s, shape)
    stride = s["windows"]["stride"] or default_stride(shape, size)
    return [(size, i, j) for i in positions(shape[0], size, stride) for j in positions(shape[1], size, stride)]


def window_run(size: int, i: int, j: int) -> str:
    return f"s{size}_i{i}_j{j}"


WINDOW_RUN = re.compile(r"s(\d+)_i(\d+)_j(\d+)")


def subset_runs(s: dict) -> list[str]:
    """``<kind>_f<fraction>`` for every kind (easy, hard, random) at every configured size."""
    return [f"{kind}_f{f:g}" for f in s["subset"]["sizes"] for kind in SUBSET_KINDS]


SUBSET_RUN = re.compile(r"(easy|hard|random)_f([0-9.]+)")


def subset_indices(run: str, confidence, *, seed: int) -> np.ndarray:
    """The training images of a subset run: the ``round(fraction x N)`` (at least one) with the highest
    data-map confidence (``easy``), the lowest (``hard``; ties by image index) or a seeded random draw
    (``random``, the coreset study's random control), sorted. ``confidence``: one value per training image."""
    m = SUBSET_RUN.fullmatch(run)
    if not m:
        raise ValueError(f"unknown subset run '{run}' (easy|hard|random _f<fraction>)")
    kind, fraction = m.group(1), float(m.group(2))
    conf = np.asarray(confidence, float)
    size = max(1, min(len(conf), round(fraction * len(conf))))
    if kind == "random":
        return coreset_controls.control_indices("random", len(conf), size=size, seed=seed)
    order = np.lexsort((np.arange(len(conf)), -conf if kind == "easy" else conf))
    return np.sort(order[:size])


def clustering_params(s: dict, shape, num_classes: int) -> dict:
    """The iic study's parameters for this dataset: K clusters (the classes), ``overclustering`` x K overclusters,
    the grey transform set (rotate, distort, binarize, noise) or the colour one (rotate, distort, jitter, noise)."""
    c = s["clustering"]
    return {**IIC, "clusters": num_classes, "overclusters": c["overclustering"] * num_classes,
            "batch_size": c["batch_size"], "learning_rate": s["learning_rate"], "epochs": c["epochs"],
            "transform_names": list(iic.TRANSFORMS if shape[-1] == 1 else iic.COLOUR_TRANSFORMS)}


# ---------------------------------------------------------------- the data each run trains on (numpy)

def run_data(part: str, run: str, s: dict, x_train, y_train, x_test, y_test, *, num_classes: int, seed: int,
             confidence=None) -> dict:
    """The images and labels one run trains and tests on, and what it records about them.

    memorisation: ``clean``, ``labels_p<p>`` (:func:`anatomy.studies.cifar.corrupt_labels`) or
    ``pixels_permutation`` (one fixed permutation of pixel positions, train and test alike);
    windows: ``full`` or ``s<size>_i<i>_j<j>`` (:func:`anatomy.studies.crops.window_mask`, train and test);
    examples: ``fold<k>``, trained on the other folds (:func:`anatomy.studies.digits.make_folds`);
    ensemble: ``fold<k>`` of the folds drawn with the run's seed;
    subset: ``<kind>_f<fraction>`` (:func:`subset_indices` of the examples part's ``confidence``).
    """
    out = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, "info": {}}
    if part == "memorisation":
        if run.startswith("labels_p"):
            v = cifar.corrupt_labels(y_train, float(run.removeprefix("labels_p")), seed, num_classes)
            out["y_train"] = v["labels"]
            out["info"] = {"labels_redrawn": float(v["redrawn"].mean()), "labels_changed": float(v["changed"].mean())}
        elif run == "pixels_permutation":
            perm = cifar.fixed_permutation(seed, pixels=x_train.shape[1] * x_train.shape[2])
            out["x_train"], out["x_test"] = cifar.permute_pixels(x_train, perm), cifar.permute_pixels(x_test, perm)
        elif run != "clean":
            raise ValueError(f"unknown memorisation run '{run}' (clean, labels_p<p>, pixels_permutation)")
    elif part == "windows":
        if run != "full":
            m = WINDOW_RUN.fullmatch(run)
            if not m:
                raise ValueError(f"unknown windows run '{run}' (full or s<size>_i<i>_j<j>)")
            size, i, j = map(int, m.groups())
            keep = crops.window_mask(i, j, size, x_train.shape[1:3])
            out["x_train"], out["x_test"] = crops.apply_mask(x_train, keep), crops.apply_mask(x_test, keep)
            out["info"] = {"window": {"size": size, "i": i, "j": j}}
    elif part in ("examples", "ensemble"):
        folds = example_folds(y_train, s[part] if part == "examples" else {"folds": s[part]["folds"], "seed": seed})
        tr, held = digits.split_of(folds, run)
        out.update(train_index=tr, x_train=x_train[tr], y_train=y_train[tr], all_x=x_train, all_y=y_train)
        out["info"] = {"held_out": int(len(held))}
    elif part == "subset":
        if confidence is None or len(confidence) != len(y_train):
            raise ValueError("a subset run needs the examples part's confidence of every training image")
        idx = subset_indices(run, confidence, seed=seed)
        out.update(x_train=x_train[idx], y_train=y_train[idx])
        out["info"] = {"subset_size": int(len(idx)), "subset_classes": int(len(np.unique(y_train[idx])))}
    else:
        raise ValueError(f"unknown part '{part}' (use {', '.join(PARTS)})")
    return out


def example_folds(y, e: dict) -> pd.DataFrame:
    """Stratified folds of every training image (the digits study's; its 80/20 column is unused here)."""
    return digits.make_folds(y, n_folds=e["folds"], seed=e["seed"], validation_fraction=1 / e["folds"])


# ---------------------------------------------------------------- one training (TensorFlow, lazily)

def build_model(name: str, input_shape, num_classes: int, learning_rate: float):
    """The named model with a softmax output, compiled with Adam on integer labels."""
    import keras

    if name == "small_cnn":
        from anatomy.models.mnist_cnn import mnist_cnn

        model = mnist_cnn(input_shape=tuple(input_shape), num_classes=num_classes)
    elif name == "vgg":
        from anatomy.models.vgg import vgg_like

        if min(input_shape[:2]) < 2 ** len(VGG["widths"]):
            raise ValueError(f"the narrow VGG halves the image {len(VGG['widths'])} times: {input_shape[0]}x"
                             f"{input_shape[1]} is too small (use model: small_cnn)")
        net = vgg_like(**VGG, input_shape=tuple(input_shape), num_classes=num_classes)
        model = keras.Model(net.inputs, keras.layers.Softmax(name="probs", dtype="float32")(net.outputs[0]),
                            name="vgg")
    else:
        raise ValueError(f"unknown model '{name}' (use {', '.join(MODELS)})")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def with_features(model):
    """``model`` answering (probabilities, penultimate features) in one pass: the features are the input of
    its last dense layer."""
    import keras

    last = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    return keras.Model(model.inputs, [model.outputs[0], last.input])


def _dynamics_callback(x, y):
    """Each epoch, every training image's probability of its label and whether it is predicted (a callback
    whose record is backed up with the run, so a resumed run keeps the epochs before the kill)."""
    from anatomy.training.contract import RecordEachEpoch

    class Dynamics(RecordEachEpoch):
        name, fields = "dynamics", ("p", "correct")

        def on_epoch_end(self, epoch, logs=None):
            probs = self.model.predict(x, batch_size=1000, verbose=0)
            self.p.append(np.round(probs[np.arange(len(y)), y], 6).tolist())
            self.correct.append((probs.argmax(1) == y).tolist())

    return Dynamics()


def read_confidence(examples_csv, n_train: int) -> np.ndarray:
    """Each training image's data-map confidence (``examples.csv``), in image order."""
    t = pd.read_csv(examples_csv, usecols=["image", "confidence"]).sort_values("image")
    if t["image"].tolist() != list(range(n_train)):
        raise ValueError(f"{examples_csv}: ranks {len(t)} images, the training split has {n_train}")
    return t["confidence"].to_numpy(float)


def train_anatomy_run(*, h5, files: dict, part: str, run: str, settings: dict, run_settings: RunSettings,
                      ranking=None) -> dict:
    """Train one run of one part under the training contract; test accuracy recorded every epoch.

    ``settings`` is :func:`part_settings`. An examples fold also writes ``files["predictions"]``: for every
    training image (``images``, ``labels``, ``seen``) its final probabilities, loss and penultimate-layer
    ``features``, and per epoch its probability of the label (``p_label``) and whether it was predicted
    (``correct``). An ensemble fold trains with the configured augmentation and writes its ``test``
    probabilities and, with ``tta`` copies, ``test_tta`` (:func:`anatomy.studies.digits.tta_probabilities`).
    A subset run trains on :func:`subset_indices` of ``ranking`` (the examples part's ``examples.csv``) for
    exactly ``steps`` gradient steps (:func:`anatomy.studies.coreset_controls.stop_at_steps`), whatever its size, and
    is tested once at the end. ``clustering``: :func:`train_clustering_run`. The model's initial weights
    depend on the seed only, so a seed's runs start alike.
    """
    if part == "clustering":
        return train_clustering_run(h5=h5, files=files, settings=settings, run_settings=run_settings)
    from anatomy.training.setup import configure_tensorflow

    device = configure_tensorflow(run_settings)
    seed = run_settings.seed
    from anatomy.io import read_dataset_h5, read_h5_attrs
    from anatomy.training.augment import augment_batch
    from anatomy.training.contract import EvaluateEachEpoch, fit_with_contract
    from anatomy.training.init_weights import weights_fingerprint
    from anatomy.training.pipeline import ArrayData

    x_train, y_train = read_dataset_h5(h5, "train")
    x_test, y_test = read_dataset_h5(h5, "test")
    k = len(read_h5_attrs(h5)["classes"])
    confidence = read_confidence(ranking, len(y_train)) if part == "subset" else None
    d = run_data(part, run, settings, x_train, y_train, x_test, y_test, num_classes=k, seed=seed,
                 confidence=confidence)
    name = choose_model(settings["model"], x_train.shape[1:])
    model = build_model(name, x_train.shape[1:], k, settings["learning_rate"])
    scale = lambda x: x.astype("float32") / 255.0  # noqa: E731
    test = (scale(d["x_test"]), d["y_test"])
    p = settings[part]
    aug = p["augmentation"] if part == "ensemble" else None
    data = ArrayData(d["x_train"], d["y_train"], batch_size=settings["batch_size"], seed=seed,
                     augment=(lambda xb, sp: augment_batch(xb, sp, aug)) if aug else None)
    if part == "subset":  # the same gradient steps at every size: one evaluation, at the end
        epochs, _ = coreset_controls.matched_schedule(p["steps"], data.steps_per_epoch)
        callbacks = [coreset_controls.stop_at_steps(p["steps"], data.steps_per_epoch)]
    else:
        epochs, callbacks = p["epochs"], [EvaluateEachEpoch(test, prefix="test_")]
    finish = None
    if part == "examples":
        all_x = scale(d["all_x"])
        callbacks.append(_dynamics_callback(all_x, d["all_y"]))

        def finish(m, metrics):
            probs, feats = (a.astype(np.float32) for a in with_features(m).predict(all_x, batch_size=1000,
                                                                                     verbose=0))
            dyn = callbacks[-1]
            write_npz(files["predictions"], images=np.arange(len(all_x)), labels=d["all_y"], probs=probs,
                      losses=digits.cross_entropy(probs, d["all_y"]), features=feats,
                      seen=np.isin(np.arange(len(all_x)), d["train_index"]),
                      p_label=np.asarray(dyn.p, np.float32), correct=np.asarray(dyn.correct, bool))
    elif part == "ensemble":
        def finish(m, metrics):
            probs = m.predict(test[0], batch_size=1000, verbose=0).astype(np.float32)
            out = {"test": probs, "labels": d["y_test"]}
            if p["tta"]:
                out["test_tta"] = digits.tta_probabilities(m, test[0], probs, aug=aug, copies=p["tta"], seed=seed)
            write_npz(files["predictions"], **out)
            return {"fold": run, "tta_copies": int(p["tta"])}

    return fit_with_contract(
        model, data, epochs=epochs, files=files, callbacks=callbacks, finish=finish,
        evaluate=lambda m: m.evaluate(*test, batch_size=1000, verbose=0, return_dict=True),
        info={"part": part, "run": run, "settings": settings, "seed": seed, "model": name, "classes": k,
              "train_images": int(len(d["x_train"])), "test_images": int(len(d["x_test"])),
              "init_fingerprint": weights_fingerprint(model.get_weights()), **d["info"], **device},
    )


def train_clustering_run(*, h5, files: dict, settings: dict, run_settings: RunSettings) -> dict:
    """One IIC run (:func:`anatomy.studies.iic.fit_iic`) on the training images, their labels never read.

    Each epoch, on the test images and a fixed pair of them (:func:`anatomy.studies.iic.evaluation_callback`):
    the IIC loss at alpha 1 (``eval_loss``, minus the mutual information of the two views' clusters, mean of
    both heads: the label-free criterion that chooses the epoch), the Hungarian accuracy of the
    K-way head and the purity of the overclustering head, and each test image's cluster and overcluster
    (``files["predictions"]``: ``assignments``, epochs x 2 x images, with ``labels`` and the final outputs).
    """
    from anatomy.training.setup import configure_tensorflow

    device = configure_tensorflow(run_settings)
    seed = run_settings.seed

    from anatomy.io import read_dataset_h5, read_h5_attrs

    x_train, _ = read_dataset_h5(h5, "train")  # the training labels are never read
    x_test, y_test = read_dataset_h5(h5, "test")
    k = len(read_h5_attrs(h5)["classes"])
    c = settings["clustering"]
    params = clustering_params(settings, x_train.shape[1:], k)
    params["batch_size"] = min(params["batch_size"], len(x_train))
    # scored at alpha 1 (minus the mutual information of the views' clusters): at a larger alpha the uniform
    # output scores nearly as well as real clusters, and the epoch chosen by the loss would be the first
    return iic.fit_iic(
        x_train, x_test, y_test, params, names=params["transform_names"], alpha=c["alpha"], alpha_over=c["alpha"],
        seed=seed, epochs=c["epochs"], files=files,
        evaluation={"alpha": 1.0, "alpha_over": 1.0, "clusters": k, "overclusters": params["overclusters"],
                    "n_labels": k, "keep_assignments": True},
        predictions=lambda x_eval, cb: {"assignments": np.asarray(cb.assignments, np.int32)},
        info={"part": "clustering", "run": "iic", "params": params, "settings": settings, "seed": seed,
              "alpha": c["alpha"], "classes": k, "train_images": int(len(x_train)), "test_images": int(len(x_test)),
              "evaluation": "test split; labels used only to score (Hungarian accuracy, purity)", **device})
