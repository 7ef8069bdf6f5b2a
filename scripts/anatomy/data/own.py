"""Your own labelled image set, named in the config: an npz file, image folders or Kaggle-style CSVs.

:func:`read_own_dataset` reads one ``datasets.<name>`` entry and checks it;
:func:`build_own_dataset` writes it as the workflow's HDF5 (uint8 N x H x W x C,
the layout every study reads) and a manifest. Everything is read and checked
before anything is written, and every refusal is a :class:`DataError` naming
the file (and the row, column or image), so bad input leaves no output behind.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anatomy.data.sources import DataError, read_npz_arrays
from anatomy.io import sha256_file, write_dataset_h5, write_json

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
NPZ_KEYS = ["x_train", "y_train", "x_test", "y_test"]


@dataclass
class OwnDataset:
    splits: dict  # split -> (x uint8 N x H x W x C, y int64 N)
    classes: list
    source_dtype: str  # the pixels' type before conversion to uint8


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def source_files(spec: dict) -> list[Path]:
    """The files a dataset is read from (the rule's input, so that a changed file reruns it).

    A folder that does not exist is listed as itself, for Snakemake to report as missing.
    """
    if spec["source"] == "npz":
        return [Path(spec["path"])]
    if spec["source"] == "csv":
        return [Path(spec["train"]), Path(spec["test"])]
    out = []
    for split in SPLITS:
        root = Path(spec["path"]) / split
        out += sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")) if root.is_dir() else [root]
    return out


def input_checksums(spec: dict) -> dict:
    """sha256 of each input file; for a folder, one digest per split over its files' paths and checksums."""
    if spec["source"] != "folder":
        return {str(p): sha256_file(p) for p in source_files(spec)}
    root = Path(spec["path"])
    digests = {split: hashlib.sha256() for split in SPLITS}
    for p in source_files(spec):
        rel = p.relative_to(root)
        digests[rel.parts[0]].update(f"{rel.as_posix()}\t{sha256_file(p)}\n".encode())
    return {f"{root / split}/": h.hexdigest() for split, h in digests.items()}


# ----------------------------------------------------------------------------- checks shared by the sources


def _first(bad: np.ndarray) -> tuple:
    return tuple(int(v) for v in np.argwhere(bad)[0])


def to_uint8(x: np.ndarray, what: str, at) -> np.ndarray:
    """Pixels as uint8: integers must lie in 0..255; floats in [0, 1] (scaled by 255) or [0, 255].

    ``what`` names the array, ``at(index)`` one element, in the messages.
    """
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer):
        bad = (x < 0) | (x > 255)
        if bad.any():
            i = _first(bad)
            raise DataError(f"{at(i)} is {x[i]}, outside 0..255")
        return x.astype(np.uint8)
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{what} has dtype {x.dtype}; expected integers in 0..255 or floats")
    for bad, why in ((~np.isfinite(x), "not a number (NaN or inf)"), (x < 0, "negative"), (x > 255, "above 255")):
        if bad.any():
            i = _first(bad)
            raise DataError(f"{at(i)} is {x[i]}, {why}; expected floats in [0, 1] or [0, 255]")
    scale = 255.0 if x.max() <= 1.0 else 1.0
    return np.rint(x * scale).astype(np.uint8)


