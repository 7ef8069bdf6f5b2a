"""anatomy.data.digits: the Kaggle Digit Recognizer CSVs (validated reads, writes, the derived split)."""

from __future__ import annotations

import re
import string
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from anatomy.data.digits import (
    PIXELS,
    TRAIN_HEADER,
    build_digits,
    derive_split,
    read_digits_csv,
    write_digits_csv,
)
from anatomy.data.sources import DataError
from anatomy.io import write_dataset_h5

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _digits(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)


def _lines(path) -> list[str]:
    return Path(path).read_text().splitlines()


def _write_lines(path, lines) -> Path:
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def _set_cell(line: str, col: int, token: str) -> str:
    cells = line.split(",")
    cells[col] = token
    return ",".join(cells)


def _assert_names(msg: str, path, line: int, column: str | None):
    assert str(path) in msg, msg
    assert re.search(rf"\bline {line}\b", msg), msg
    if column is not None:
        assert f"'{column}'" in msg, msg


# --------------------------------------------------------------------- round trips


def test_roundtrip_labelled(tmp_path):
    x, y = _digits(5)
    path = tmp_path / "train.csv"
    write_digits_csv(path, x, y)
    lines = _lines(path)
    assert lines[0] == ",".join(TRAIN_HEADER)
    assert len(lines) == 6 and all(len(l.split(",")) == 785 for l in lines)
    rx, ry = read_digits_csv(path, labelled=True)
    assert rx.dtype == np.uint8 and rx.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(rx, x)
    np.testing.assert_array_equal(ry, y)


def test_roundtrip_unlabelled(tmp_path):
    x, _ = _digits(4, seed=1)
    path = tmp_path / "test.csv"
    write_digits_csv(path, x)
    assert _lines(path)[0] == ",".join(PIXELS)
    rx, ry = read_digits_csv(path, labelled=False)
    assert ry is None
    np.testing.assert_array_equal(rx, x)


def test_reading_with_the_wrong_kind_fails(tmp_path):
    x, y = _digits(2)
    path = tmp_path / "train.csv"
    write_digits_csv(path, x, y)
    with pytest.raises(DataError, match="line 1"):
        read_digits_csv(path, labelled=False)


def test_crlf_line_endings_accepted(tmp_path):
    x, y = _digits(3, seed=5)
    path = tmp_path / "train.csv"
    write_digits_csv(path, x, y)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    rx, ry = read_digits_csv(path, labelled=True)
    np.testing.assert_array_equal(rx, x)
    np.testing.assert_array_equal(ry, y)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_digits_csv(tmp_path / "absent.csv", labelled=True)


def test_header_only_file(tmp_path):
    path = _write_lines(tmp_path / "train.csv", [",".join(TRAIN_HEADER)])
    with pytest.raises(DataError, match="no data rows"):
        read_digits_csv(path, labelled=True)


# --------------------------------------------------------------------- bad inputs


def _wrong_header(lines):
    lines[0] = lines[0].replace("label", "lable", 1)
    return 1, "label"


def _short_row(lines):
    lines[2] = lines[2].rsplit(",", 1)[0]  # 783 pixels
    return 3, "pixel783"


def _cell(row: int, col: int, token: str, expect: tuple):
    """A corruption that writes ``token`` into one cell; ``expect`` = (line, column) the error must name."""
    def corrupt(lines):
        lines[row] = _set_cell(lines[row], col, token)
        return expect
    return corrupt


_pixel_300 = _cell(3, 11, "300", (4, "pixel10"))
_label_10 = _cell(1, 0, "10", (2, "label"))
_letters = _cell(2, 6, "abc", (3, "pixel5"))
_decimal = _cell(3, 784, "1.5", (4, "pixel783"))
_negative = _cell(2, 1, "-3", (3, "pixel0"))


def _blank_line(lines):
    lines.insert(2, "")
    return 3, "label"


def _header_missing_column(lines):
    lines[0] = lines[0].rsplit(",", 1)[0]
    return 1, "pixel783"


def _error_after(tmp_path, x, y, corrupt, name="train.csv"):
    """Write x (and labels y) as a Kaggle CSV, let ``corrupt`` edit its lines, read it back:
    -> (path, the DataError's message, what ``corrupt`` returned)."""
    path = tmp_path / name
    write_digits_csv(path, x, y)
    lines = _lines(path)
    expect = corrupt(lines)
    _write_lines(path, lines)
    with pytest.raises(DataError) as e:
        read_digits_csv(path, labelled=y is not None)
    return path, str(e.value), expect


def _extra_column(row: int):
    def corrupt(lines):
        lines[row] += ",7"
    return corrupt


@pytest.mark.parametrize("corrupt", [_wrong_header, _short_row, _pixel_300, _label_10, _letters, _blank_line,
                                     _decimal, _negative, _header_missing_column],
                         ids=["wrong_header", "short_row", "pixel_300", "label_10", "letters", "blank_line",
                              "decimal", "negative", "header_missing_column"])
