"""Fine-tune a split of a model with published weights by distillation on unlabelled photos.

The fine-tuning of ``splitrun train`` starts from a reference it trained itself on a
labelled set. EfficientNet-Lite0's teacher is the published ImageNet model, and no ImageNet
training set is reachable here, only a few hundred real photos without labels (Debian's
``opencv-doc`` samples, scikit-image's). So the student (the sliced split) learns from the
teacher alone: for every batch, photos are augmented afresh (random resized crop, flip,
colour), the teacher's softened probabilities are the target (``DistillLoss.kl``, no label
term), and the split's parts are updated with Adam. Two cheaper steps come first and are
measured on their own:

* *sliced*: the partitioner's output, untouched;
* *recalibrated*: batch-norm running statistics re-estimated on augmented photos (forward
  passes only). Slicing drops every cross-branch weight, so each layer's activations no
  longer have the statistics the reference's batch norms were fitted to; re-estimating them
  is the cheapest repair there is.

The evaluation photos (the 20 labelled foolbox photos and the held-out scikit-image photos)
must be disjoint from the training photos; :func:`check_disjoint` refuses an overlap by
content hash, not just by name.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from PIL import Image, ImageEnhance

from ..framework.errors import SplitnetError
from ..framework.images import Preprocessing, _to_rgb
from .distill import DistillLoss
from .split_net import TrainableSplit

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class DistillSettings:
    steps: int = 200
    batch: int = 16
    lr: float = 1e-3
    temperature: float = 2.0
    recalibrate_batches: int = 20
    seed: int = 0


def photo_files(folders: Sequence[Path]) -> list[Path]:
    files = sorted(p for folder in folders for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SplitnetError(f"no .jpg or .png photos under {', '.join(map(str, folders))}", "pass folders of photos")
    return files


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_disjoint(training: Sequence[Path], evaluation: Sequence[Path]) -> None:
    """Training and evaluation photos share no file content."""
    shared = {_digest(p) for p in training} & {_digest(p) for p in evaluation}
    if shared:
        raise SplitnetError(
            f"{len(shared)} training photos are also evaluation photos", "keep training and evaluation folders disjoint"
        )


def load_photos(files: Sequence[Path], min_side: int = 64) -> list[Image.Image]:
    photos = []
    for path in files:
        with Image.open(path) as image:
            rgb = _to_rgb(image)
        if min(rgb.size) >= min_side:
            photos.append(rgb)
    return photos


def augment(image: Image.Image, size: int, rng: np.random.RandomState) -> Image.Image:
    """Random resized crop (8-100% of the area, aspect 3/4-4/3), flip, brightness/contrast/colour."""
    w, h = image.size
    for _ in range(10):
        area = w * h * rng.uniform(0.08, 1.0)
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = rng.randint(0, w - cw + 1), rng.randint(0, h - ch + 1)
            break
    else:
        cw, ch, left, top = w, h, 0, 0
    crop = image.crop((left, top, left + cw, top + ch)).resize((size, size), Image.BILINEAR)
    if rng.uniform() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        crop = enhance(crop).enhance(rng.uniform(0.6, 1.4))
    return crop


def augmented_batch(
    photos: Sequence[Image.Image], batch: int, size: int, preprocessing: Preprocessing, rng: np.random.RandomState
) -> mx.nd.NDArray:
    picks = rng.randint(0, len(photos), size=batch)
    arrays = [preprocessing.normalise(np.asarray(augment(photos[i], size, rng))) for i in picks]
    return mx.nd.array(np.concatenate(arrays))


def recalibrate(
    student: TrainableSplit, photos, settings: DistillSettings, size: int, preprocessing: Preprocessing
) -> None:
    """Re-estimate every batch norm's running statistics on augmented photos (forward passes only).

    MXNet's batch norm keeps an exponential average (momentum 0.9); enough batches make the
    old statistics' weight negligible (0.9 ** 20 = 12%). MXNet 1.9 updates that average in the
    backward pass (a forward pass in train mode alone leaves it unchanged, measured), so each
    batch runs backward on a dummy loss; the gradients are discarded, no weight changes.
    """
    rng = np.random.RandomState(settings.seed + 1)
    for _ in range(settings.recalibrate_batches):
        x = augmented_batch(photos, settings.batch, size, preprocessing, rng)
        with autograd.record(train_mode=True):
            out = student(x).sum()
        out.backward()
        mx.nd.waitall()


def distill(
    student: TrainableSplit,
    teacher: Callable[[mx.nd.NDArray], mx.nd.NDArray],
    photos,
    settings: DistillSettings,
    size: int,
    preprocessing: Preprocessing,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Adam on every part of the split, the teacher's softened probabilities as the only target."""
    rng = np.random.RandomState(settings.seed)
    loss_fn = DistillLoss(alpha=1.0, temperature=settings.temperature)
    trainers = [
        gluon.Trainer(block.collect_params(), "adam", {"learning_rate": settings.lr}) for block in student.blocks
    ]
    losses = []
    for step in range(settings.steps):
        x = augmented_batch(photos, settings.batch, size, preprocessing, rng)
        target = teacher(x)
        with autograd.record(train_mode=True):
            loss = loss_fn.kl(student(x), target)
        loss.backward()
        for trainer in trainers:
            trainer.step(settings.batch)
        losses.append(float(loss.mean().asscalar()))
        if on_step is not None:
            on_step(step, losses[-1])
    return losses


@dataclass(frozen=True)
class PhotoScores:
    """A split judged on real photos: labelled accuracy and agreement with the teacher."""

    stage: str
    top1: int
    top5: int
    labelled: int
    agree: int
    agree_lost: float  # mean over which one branch is lost (features zeroed, as the degrade policy does)
    held_out: int
    seconds: float = 0.0


def score(
    stage: str,
    student: TrainableSplit,
    teacher_logits: np.ndarray,
    images: np.ndarray,
    labels: Sequence[int | None],
    seconds: float = 0.0,
) -> PhotoScores:
    """Top-1/top-5 on the labelled images, top-1 agreement with the teacher on all, and with a branch lost."""
    x = mx.nd.array(images)
    logits = student(x).asnumpy()
    labelled = [i for i, label in enumerate(labels) if label is not None]
    order = np.argsort(-logits, axis=1)
    top1 = sum(int(order[i, 0] == labels[i]) for i in labelled)
    top5 = sum(int(labels[i] in order[i, :5]) for i in labelled)
    teacher_top = teacher_logits.argmax(axis=1)
    agree = int((logits.argmax(axis=1) == teacher_top).sum())
    n = student.branch_count
    lost = []
    for b in range(n):
        keep = np.ones((len(images), n), dtype=np.float32)
        keep[:, b] = 0.0
        lost.append(float((student(x, keep).asnumpy().argmax(axis=1) == teacher_top).sum()))
    return PhotoScores(stage, top1, top5, len(labelled), agree, float(np.mean(lost)), len(images), seconds)


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    began = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - began
