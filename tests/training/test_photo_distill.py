"""Distillation on unlabelled photos (splitrun distill's parts), on the tiny EfficientNet-Lite."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import splitrun
from PIL import Image

from splitnet.framework.errors import SplitnetError
from splitnet.partitioners import partition
from splitnet.training.photo_distill import (
    DistillSettings,
    augment,
    augmented_batch,
    check_disjoint,
    distill,
    load_photos,
    photo_files,
    recalibrate,
    score,
)
from splitnet.training.split_net import TrainableSplit
from splitnet.zoo import load_reference

MODEL = "efficientnet_lite_tiny"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.RandomState(0)
    for i in range(6):  # smooth random "photos": gradients plus noise
        ramp = np.linspace(0, 255, 80)[None, :, None] * rng.uniform(0.2, 1.0, size=(1, 1, 3))
        pixels = np.clip(ramp + rng.normal(0, 30, size=(64, 80, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i}.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = load_reference(MODEL)
    return folder, reference


def _student(reference, n=2):
    return TrainableSplit(partition(reference, n, None, 8), prefix=reference.block.prefix)


def test_augment_gives_the_input_size_and_varies(setup):
    folder, _ = setup
    photos = load_photos(photo_files([folder]))
    rng = np.random.RandomState(1)
    a, b = augment(photos[0], 32, rng), augment(photos[0], 32, rng)
    assert a.size == b.size == (32, 32) and not np.array_equal(np.asarray(a), np.asarray(b))


def test_training_and_evaluation_photos_must_be_disjoint(setup, tmp_path):
    folder, _ = setup
    files = photo_files([folder])
    copy = tmp_path / "renamed.png"
    copy.write_bytes(files[0].read_bytes())  # same content under another name is still an overlap
    with pytest.raises(SplitnetError, match="also evaluation photos"):
        check_disjoint(files, [copy])
    check_disjoint(files[:3], files[3:])
    with pytest.raises(SplitnetError, match="no .jpg or .png"):
        photo_files([tmp_path / "empty"])


def test_recalibration_changes_only_batch_norm_statistics(setup):
    folder, reference = setup
    photos = load_photos(photo_files([folder]), min_side=32)
    student = _student(reference)
    before = student.params()
    recalibrate(student, photos, DistillSettings(batch=4, recalibrate_batches=3), 32, reference.spec.preprocessing)
    after = student.params()
    changed = {k for part in before for k in before[part] if not np.array_equal(before[part][k], after[part][k])}
    assert changed and all(k.endswith(("running_mean", "running_var")) for k in changed)


def test_distillation_moves_the_split_towards_the_teacher(setup):
    folder, reference = setup
    photos = load_photos(photo_files([folder]), min_side=32)
    student = _student(reference)
    prep = reference.spec.preprocessing
    settings = DistillSettings(steps=30, batch=8, lr=3e-3)
    losses = distill(student, reference.block, photos, settings, 32, prep)
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) / 4  # the KL to the teacher falls (train-mode batches)
    x = augmented_batch(photos, 8, 32, prep, np.random.RandomState(5))
    logits = reference.block(x).asnumpy()
    found = score("distilled", student, logits, x.asnumpy(), [3, None, None, None, None, None, None, None])
    assert found.labelled == 1 and found.held_out == 8 and 0 <= found.agree <= 8
    assert 0 <= found.agree_lost <= 8


@pytest.mark.parametrize(
    "args,expected",
    [(["--batch-size", "1"], "--batch-size must be >= 2"), (["--steps", "-1"], "--steps must be >= 0")],
)
def test_splitrun_distill_bad_numbers_are_one_line(args, expected):
    result = splitrun("distill", *args, timeout=120)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and expected in errors[0] and "Traceback" not in result.stderr