def test_bad_input_names_file_line_column(tmp_path, corrupt):
    path, message, (line, column) = _error_after(tmp_path, *_digits(4, seed=2), corrupt)
    _assert_names(message, path, line, column)


def test_wrong_header_message_shows_both_names(tmp_path):
    _, message, _ = _error_after(tmp_path, *_digits(1), _wrong_header)
    assert "'lable'" in message and "'label'" in message and "column 1" in message


def test_extra_column_names_line_and_field_count(tmp_path):
    path, message, _ = _error_after(tmp_path, *_digits(4, seed=3), _extra_column(2))
    _assert_names(message, path, 3, None)
    assert "786" in message  # the position of the surplus column


def test_unlabelled_pixel_out_of_range(tmp_path):
    x, _ = _digits(3, seed=4)
    path, message, _ = _error_after(tmp_path, x, None, _cell(3, 0, "256", None), name="test.csv")
    _assert_names(message, path, 4, "pixel0")


def test_extra_column_on_only_row_rejected(tmp_path):
    x, y = np.zeros((1, 28, 28, 1), np.uint8), np.array([5])
    x[0, 0, 0, 0] = 3  # after the shift it would pass as the label
    path, message, _ = _error_after(tmp_path, x, y, _extra_column(1))
    _assert_names(message, path, 2, None)


def test_extra_column_on_first_row_names_line_2(tmp_path):
    path, message, _ = _error_after(tmp_path, *_digits(3, seed=6), _extra_column(1))
    _assert_names(message, path, 2, None)


def test_superscript_digit_is_data_error(tmp_path):
    path, message, _ = _error_after(tmp_path, *_digits(2), _cell(2, 3, "\u00b2", None))
    _assert_names(message, path, 3, "pixel2")


def test_huge_integer_is_data_error(tmp_path):
    x, y = _digits(2)
    path = tmp_path / "train.csv"
    write_digits_csv(path, x, y)
    lines = _lines(path)
    lines[2] = _set_cell(lines[2], 3, "9" * 20)
    _write_lines(path, lines)
    with pytest.raises(DataError) as e:
        read_digits_csv(path, labelled=True)
    _assert_names(str(e.value), path, 3, "pixel2")


# --------------------------------------------------------------------- properties


