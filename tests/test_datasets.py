"""anatomy.data.own: datasets named in the config (npz, folder, csv) -> data.h5 + manifest.json."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from anatomy.config import ConfigError, deep_merge, load_yaml, validate_config
from anatomy.data import example
from anatomy.data.digits import write_digits_csv
from anatomy.data.own import build_own_dataset, read_own_dataset
from anatomy.data.sources import DataError
from anatomy.io import read_dataset_h5, read_h5_attrs, read_json, sha256_file

from conftest import ROOT, Workflow, tiny_config

H, W = 6, 5
CLASSES = ["ant", "bee", "cat"]


def _images(n, channels, *, seed=0):
    """``n`` random uint8 images (N x H x W, or N x H x W x 3) and labels cycling over three classes."""
    rng = np.random.default_rng(seed)
    shape = (n, H, W) if channels == 1 else (n, H, W, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8), np.arange(n) % 3


def _splits(channels):
    return {"train": _images(12, channels), "test": _images(6, channels, seed=1)}


def _npz(tmp_path, channels=1, **override):
    (xt, yt), (xs, ys) = _splits(channels).values()
    arrays = {"x_train": xt, "y_train": yt, "x_test": xs, "y_test": ys, **override}
    tmp_path.mkdir(parents=True, exist_ok=True)
    np.savez(tmp_path / "set.npz", **arrays)
    return {"source": "npz", "path": str(tmp_path / "set.npz")}


def _save(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img.squeeze(-1) if img.ndim == 3 and img.shape[-1] == 1 else img).save(path)


def _folder(tmp_path, channels=1, ext="png"):
    root = tmp_path / "images"
    for split, (x, y) in _splits(channels).items():
        for i, (img, label) in enumerate(zip(x, y)):
            _save(root / split / CLASSES[label] / f"{i:03d}.{ext}", img)
    return {"source": "folder", "path": str(root)}


def _csv(tmp_path, channels=1):
    spec = {"source": "csv", "shape": [H, W] if channels == 1 else [H, W, 3]}
    for split, (x, y) in _splits(channels).items():
        write_digits_csv(tmp_path / f"{split}.csv", x, y)
        spec[split] = str(tmp_path / f"{split}.csv")
    return spec


def _build(tmp_path, spec):
    out = tmp_path / "out"
    return build_own_dataset("mine", spec, out / "data.h5", out / "manifest.json"), out


def _as_stored(x):
    return x[..., None] if x.ndim == 3 else x


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("make", [_npz, _folder, _csv], ids=["npz", "folder", "csv"])
def test_round_trip_through_reader_and_hdf5(tmp_path, make, channels):
    spec = make(tmp_path, channels)
    manifest, out = _build(tmp_path, spec)
    expected = _splits(channels)
    if spec["source"] == "folder":  # labels follow the sorted folder names; images in file order per class
        expected = {s: (x[np.argsort(y, kind="stable")], np.sort(y)) for s, (x, y) in expected.items()}
    for split, (x, y) in expected.items():
        xs, ys = read_dataset_h5(out / "data.h5", split)
        assert xs.dtype == np.uint8 and xs.shape == (len(x), H, W, channels)
        np.testing.assert_array_equal(xs, _as_stored(x))
        np.testing.assert_array_equal(ys, y)
    assert manifest == read_json(out / "manifest.json")
    assert manifest["shape"] == [H, W, channels] and manifest["channels"] == channels and manifest["dtype"] == "uint8"
    assert manifest["sizes"] == {"train": 12, "test": 6}
    names = CLASSES if spec["source"] == "folder" else ["0", "1", "2"]
    assert manifest["classes"] == names and read_h5_attrs(out / "data.h5")["classes"] == names
    assert manifest["counts"] == {"train": dict.fromkeys(names, 4), "test": dict.fromkeys(names, 2)}
    assert len(manifest["checksums"]) == (1 if spec["source"] == "npz" else 2)
    if spec["source"] != "folder":
        assert all(v == sha256_file(k) for k, v in manifest["checksums"].items())


@pytest.mark.parametrize("scale, dtype", [(1 / 255, np.float32), (1.0, np.float64)])
def test_npz_floats_in_0_1_or_0_255_and_labels_n_by_1(tmp_path, scale, dtype):
    (x, y), _ = _splits(3).values()
    spec = _npz(tmp_path, 3, x_train=(x * scale).astype(dtype), y_train=y[:, None].astype(float))
    ds = read_own_dataset(spec)
    np.testing.assert_array_equal(ds.splits["train"][0], x)
    np.testing.assert_array_equal(ds.splits["train"][1], y)
    assert ds.source_dtype == np.dtype(dtype).name


def test_folder_classes_from_config_resize_jpeg_and_hidden_files(tmp_path):
    spec = _folder(tmp_path, 3, ext="jpg")
    _save(tmp_path / "images" / "train" / "ant" / "big.jpeg", np.zeros((12, 10, 3), np.uint8))
    (tmp_path / "images" / "train" / "ant" / ".DS_Store").write_bytes(b"\0")
    ds = read_own_dataset({**spec, "resize": [3, 4], "classes": ["cat", "ant", "bee"]})
    x, y = ds.splits["train"]
    assert ds.classes == ["cat", "ant", "bee"] and x.shape == (13, 3, 4, 3)
    assert np.bincount(y).tolist() == [4, 5, 4] and y[0] == 0  # cat first, as the config says


def test_example_ships_as_written_and_its_signal_sits_in_the_bottom_right(tmp_path):
    example.write_example(tmp_path)
    for name in ("train.csv", "test.csv"):
        assert (tmp_path / name).read_bytes() == (ROOT / "resources" / "example" / name).read_bytes()
    cfg = deep_merge(load_yaml(ROOT / "config" / "config.yaml"), load_yaml(ROOT / "config" / "datasets" / "example.yaml"))
    validate_config(cfg, ROOT / "config" / "schema.yaml")
    spec = {k: (str(ROOT / v) if k in ("train", "test") else v) for k, v in cfg["datasets"]["example"].items()}
    ds = read_own_dataset(spec)
    x, y = ds.splits["train"]
    assert ds.classes == example.CLASSES and x.shape == (300, 16, 16, 1)
    means = np.stack([x[y == k, ..., 0].mean(0) for k in range(3)])
    between = means.var(0)  # how much the class means differ, per pixel
    inside = np.zeros((16, 16), bool)
    inside[example.SIGNAL] = True
    assert between[inside].mean() > 5 * between[~inside].mean()  # measured: about 10 times


def test_manifest_failure_removes_the_hdf5(tmp_path, monkeypatch):
    import anatomy.data.own as own

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(own, "write_json", fail)
    with pytest.raises(OSError):
        _build(tmp_path, _npz(tmp_path))
    assert list((tmp_path / "out").iterdir()) == []


# ----------------------------------------------------------------------------- bad input


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _bad_label(value, split="train", row=4, classes=None):
    def make(tmp_path):
        y = _splits(1)[split][1].astype(type(value) if isinstance(value, float) else np.int64)
        y[row] = value
        spec = _npz(tmp_path, **{f"y_{split}": y})
        return ({**spec, "classes": classes} if classes else spec), [spec["path"], f"'y_{split}' row {row}"]
    return make


def _in_folder(edit):
    """A folder dataset changed by ``edit(root)``, which returns the path the message must name."""
    def make(tmp_path):
        spec = _folder(tmp_path)
        return spec, [str(edit(tmp_path / "images"))]
    return make


def _csv_cell(split, line, column, value):
    def make(tmp_path):
        spec = _csv(tmp_path)
        df = pd.read_csv(spec[split], dtype=object)
        df.loc[line - 2, column] = value
        df.to_csv(spec[split], index=False)
        return spec, [spec[split], f"line {line}, column '{column}'"]
    return make


def _npz_case(fragment, **override):
    def make(tmp_path):
        spec = _npz(tmp_path, **{k: v() for k, v in override.items()})
        return spec, [spec["path"], fragment]
    return make


def _nan_images():
    x = _splits(1)["train"][0].astype(np.float32)
    x[3, 1, 2] = np.nan
    return x


def _one_rgb(root):
    path = root / "train" / "bee" / "001.png"
    _save(path, np.zeros((H, W, 3), np.uint8))
    return path


def _other_size(root):
    path = root / "test" / "cat" / "002.png"
    _save(path, np.zeros((H + 1, W), np.uint8))
    return path


def _empty_class(root):
    for p in (root / "test" / "bee").iterdir():
        p.unlink()
    return root / "test" / "bee"


def _not_image(root):
    path = root / "train" / "ant" / "000.png"
    path.write_text("label,pixel0\n")
    return path


def _single_class(root):
    import shutil

    for name in ("bee", "cat"):
        shutil.rmtree(root / "train" / name)
        shutil.rmtree(root / "test" / name)
    return root / "train"


def _unknown_test_class(root):
    _save(root / "test" / "wasp" / "0.png", np.zeros((H, W), np.uint8))
    return root / "test" / "wasp"


BAD = {
    "npz x and y lengths differ": _npz_case("'x_train' has 12 images but 'y_train' has 11",
                                            y_train=lambda: np.arange(11) % 3),
    "npz label above the configured classes": _bad_label(3, classes=CLASSES),
    "npz negative label": _bad_label(-1),
    "npz label not an integer": _bad_label(1.5),
    "npz label NaN": _bad_label(float("nan"), split="test", row=2),
    "npz test label unknown to train": _bad_label(5, split="test", row=1),
    "npz class without training images": _npz_case("no image of class 1",
                                                   y_train=lambda: np.arange(12) % 3 * 2 % 4),
    "npz fewer than two classes": _npz_case("only 1 class", y_train=lambda: np.zeros(12, int)),
    "npz NaN pixel": _npz_case("'x_train' image 3, pixel (1, 2, 0)", x_train=_nan_images),
    "npz inf pixel": _npz_case("'x_test' image 0, pixel (0, 0, 0)",
                               x_test=lambda: np.full((6, H, W), np.inf, np.float32)),
    "npz pixel outside 0..255": _npz_case("'x_train' image 0, pixel (0, 0, 0) is 300",
                                          x_train=lambda: np.full((12, H, W), 300, np.int16)),
    "npz mixed channel counts": _npz_case("'x_test' images are 6x5x3", x_test=lambda: _images(6, 3)[0]),
    "npz two channels": _npz_case("'x_train' has shape (12, 6, 5, 2)",
                                  x_train=lambda: np.zeros((12, H, W, 2), np.uint8)),
    "npz file missing": lambda tmp_path: ({"source": "npz", "path": str(tmp_path / "no.npz")},
                                          [str(tmp_path / "no.npz"), "not found"]),
    "folder empty class": _in_folder(_empty_class),
    "folder file not an image": _in_folder(_not_image),
    "folder truncated png": _in_folder(lambda root: _truncate(root / "test" / "ant" / "000.png")),
    "folder mixed sizes without resize": _in_folder(_other_size),
    "folder mixed channel counts": _in_folder(_one_rgb),
    "folder fewer than two classes": _in_folder(_single_class),
    "folder test class unknown to train": _in_folder(_unknown_test_class),
    "csv label not an integer": _csv_cell("train", 3, "label", "cat"),
    "csv label out of range": _csv_cell("test", 5, "label", "-2"),
    "csv pixel missing": _csv_cell("test", 4, "pixel7", ""),
    "csv pixel not a number": _csv_cell("train", 9, "pixel29", "0x1f"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_refused_naming_the_file_and_leaves_nothing(tmp_path, case):
    spec, fragments = BAD[case](tmp_path)
    (tmp_path / "out").mkdir()  # as Snakemake makes it before the job
    with pytest.raises(DataError) as e:
        _build(tmp_path, spec)
    assert all(f in str(e.value) for f in fragments), (fragments, str(e.value))
    assert list((tmp_path / "out").iterdir()) == []


def test_truncated_jpeg_and_csv_with_the_wrong_pixel_count(tmp_path):
    spec = _folder(tmp_path, 3, ext="jpg")
    bad = _truncate(tmp_path / "images" / "train" / "cat" / "002.jpg", keep=0.6)
    with pytest.raises(DataError, match="truncated") as e:
        read_own_dataset(spec)
    assert str(bad) in str(e.value)
    spec = _csv(tmp_path, 3)
    with pytest.raises(DataError, match=r"90 pixel columns, but the configured shape \[6, 6, 3\]") as e:
        read_own_dataset({**spec, "shape": [6, 6, 3]})
    assert spec["train"] in str(e.value)


# ----------------------------------------------------------------------------- config and workflow


@pytest.mark.parametrize("spec, key", [
    ({"source": "csv", "train": "a.csv", "test": "b.csv"}, "datasets.x.shape"),
    ({"source": "npz", "path": "a.npz", "resize": [8, 8]}, "datasets.x.resize"),
    ({"source": "folder"}, "datasets.x.path"),
    ({"source": "csv", "train": "a", "test": "b", "shape": [4, 4, 2]}, "datasets.x.shape"),
    ({"source": "zip", "path": "a"}, "datasets.x.source"),
    ({"source": "npz", "path": "a", "classes": ["one"]}, "datasets.x.classes"),
])
def test_config_checks_each_dataset(spec, key):
    cfg = load_yaml(ROOT / "config" / "config.yaml")
    cfg["datasets"] = {"x": spec}
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_config(cfg, ROOT / "config" / "schema.yaml")
    for empty in (None, {}):
        validate_config({**cfg, "datasets": empty}, ROOT / "config" / "schema.yaml")


@pytest.mark.workflow
def test_dataset_rule_is_planned_built_and_rerun_when_a_source_file_changes(tmp_path):
    folder, npz = _folder(tmp_path), _npz(tmp_path / "n", 3)
    broken = _folder(tmp_path / "b")
    bad = _truncate(tmp_path / "b" / "images" / "train" / "cat" / "002.png")
    wf = Workflow(tmp_path / "wf", tiny_config({"datasets": {"grey": folder, "colour": npz, "broken": broken}}))
    assert wf.dry_run_jobs()["dataset"] == 3  # the default target includes every named dataset
    targets = [f"results/datasets/{n}/manifest.json" for n in ("grey", "colour")]
    wf.run(*targets)
    r = wf.path / "results" / "datasets"
    assert read_dataset_h5(r / "colour" / "data.h5", "test")[0].shape == (6, H, W, 3)
    assert read_json(r / "grey" / "manifest.json")["classes"] == CLASSES
    _save(tmp_path / "images" / "test" / "bee" / "001.png", np.full((H, W), 7, np.uint8))
    assert wf.dry_run_jobs(*targets) == {"dataset": 1}  # only the dataset whose file changed
    p = wf.run("results/datasets/broken/data.h5", check=False)
    assert p.returncode != 0 and str(bad) in p.stdout + p.stderr
    assert not (r / "broken").exists() or list((r / "broken").iterdir()) == []