def int_labels(y: np.ndarray, what: str, at) -> np.ndarray:
    """Labels as a flat int64 vector (N or N x 1); floats only where every value is a whole number."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{what} has shape {y.shape}; expected one integer label per image (one-hot: take the argmax)")
    if np.issubdtype(y.dtype, np.integer):
        return y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.floating):
        raise DataError(f"{what} has dtype {y.dtype}; expected integer labels (class names go in the config's classes)")
    bad = ~np.isfinite(y) | (y != np.round(y))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{at(i)} holds {y[i]}, not an integer label")
    return y.astype(np.int64)


def check_labels(splits: dict, classes, label_at: dict) -> list[str]:
    """Check labels 0..K-1 against the classes and return the class names.

    K is ``len(classes)`` when the config names them, else the largest training label + 1;
    every class must have training images, and the test split may hold no other class.
    ``label_at[split]`` is ``(what, at)`` as for :func:`int_labels`.
    """
    y_train = splits["train"][1]
    k = len(classes) if classes else int(y_train.max()) + 1
    if k < 2:
        raise DataError(f"{label_at['train'][0]}: only {k} class; at least two are needed")
    for split in SPLITS:
        y = splits[split][1]
        what, at = label_at[split]
        bad = (y < 0) | (y >= k) if classes else y < 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{at(i)} holds label {y[i]}, outside 0..{k - 1}"
                            + (f" (the config names {k} classes)" if classes else ""))
        if (y >= k).any():
            i = int(np.flatnonzero(y >= k)[0])
            raise DataError(f"{at(i)} holds label {y[i]}, a class unknown to train (whose labels are 0..{k - 1})")
    missing = sorted(set(range(k)) - set(y_train.tolist()))
    if missing:
        raise DataError(f"{label_at['train'][0]} has no image of class {missing[0]}; "
                        f"every class 0..{k - 1} needs training images")
    return list(classes) if classes else [str(i) for i in range(k)]


# ----------------------------------------------------------------------------- the three sources


def _read_npz(path) -> tuple[dict, dict, str]:
    path = Path(path)
    arrays = read_npz_arrays(path, NPZ_KEYS)
    splits, label_at = {}, {}
    for split in SPLITS:
        xs, ys = f"x_{split}", f"y_{split}"
        x = arrays[xs][..., None] if arrays[xs].ndim == 3 else arrays[xs]
        if x.ndim != 4 or x.shape[-1] not in (1, 3) or len(x) == 0:
            raise DataError(f"{path}: array '{xs}' has shape {arrays[xs].shape}; "
                            "expected (N, H, W), (N, H, W, 1) or (N, H, W, 3) with N > 0")
        label_at[split] = (f"{path}: array '{ys}'", lambda i, ys=ys: f"{path}: array '{ys}' row {i}")
        y = int_labels(arrays[ys], *label_at[split])
        if len(y) != len(x):
            raise DataError(f"{path}: '{xs}' has {len(x)} images but '{ys}' has {len(y)} labels")
        x = to_uint8(x, f"{path}: array '{xs}'", lambda i, xs=xs: f"{path}: array '{xs}' image {i[0]}, pixel {i[1:]}")
        splits[split] = (np.ascontiguousarray(x), y)
    if splits["test"][0].shape[1:] != splits["train"][0].shape[1:]:
        raise DataError(f"{path}: 'x_test' images are {_hwc(splits['test'][0])} but 'x_train' images are "
                        f"{_hwc(splits['train'][0])} (H x W x channels); both splits need one shape")
    return splits, label_at, str(arrays["x_train"].dtype)


def _hwc(x) -> str:
    return "x".join(map(str, x.shape[1:]))


def _read_csv(path, shape) -> tuple[tuple, tuple, str]:
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        df = pd.read_csv(path, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable CSV file ({e}; line numbers count the header as line 1)") from e
    if "label" not in df.columns:
        raise DataError(f"{path}: no column 'label' (the header starts {', '.join(map(str, df.columns[:3]))}); "
                        "every split needs its labels")
    pixels = [c for c in df.columns if c != "label"]
    if len(pixels) != int(np.prod(shape)):
        raise DataError(f"{path}: {len(pixels)} pixel columns, but the configured shape {list(shape)} "
                        f"needs {int(np.prod(shape))}")
    if df.empty:
        raise DataError(f"{path}: no data rows")
    if df.isna().any(axis=None):
        r, c = _first(df.isna().to_numpy())
        raise DataError(f"{path}: line {r + 2}, column '{df.columns[c]}' is empty (a short row or a missing value)")
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            r = int(np.flatnonzero(pd.to_numeric(df[col], errors="coerce").isna())[0])
            raise DataError(f"{path}: line {r + 2}, column '{col}' is {df[col].iloc[r]!r}, not a number")
    px = df[pixels].to_numpy()
    x = to_uint8(px, str(path), lambda i: f"{path}: line {i[0] + 2}, column '{pixels[i[1]]}'")
    x = x.reshape(len(df), *shape, *([1] if len(shape) == 2 else []))
    label_at = (f"{path}: column 'label'", lambda i: f"{path}: line {i + 2}, column 'label'")
    return (np.ascontiguousarray(x), int_labels(df["label"].to_numpy(), *label_at)), label_at, str(px.dtype)


def _class_files(folder: Path) -> list[Path]:
    files = _visible(folder)
    for p in files:
        if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{p}: not a {', '.join(IMAGE_SUFFIXES)} image file (a class folder holds images only)")
    if not files:
        raise DataError(f"{folder}: empty class folder (no {', '.join(IMAGE_SUFFIXES)} images)")
    return files


def _decode(path: Path, resize) -> np.ndarray:
    """One image as uint8 H x W x C (C = 1 for grey, 3 for colour; alpha is dropped)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()  # decodes everything: a truncated file fails here
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                raise DataError(f"{path}: a {im.mode} image (16-bit or float); save it as 8-bit grey or RGB")
            im = im.convert("L" if im.mode in ("1", "L", "LA") else "RGB")
            if resize:
                im = im.resize((resize[1], resize[0]), Image.Resampling.BILINEAR)
            x = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: not an image, or a truncated one ({e})") from e
    return x[..., None] if x.ndim == 2 else x


