"""Training: data loaders, distillation, reproducibility, resume, and the stored weights."""

from __future__ import annotations

import dataclasses
import json
import warnings

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from splitnet.framework.errors import SplitnetError
from splitnet.training import checkpoint, holdout_split, load_dataset, train
from splitnet.training.data import load_image_folder
from splitnet.training.distill import DistillLoss
from splitnet.training.split_net import branch_dropout_mask
from splitnet.training.train import TrainOptions

TINY_SHAPE = (1, 3, 32, 32)
KL_ZERO_ATOL = 1e-6
QUICK = dict(model="resnet_tiny", branches=(2,), epochs=2, split_epochs=2, limit=64, batch_size=32, multiple=4)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _folder(tmp_path, classes=("cat", "dog"), per_class=3):
    root = tmp_path / "images"
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            mode = ("RGB", "L", "RGBA")[i % 3]
            Image.new(mode, (20 + i, 30), (40 * c + i,) * len(mode)).save(root / name / f"{i}.png")
    return root


# -- data --------------------------------------------------------------------------------
def test_image_folder_one_subfolder_per_class(tmp_path):
    data = load_image_folder(_folder(tmp_path), TINY_SHAPE)
    assert data.classes == ("cat", "dog") and list(data.labels) == [0, 0, 0, 1, 1, 1]
    assert data.images.shape == (6, 3, 32, 32) and data.images.dtype == np.float32
    splits = holdout_split(data)
    assert len(splits.test) == 2 and sorted(splits.test.labels) == [0, 1]  # one per class, stratified


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "does not exist"),
        ("empty", "has no class subfolders"),
        ("one class", "has one class"),
        ("non-image", "notes.txt is not a readable image"),
        ("empty class", "has no images"),
        ("a file", "is not a folder"),
    ],
)
def test_image_folder_bad_input_is_one_line(tmp_path, case, expected):
    root = tmp_path / "data"
    if case == "empty":
        root.mkdir()
    elif case == "one class":
        root = _folder(tmp_path, classes=("only",))
    elif case == "non-image":
        root = _folder(tmp_path)
        (root / "dog" / "notes.txt").write_text("not an image")
    elif case == "empty class":
        root = _folder(tmp_path)
        (root / "bird").mkdir()
    elif case == "a file":
        root.write_text("x")
    with pytest.raises(SplitnetError, match=expected) as err:
        load_dataset(str(root), TINY_SHAPE)
    assert "\n" not in err.value.one_line() and "fix:" in err.value.one_line()


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(SplitnetError, match="unknown dataset 'mnist'") as err:
        load_dataset("mnist", TINY_SHAPE)
    assert "digits" in err.value.one_line()


def test_digits_is_real_labelled_data_with_a_fixed_holdout():
    data = load_dataset("digits", TINY_SHAPE)
    assert len(data) == 1797 and data.classes == tuple("0123456789")
    assert np.bincount(data.labels).min() >= 170  # every digit is there, labels from the data set
    assert "scikit-learn" in data.description
    a, b = holdout_split(data), holdout_split(data)
    np.testing.assert_array_equal(a.test.labels, b.test.labels)
    assert len(a.train) + len(a.test) == 1797 and 350 <= len(a.test) <= 370
    np.testing.assert_array_equal(np.bincount(a.test.labels) >= 34, True)


# -- losses ------------------------------------------------------------------------------
def test_distillation_loss_parts():
    rng = np.random.RandomState(0)
    student = mx.nd.array(rng.normal(size=(8, 10)))
    teacher = mx.nd.array(rng.normal(size=(8, 10)))
    labels = mx.nd.array(rng.randint(0, 10, size=8))
    loss = DistillLoss(alpha=0.5, temperature=4.0)
    assert np.abs(loss.kl(teacher, teacher).asnumpy()).max() < KL_ZERO_ATOL
    assert (loss.kl(student, teacher).asnumpy() > 0).all()
    only_labels = DistillLoss(alpha=0.0)(student, labels, teacher).asnumpy()
    np.testing.assert_allclose(only_labels, loss.cross_entropy(student, labels).asnumpy(), rtol=1e-6)