@FAST
@given(
    x=st.integers(1, 5).flatmap(lambda n: arrays(np.uint8, (n, 28, 28, 1))),
    labelled=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_roundtrip_exact(x, labelled, seed):
    y = np.random.default_rng(seed).integers(0, 10, len(x)) if labelled else None
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.csv"
        write_digits_csv(path, x, y)
        rx, ry = read_digits_csv(path, labelled=labelled)
    np.testing.assert_array_equal(rx, x)
    if labelled:
        np.testing.assert_array_equal(ry, y)
    else:
        assert ry is None


INVALID_TOKENS = st.one_of(
    st.integers(max_value=-1).map(str),
    st.integers(256, 10**9).map(str),
    st.text(alphabet=string.ascii_letters, min_size=1, max_size=6),
    st.just(""),
    st.sampled_from(["1.5", "1e2", "+3", " 4", "0x1f", "NaN"]),
)


@FAST
@given(data=st.data(), n=st.integers(1, 4), labelled=st.booleans(), token=INVALID_TOKENS)
def test_property_one_bad_cell_is_reported_on_its_line(data, n, labelled, token):
    x, y = _digits(n, seed=n)
    ncols = 785 if labelled else 784
    row = data.draw(st.integers(0, n - 1), label="row")
    col = data.draw(st.integers(0, ncols - 1), label="col")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.csv"
        write_digits_csv(path, x, y if labelled else None)
        lines = _lines(path)
        lines[row + 1] = _set_cell(lines[row + 1], col, token)
        _write_lines(path, lines)
        with pytest.raises(DataError) as e:
            read_digits_csv(path, labelled=labelled)
    column = (TRAIN_HEADER if labelled else PIXELS)[col]
    _assert_names(str(e.value), path, row + 2, column)


# --------------------------------------------------------------------- derive_split and build_digits


def test_derive_split_seeded_disjoint_sized():
    n = 50
    x = np.arange(n)[:, None, None, None].astype(np.uint8) * np.ones((1, 28, 28, 1), np.uint8)
    y = np.arange(n) % 10
    (xa, ya), (xb, yb) = derive_split(x, y, train_fraction=0.6, seed=1)
    (xa2, ya2), (xb2, yb2) = derive_split(x, y, train_fraction=0.6, seed=1)
    (xa3, _), _ = derive_split(x, y, train_fraction=0.6, seed=2)
    assert len(xa) == 30 and len(xb) == 20
    np.testing.assert_array_equal(xa, xa2)
    np.testing.assert_array_equal(xb, xb2)
    np.testing.assert_array_equal(ya, ya2)
    ids_a, ids_b = xa[:, 0, 0, 0].astype(int), xb[:, 0, 0, 0].astype(int)
    assert not set(ids_a) & set(ids_b)
    assert sorted(set(ids_a) | set(ids_b)) == list(range(n))
    np.testing.assert_array_equal(ya, ids_a % 10)  # labels travel with their images
    np.testing.assert_array_equal(yb, ids_b % 10)
    assert not np.array_equal(xa3[:, 0, 0, 0], xa[:, 0, 0, 0])


@pytest.mark.parametrize("fraction,n_train", [(0.5, 20), (0.25, 10), (0.9, 36)])
def test_derive_split_sizes(fraction, n_train):
    x, y = _digits(40)
    (xa, _), (xb, _) = derive_split(x, y, train_fraction=fraction, seed=0)
    assert (len(xa), len(xb)) == (n_train, 40 - n_train)


def test_derive_split_refuses_empty_side():
    x, y = _digits(3)
    with pytest.raises(ValueError, match="train_fraction"):
        derive_split(x, y, train_fraction=0.01, seed=0)


def _tiny_mnist_h5(path, n_train=12, n_test=8):
    """Image i carries its id in pixel (0, 0) and its label in pixel (0, 1)."""
    n = n_train + n_test
    x = np.zeros((n, 28, 28, 1), np.uint8)
    x[:, 0, 0, 0] = np.arange(n)
    y = (np.arange(n) * 7) % 10
    x[:, 0, 1, 0] = y
    write_dataset_h5(path, {"train": (x[:n_train], y[:n_train]), "test": (x[n_train:], y[n_train:])},
                     source="test", sha256="0" * 64, classes=[str(i) for i in range(10)])
    return n


def test_build_digits_derived(tmp_path):
    h5 = tmp_path / "mnist.h5"
    n = _tiny_mnist_h5(h5)
    out = tmp_path / "digits"
    counts = build_digits(out, source="derived", seed=3, train_fraction=0.6, mnist_h5=h5)
    assert counts == {"train": 12, "test": 8, "test_labels": 8}
    assert sorted(p.name for p in out.iterdir()) == ["test.csv", "test_labels.csv", "train.csv"]
    xtr, ytr = read_digits_csv(out / "train.csv", labelled=True)
    xte, _ = read_digits_csv(out / "test.csv", labelled=False)
    labels = pd.read_csv(out / "test_labels.csv")
    assert list(labels.columns) == ["ImageId", "Label"]
    assert labels["ImageId"].tolist() == list(range(1, 9))
    # each image's label (carried in its pixels) matches train.csv's label and test_labels.csv's Label
    np.testing.assert_array_equal(ytr, xtr[:, 0, 1, 0])
    np.testing.assert_array_equal(labels["Label"].to_numpy(), xte[:, 0, 1, 0])
    ids_tr, ids_te = set(xtr[:, 0, 0, 0].tolist()), set(xte[:, 0, 0, 0].tolist())
    assert not ids_tr & ids_te and ids_tr | ids_te == set(range(n))
    # seeded: the same seed writes the same files, another seed another split
    again = tmp_path / "again"
    build_digits(again, source="derived", seed=3, train_fraction=0.6, mnist_h5=h5)
    for name in ("train.csv", "test.csv", "test_labels.csv"):
        assert (again / name).read_bytes() == (out / name).read_bytes()
    other = tmp_path / "other"
    build_digits(other, source="derived", seed=4, train_fraction=0.6, mnist_h5=h5)
    assert (other / "test.csv").read_bytes() != (out / "test.csv").read_bytes()


def test_build_digits_kaggle(tmp_path):
    comp = tmp_path / "competition"
    comp.mkdir()
    xtr, ytr = _digits(6, seed=7)
    xte, _ = _digits(3, seed=8)
    write_digits_csv(comp / "train.csv", xtr, ytr)
    write_digits_csv(comp / "test.csv", xte)
    out = tmp_path / "digits"
    counts = build_digits(out, source="kaggle", seed=0, path=comp)
    assert counts == {"train": 6, "test": 3, "test_labels": 0}
    rx, ry = read_digits_csv(out / "train.csv", labelled=True)
    np.testing.assert_array_equal(rx, xtr)
    np.testing.assert_array_equal(ry, ytr)
    np.testing.assert_array_equal(read_digits_csv(out / "test.csv", labelled=False)[0], xte)
    assert (out / "test_labels.csv").read_text().splitlines() == ["ImageId,Label"]


def test_build_digits_kaggle_bad_file_is_reported(tmp_path):
    comp = tmp_path / "competition"
    comp.mkdir()
    xtr, ytr = _digits(2)
    write_digits_csv(comp / "train.csv", xtr, ytr)
    write_digits_csv(comp / "test.csv", xtr)
    lines = _lines(comp / "test.csv")
    lines[2] = _set_cell(lines[2], 0, "x")
    _write_lines(comp / "test.csv", lines)
    out = tmp_path / "digits"
    with pytest.raises(DataError) as e:
        build_digits(out, source="kaggle", seed=0, path=comp)
    _assert_names(str(e.value), comp / "test.csv", 3, "pixel0")
    assert not (out / "train.csv").exists()


def test_build_digits_unknown_source(tmp_path):
    with pytest.raises(ValueError, match="data.digits.source"):
        build_digits(tmp_path, source="web", seed=0)