def _read_folder(root, resize, classes) -> tuple[dict, list]:
    root = Path(root)
    files = {}
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            raise DataError(f"{folder}: folder not found (expected {root}/train/<class>/ and {root}/test/<class>/)")
        entries = _visible(folder)
        for p in entries:
            if not p.is_dir():
                raise DataError(f"{p}: a file outside any class folder (expected {folder}/<class>/<image>)")
        if not entries:
            raise DataError(f"{folder}: no class folders")
        files[split] = {p.name: _class_files(p) for p in entries}
    names = sorted(files["train"])
    if classes and sorted(classes) != names:
        raise DataError(f"{root / 'train'}: class folders {names} differ from the config's classes {list(classes)}")
    names = list(classes) if classes else names
    if len(names) < 2:
        raise DataError(f"{root / 'train'}: only {len(names)} class folder ({names[0]}); at least two are needed")
    for name in files["test"]:
        if name not in names:
            raise DataError(f"{root / 'test' / name}: class '{name}' is unknown to train (classes: {', '.join(names)})")
    splits, first = {}, None
    for split in SPLITS:
        xs, ys = [], []
        for k, name in enumerate(names):
            for p in files[split].get(name, []):
                x = _decode(p, resize)
                first = first or (p, x.shape)
                if x.shape[2] != first[1][2]:
                    raise DataError(f"{p}: {x.shape[2]} channel(s), but {first[0]} has {first[1][2]}; "
                                    "save every image as grey or every image as RGB")
                if x.shape != first[1]:
                    raise DataError(f"{p}: {x.shape[0]}x{x.shape[1]} pixels (H x W), but {first[0]} is "
                                    f"{first[1][0]}x{first[1][1]}; set resize: [H, W] to read mixed sizes")
                xs.append(x)
                ys.append(k)
        splits[split] = (np.stack(xs), np.asarray(ys, np.int64))
    return splits, names


def read_own_dataset(spec: dict) -> OwnDataset:
    """Read and check one ``datasets.<name>`` entry of the config (see config/schema.yaml)."""
    source = spec["source"]
    if source == "folder":
        splits, classes = _read_folder(spec["path"], spec.get("resize"), spec.get("classes"))
        return OwnDataset(splits, classes, "uint8")
    if source == "npz":
        splits, label_at, dtype = _read_npz(spec["path"])
    elif source == "csv":
        splits, label_at, dtypes = {}, {}, []
        for split in SPLITS:
            splits[split], label_at[split], dtype = _read_csv(spec[split], spec["shape"])
            dtypes.append(dtype)
        dtype = str(np.result_type(*dtypes))
    else:
        raise ValueError(f"unknown dataset source '{source}' (use npz, folder or csv)")
    return OwnDataset(splits, check_labels(splits, spec.get("classes"), label_at), dtype)


def build_own_dataset(name: str, spec: dict, h5_path, manifest_path) -> dict:
    """Read, check and write one named dataset: ``h5_path`` (as :func:`anatomy.io.write_dataset_h5`) and
    ``manifest_path`` (names, counts per split and class, shape, checksums of the inputs). Returns the manifest."""
    ds = read_own_dataset(spec)
    checksums = input_checksums(spec)
    x_train = ds.splits["train"][0]
    manifest = {
        "name": name,
        "source": spec["source"],
        "spec": spec,
        "classes": ds.classes,
        "shape": list(x_train.shape[1:]),
        "channels": int(x_train.shape[-1]),
        "dtype": "uint8",
        "source_dtype": ds.source_dtype,
        "sizes": {s: int(len(y)) for s, (_, y) in ds.splits.items()},
        "counts": {s: {c: int((y == k).sum()) for k, c in enumerate(ds.classes)} for s, (_, y) in ds.splits.items()},
        "checksums": checksums,
    }
    digest = next(iter(checksums.values())) if len(checksums) == 1 else \
        hashlib.sha256(json.dumps(checksums, sort_keys=True).encode()).hexdigest()
    write_dataset_h5(h5_path, ds.splits, source=f"{spec['source']}:{name}", sha256=digest, classes=ds.classes)
    try:
        write_json(manifest_path, manifest)
    except BaseException:
        Path(h5_path).unlink(missing_ok=True)
        raise
    return manifest
