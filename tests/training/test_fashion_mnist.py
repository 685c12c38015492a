"""Fashion-MNIST: the idx reader, the official split kept as it is, and the commands on real files.

Every test reads the real files of Debian's ``dataset-fashion-mnist`` (CI installs it, and
sets SPLITNET_REQUIRE_FASHION_MNIST so that a missing copy fails instead of skipping); the
command tests run on a small slice of them written as an idx folder, so they take seconds.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
from conftest import ATOL_FP32, splitrun
from PIL import Image

from splitnet.framework.errors import SplitnetError
from splitnet.framework.images import preprocess
from splitnet.training import holdout_split, load_dataset, load_splits
from splitnet.training.data import VALIDATION_FRACTION
from splitnet.training.idx import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_ENV,
    FASHION_MNIST_MODEL,
    IDX_FILES,
    fashion_mnist_dir,
    load_fashion_mnist,
    load_idx_folder,
    missing_files,
    read_idx,
)
from splitnet.zoo import get_model_spec

TINY_SHAPE = (1, 3, 32, 32)
SLICE = {"train": 240, "test": 60}  # images of each official split in the sliced folder
TINY = ["--model", "resnet_tiny", "--multiple", "4", "--branches", "2"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def fashion() -> Path:
    folder = fashion_mnist_dir()
    if missing_files(folder):
        message = f"Fashion-MNIST is not in {folder}: apt-get install -y dataset-fashion-mnist"
        if os.environ.get("SPLITNET_REQUIRE_FASHION_MNIST"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as handle:
        handle.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture(scope="module")
def fashion_slice(fashion, tmp_path_factory) -> Path:
    """The first images of each official split of the real files, as an idx folder of their own."""
    folder = tmp_path_factory.mktemp("fashion-slice")
    for part, stems in IDX_FILES.items():
        for stem in stems:
            _write_idx(folder / f"{stem}.gz", read_idx(fashion / f"{stem}.gz", SLICE[part]))
    return folder


def test_the_real_files_hold_70000_labelled_images_in_the_official_split(fashion):
    train_labels = read_idx(fashion / "train-labels-idx1-ubyte.gz")
    test_labels = read_idx(fashion / "t10k-labels-idx1-ubyte.gz")
    assert (len(train_labels), len(test_labels)) == (60000, 10000)
    assert list(np.bincount(train_labels)) == [6000] * 10 and list(np.bincount(test_labels)) == [1000] * 10
    first = read_idx(fashion / "train-images-idx3-ubyte.gz", limit=3)
    assert first.shape == (3, 28, 28) and first.dtype == np.uint8 and first.max() > 200


def test_fashion_mnist_keeps_its_test_split_and_cuts_validation_from_training(fashion):
    """The registered loader on every real image: 55,000 / 5,000 / the official 10,000."""
    spec = get_model_spec(FASHION_MNIST_MODEL)
    splits = load_splits("fashion-mnist", spec.input_shape, spec.preprocessing)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (55000, 5000, 10000)
    assert list(np.bincount(splits.validation.labels)) == [500] * 10
    assert list(np.bincount(splits.train.labels)) == [5500] * 10
    assert splits.test.classes == FASHION_MNIST_CLASSES and splits.watched is splits.validation
    assert np.array_equal(splits.test.labels, read_idx(fashion / "t10k-labels-idx1-ubyte.gz"))  # as it is, in order
    raw = read_idx(fashion / "t10k-images-idx3-ubyte.gz", limit=2)
    for i in range(2):  # the same preprocessing as splitrun --images, with the model's normalisation
        want = preprocess(Image.fromarray(raw[i], mode="L"), spec.input_shape, spec.preprocessing)
        assert np.array_equal(splits.test.images[i : i + 1], want)
    assert "official test split: 10000 images" in splits.test.description


def test_the_validation_slice_comes_from_training_images_only(fashion):
    splits = load_fashion_mnist(TINY_SHAPE, limit=360)
    train_raw = read_idx(fashion / "train-images-idx3-ubyte.gz", limit=360)
    test_raw = read_idx(fashion / "t10k-images-idx3-ubyte.gz", limit=360)
    as_train = {preprocess(Image.fromarray(p, mode="L"), TINY_SHAPE).tobytes() for p in train_raw}
    as_test = {preprocess(Image.fromarray(p, mode="L"), TINY_SHAPE).tobytes() for p in test_raw}
    validation = {image.tobytes() for image in splits.validation.images}
    training = {image.tobytes() for image in splits.train.images}
    assert validation <= as_train and not validation & as_test and not validation & training
    assert len(splits.validation) + len(splits.train) == 360 and len(splits.test) == 360
    assert len(splits.validation) == pytest.approx(360 * VALIDATION_FRACTION, abs=10)
    again = load_fashion_mnist(TINY_SHAPE, limit=360)
    assert np.array_equal(again.validation.labels, splits.validation.labels)  # seeded: the same every time


def test_digits_keeps_its_held_out_split():
    splits = load_splits("digits", TINY_SHAPE)
    before = holdout_split(load_dataset("digits", TINY_SHAPE))
    assert splits.validation is None and splits.watched is splits.test
    assert np.array_equal(splits.test.labels, before.test.labels) and len(splits.test) == 359
    assert np.array_equal(splits.test.images, before.test.images)


def test_an_idx_folder_is_a_data_set_with_its_own_split(fashion_slice):
    splits = load_splits(str(fashion_slice), TINY_SHAPE)
    assert len(splits.test) == SLICE["test"] and len(splits.train) + len(splits.validation) == SLICE["train"]
    assert splits.test.name == fashion_slice.name and splits.test.classes == tuple(str(c) for c in range(10))
    with pytest.raises(SplitnetError, match="own train/test split"):
        load_dataset(str(fashion_slice), TINY_SHAPE)


@pytest.mark.parametrize("case", ["missing file", "bad magic", "truncated", "not gzip", "count mismatch", "label"])
def test_broken_idx_files_are_one_line(fashion_slice, tmp_path, case):
    folder = tmp_path / "idx"
    folder.mkdir()
    for path in fashion_slice.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    expected = {
        "missing file": "lacks t10k-labels-idx1-ubyte",
        "bad magic": "not an idx file",
        "truncated": "truncated",
        "not gzip": "cannot be read",
        "count mismatch": "are not N greyscale images and N labels",
        "label": "has label 12",
    }[case]
    if case == "missing file":
        labels.unlink()
    elif case == "bad magic":
        with gzip.open(labels, "wb") as handle:
            handle.write(b"\x00\x00\x0d\x01" + bytes(8))
    elif case == "truncated":
        with gzip.open(labels, "wb") as handle:
            handle.write(bytes([0, 0, 8, 1]) + np.asarray([1000], dtype=">u4").tobytes() + bytes(10))
    elif case == "not gzip":
        labels.write_bytes(b"plain text, not gzip")
    elif case == "count mismatch":
        _write_idx(labels, np.zeros(SLICE["test"] - 1, dtype=np.uint8))
    else:
        _write_idx(labels, np.full(SLICE["test"], 12, dtype=np.uint8))
    with pytest.raises(SplitnetError, match=expected) as err:
        load_idx_folder(folder, TINY_SHAPE, classes=FASHION_MNIST_CLASSES)
    assert "\n" not in err.value.one_line() and "fix:" in err.value.one_line()


@pytest.mark.parametrize("command", ["train", "accuracy"])
def test_missing_fashion_mnist_says_the_apt_command(tmp_path, command):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    args = ["--dataset", "fashion-mnist", "--out", str(tmp_path / "out")]
    extra = ["--no-boards"] if command == "accuracy" else []
    result = splitrun(command, *args, *extra, env={FASHION_MNIST_ENV: str(empty)})
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: Fashion-MNIST is not installed"), result.stderr
    assert "apt-get install -y dataset-fashion-mnist" in lines[0] and "Traceback" not in result.stderr


def test_fashion_mnist_trains_its_own_model_unless_told_otherwise():
    from splitnet.commands.train import model_for

    assert model_for(Namespace(model=None, dataset="fashion-mnist")) == FASHION_MNIST_MODEL
    assert model_for(Namespace(model=None, dataset="digits")) == "resnet18_v1_thumb16"
    assert model_for(Namespace(model="resnet_tiny", dataset="fashion-mnist")) == "resnet_tiny"
    spec = get_model_spec(FASHION_MNIST_MODEL)
    assert spec.input_shape == (1, 3, 28, 28) and spec.preprocessing.name == "Fashion-MNIST mean/std"


@pytest.fixture(scope="module")
def fashion_params(fashion_slice, tmp_path_factory):
    """``splitrun train --dataset fashion-mnist`` (resnet_tiny, one epoch) on the real slice."""
    out = tmp_path_factory.mktemp("fashion-params")
    args = ["--epochs", "1", "--split-epochs", "1", "--branch-dropout", "0.5", "--out", str(out)]
    result = splitrun("train", *TINY, "--dataset", "fashion-mnist", *args, env={FASHION_MNIST_ENV: str(fashion_slice)})
    assert result.returncode == 0, result.stderr
    return out, result


def test_train_records_the_test_split_and_the_validation_slice(fashion_params, fashion_slice):
    out, result = fashion_params
    validation = load_idx_folder(fashion_slice, TINY_SHAPE).validation
    entries = {e["n"]: e for e in json.loads((out / "manifest.json").read_text())["entries"]}
    assert set(entries) == {1, 2}
    for entry in entries.values():
        assert entry["dataset"] == "fashion-mnist" and entry["file"].startswith("resnet_tiny-fashion-mnist")
        assert "official test split: 60 images" in entry["dataset_description"]
        assert entry["validation_images"] == len(validation)
        assert 0.0 <= entry["top1"] <= entry["top5"] <= 1.0 and 0.0 <= entry["validation_top1"] <= 1.0
        assert "--dataset fashion-mnist" in entry["command"]
    assert f"{len(validation)} validation images" in " ".join((result.stdout + result.stderr).split())


@pytest.mark.boards
def test_accuracy_on_fashion_mnist_through_local_boards(fashion_params, fashion_slice, tmp_path):
    out, _ = fashion_params
    report = tmp_path / "report"
    env = {"SPLITNET_PARAMS_DIR": str(out), FASHION_MNIST_ENV: str(fashion_slice)}
    args = ["--dataset", "fashion-mnist", "--limit", "6", "--out", str(report)]
    result = splitrun("accuracy", *TINY, *args, env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads((report / "accuracy.json").read_text())
    assert data["test_images"] == SLICE["test"] and "Fashion-MNIST" in data["dataset"]
    rows = {(r["n"], r["where"]): r for r in data["rows"]}
    assert rows[(1, "in-process")]["images"] == SLICE["test"] and rows[(2, "boards")]["images"] == 6
    split = rows[(2, "in-process")]
    assert split["target_drop"] == 0.01 and split["target_lost"] == 0.10
    assert split["lost_cost"] == pytest.approx(split["top1"] - split["degraded_worst"])
    assert split["meets_lost_target"] == (split["lost_cost"] <= 0.10 + 1e-12)
    assert all(r["fidelity"] <= ATOL_FP32 for r in data["rows"] if r["where"] == "boards") and data["fidelity_ok"]
    assert "lost ≤10:" in (report / "accuracy.md").read_text()


def test_weights_trained_on_another_data_set_are_named(fashion_params, tmp_path):
    out, _ = fashion_params
    args = ["--dataset", "digits", "--no-boards", "--out", str(tmp_path / "report")]
    result = splitrun("accuracy", *TINY, *args, env={"SPLITNET_PARAMS_DIR": str(out)})
    assert result.returncode == 0, result.stderr
    assert "trained on fashion-mnist, not digits" in " ".join(result.stderr.split())


def test_shipped_fashion_mnist_entries_are_complete():
    from splitnet.zoo import params_dir

    entries = [e for e in json.loads((params_dir() / "manifest.json").read_text())["entries"]]
    shipped = {e["n"]: e for e in entries if e["model"] == FASHION_MNIST_MODEL}
    assert set(shipped) == {1, 2, 4}
    for entry in shipped.values():
        assert entry["dataset"] == "fashion-mnist" and entry["dtype"] == "float16"
        assert "official test split: 10000 images" in entry["dataset_description"]
        assert entry["validation_images"] == 5000 and "--dataset fashion-mnist" in entry["command"]
        assert entry["n"] == 1 or entry["branch_dropout"] > 0  # what ships tolerates a lost board


@pytest.mark.slow
def test_shipped_fashion_mnist_params_reproduce_their_recorded_accuracy(fashion, monkeypatch):
    """The shipped reference and its splits, in-process, on all 10,000 official test images."""
    from splitnet.training.accuracy import AccuracyOptions, measure
    from splitnet.zoo import params_dir

    monkeypatch.delenv("SPLITNET_PARAMS_DIR", raising=False)
    entries = json.loads((params_dir() / "manifest.json").read_text())["entries"]
    recorded = {e["n"]: e for e in entries if e["model"] == FASHION_MNIST_MODEL}
    options = AccuracyOptions(model=FASHION_MNIST_MODEL, dataset="fashion-mnist", branches=(2, 4), boards=False)
    report = measure(options)
    assert report.trained and report.test_images == 10000
    for row in report.rows:
        assert abs(row.top1 - recorded[row.n]["top1"]) <= 1 / 10000, (row.n, row.top1, recorded[row.n]["top1"])
        assert abs(row.top5 - recorded[row.n]["top5"]) <= 1 / 10000
        assert row.n == 1 or row.weights.startswith("fine-tuned")