def test_branch_dropout_drops_at_most_one_branch_per_sample():
    keep = branch_dropout_mask(1000, 4, 0.3, np.random.RandomState(0))
    lost = (keep == 0).sum(axis=1)
    assert set(np.unique(lost)) == {0, 1} and 0.25 < lost.mean() < 0.35
    assert branch_dropout_mask(10, 1, 0.5, np.random.RandomState(0)) is None


# -- training ----------------------------------------------------------------------------
def _weights(out, result):
    return [(out / s.file).read_bytes() for s in result.stages]


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    a = train(TrainOptions(**QUICK | {"epochs": 1, "split_epochs": 1}, out=tmp_path / "a"))
    b = train(TrainOptions(**QUICK | {"epochs": 1, "split_epochs": 1}, out=tmp_path / "b"))
    c = train(TrainOptions(**QUICK | {"epochs": 1, "split_epochs": 1, "seed": 1}, out=tmp_path / "c"))
    assert _weights(tmp_path / "a", a) == _weights(tmp_path / "b", b)
    assert _weights(tmp_path / "a", a)[0] != _weights(tmp_path / "c", c)[0]
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())["entries"]
    assert {(e["model"], e["n"]) for e in manifest} == {("resnet_tiny", 1), ("resnet_tiny", 2)}


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    whole = train(TrainOptions(**QUICK, out=tmp_path / "whole"))
    real_save, saves = checkpoint.save, []

    def save_then_stop(*args, **kwargs):
        real_save(*args, **kwargs)
        saves.append(args[0])
        if len(saves) == 3:  # reference done (2 epochs), split N=2 after its first epoch
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(TrainOptions(**QUICK, out=tmp_path / "cut"))
    monkeypatch.setattr(checkpoint, "save", real_save)
    state = json.loads((tmp_path / "cut" / "checkpoints" / "n2" / "state.json").read_text())
    assert state["epoch"] == 1
    resumed = train(TrainOptions(**QUICK, out=tmp_path / "cut", resume=True))
    assert [len(s.history) for s in resumed.stages] == [2, 2]
    assert _weights(tmp_path / "whole", whole) == _weights(tmp_path / "cut", resumed)


def test_resume_with_other_settings_is_refused(tmp_path):
    train(TrainOptions(**QUICK | {"epochs": 1, "split_epochs": 1}, out=tmp_path))
    with pytest.raises(SplitnetError, match="other settings"):
        train(TrainOptions(**QUICK | {"epochs": 1, "split_epochs": 1, "lr": 0.1}, out=tmp_path, resume=True))


def test_fine_tuning_reduces_the_distillation_loss(tmp_path):
    result = train(
        TrainOptions(**QUICK | {"epochs": 2, "split_epochs": 3, "limit": 128}, alpha=1.0, out=tmp_path)
    )  # alpha 1: the loss is the distillation term alone
    losses = [h.loss for h in result.stages[1].history]
    assert losses[-1] < losses[0], losses


def test_bad_training_options_are_one_line():
    for change, expected in [
        ({"epochs": 0}, "--epochs"),
        ({"alpha": 2.0}, "--alpha"),
        ({"branches": (9,)}, "between 1 and 8"),
        ({"branches": (1, 2)}, "N=1 is the reference"),
        ({"branch_dropout": 1.0}, "--branch-dropout"),
    ]:
        with pytest.raises(SplitnetError, match=expected):
            train(dataclasses.replace(TrainOptions(**QUICK), **change))


def test_train_command_shows_progress_and_records_its_command(tmp_path):
    from conftest import splitrun

    out = tmp_path / "trained"
    args = ["--model", "resnet_tiny", "--branches", "2", "--multiple", "4", "--epochs", "1", "--split-epochs", "1"]
    result = splitrun("train", *args, "--limit", "32", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Trained on digits" in result.stdout and "N=2" in result.stdout
    assert "loss" in result.stderr and "held-out" in result.stderr and "split N=2" in result.stderr
    entries = json.loads((out / "manifest.json").read_text())["entries"]
    assert [e["n"] for e in entries] == [1, 2]
    assert all(e["command"].startswith("splitrun train --model resnet_tiny") for e in entries)
    assert "--limit 32" in entries[0]["command"] and entries[1]["widths"] == [0.5, 0.5]
