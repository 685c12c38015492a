"""Labelled images for training and accuracy: a built-in data set and the user's image folders.

Every image goes through the same preprocessing as ``splitrun --images`` (RGB, short side
resized, centre crop, the model's own normalisation, ImageNet mean/std by default:
:func:`splitnet.framework.images.preprocess`), so a model trained here sees at run time
exactly what it was trained on.

* ``digits``: scikit-learn's handwritten digits (1797 greyscale 8x8 images of 0-9, the UCI
  optical digits test set). The data ship inside the scikit-learn wheel, so nothing is
  downloaded; the 0..16 pixel values are scaled to 0..255 and upsampled by the preprocessing.
* ``fashion-mnist``: Zalando's Fashion-MNIST from Debian's ``dataset-fashion-mnist``
  (:mod:`splitnet.training.idx`), with its own official train/test split.
* an image folder: one subfolder per class (the subfolder's name is the label), images in
  any format pillow reads; or a folder of MNIST-format idx files (``train-images-idx3-ubyte``
  and the other three, gzipped or not), read with their own train/test split.

A loader returns either a whole :class:`LabelledSet`, of which :func:`holdout_split` holds
out 20% of every class, or :class:`Splits` that the data set defines itself: then the test
split is the official one, used as it is, and the validation slice that training watches
each epoch is cut from the training images only (:func:`validation_split`). Both cuts are
stratified and seeded by their own constant, so every report and every training seed use
the same held-out images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..framework.errors import SplitnetError
from ..framework.images import IMAGENET, Preprocessing, preprocess
from ..framework.registry import Registry

HOLDOUT_FRACTION = 0.2
HOLDOUT_SEED = 0
VALIDATION_FRACTION = 1 / 12  # of a set's own training images: 500 per class of Fashion-MNIST's 6,000


@dataclass(frozen=True)
class LabelledSet:
    """Preprocessed images (N, 3, H, W) float32 and integer labels, with where they came from."""

    name: str
    description: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray, part: str) -> LabelledSet:
        indices = np.asarray(indices, dtype=np.int64)
        return LabelledSet(
            name=self.name,
            description=f"{self.description}; {part}: {len(indices)} images",
            images=self.images[indices],
            labels=self.labels[indices],
            classes=self.classes,
        )


@dataclass(frozen=True)
class Splits:
    """What training learns from (``train``), what every figure is measured on (``test``), and
    what training watches after each epoch (``validation``: a slice of the training images for
    a data set with its own test split; None for a held-out split, which watches ``test``)."""

    train: LabelledSet
    test: LabelledSet
    validation: LabelledSet | None = None

    @property
    def watched(self) -> LabelledSet:
        """The images whose top-1 the progress bar shows after each epoch."""
        return self.test if self.validation is None else self.validation


# (input shape, normalisation) -> a whole set (held out by holdout_split), or the set's own Splits
Loader = Callable[[tuple[int, ...], Preprocessing], LabelledSet | Splits]


@dataclass(frozen=True)
class Dataset:
    """A registered data set: its loader, and the model that trains on it when ``--model`` is not given."""

    loader: Loader
    model: str | None = None


_DATASETS: Registry[Dataset] = Registry("dataset")


def register_dataset(name: str, loader: Loader, model: str | None = None) -> None:
    _DATASETS.add(name, Dataset(loader, model))


def list_datasets() -> list[str]:
    return _DATASETS.names()


def default_model(name_or_folder: str, fallback: str) -> str:
    """The model a registered data set names for itself, else ``fallback``."""
    if name_or_folder in _DATASETS.names():
        return _DATASETS.get(name_or_folder).model or fallback
    return fallback


def load_digits(input_shape: tuple[int, ...], preprocessing: Preprocessing = IMAGENET) -> LabelledSet:
    """scikit-learn's handwritten digits, preprocessed for ``input_shape``."""
    import sklearn
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    pixels = np.clip(np.round(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    images = np.concatenate([preprocess(Image.fromarray(p, mode="L"), input_shape, preprocessing) for p in pixels])
    size = f"{input_shape[2]}x{input_shape[3]}"
    return LabelledSet(
        name="digits",
        description=f"digits (scikit-learn {sklearn.__version__} load_digits: {len(pixels)} greyscale 8x8 "
        f"handwritten digits, 10 classes, upsampled to {size})",
        images=images,
        labels=bunch.target.astype(np.int64),
        classes=tuple(str(c) for c in bunch.target_names),
    )


register_dataset("digits", load_digits)


def _read_image(path: Path, root: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise SplitnetError(
            f"{path} is not a readable image ({type(exc).__name__})",
            f"remove it from {root} or convert it to JPEG/PNG",
        ) from None


def load_image_folder(root: Path, input_shape: tuple[int, ...], preprocessing: Preprocessing = IMAGENET) -> LabelledSet:
    """One subfolder per class; every file in a class folder must be an image."""
    if not root.exists():
        raise SplitnetError(
            f"dataset folder {root} does not exist", "pass --dataset digits or a folder of class folders"
        )
    if not root.is_dir():
        raise SplitnetError(f"dataset {root} is not a folder", "pass a folder with one subfolder per class")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise SplitnetError(
            f"dataset folder {root} has no class subfolders", "put each class's images in its own subfolder"
        )
    if len(folders) < 2:
        raise SplitnetError(
            f"dataset folder {root} has one class ({folders[0].name}); classification needs two or more",
            "add a subfolder per class",
        )
    images, labels = [], []
    for label, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise SplitnetError(f"class folder {folder} has no images", "add images to it or remove it")
        for path in files:
            images.append(preprocess(_read_image(path, folder), input_shape, preprocessing))
            labels.append(label)
    return LabelledSet(
        name=root.name,
        description=f"image folder {root} ({len(labels)} images, {len(folders)} classes, "
        f"resized to {input_shape[2]}x{input_shape[3]})",
        images=np.concatenate(images),
        labels=np.asarray(labels, dtype=np.int64),
        classes=tuple(f.name for f in folders),
    )


def _load(name_or_folder: str, input_shape: tuple[int, ...], preprocessing: Preprocessing) -> LabelledSet | Splits:
    """What the registered loader or the folder gives: a whole set, or a set's own splits."""
    from .idx import is_idx_folder, load_idx_folder

    if name_or_folder in _DATASETS.names():
        return _DATASETS.get(name_or_folder).loader(input_shape, preprocessing)
    path = Path(name_or_folder)
    if path.exists() or any(sep in name_or_folder for sep in ("/", "\\")) or name_or_folder.startswith("."):
        if is_idx_folder(path):
            return load_idx_folder(path, input_shape, preprocessing)
        return load_image_folder(path, input_shape, preprocessing)
    raise SplitnetError(
        f"unknown dataset {name_or_folder!r}",
        f"use one of: {', '.join(list_datasets())}, or a folder with one subfolder per class",
    )


def load_dataset(
    name_or_folder: str, input_shape: tuple[int, ...], preprocessing: Preprocessing = IMAGENET
) -> LabelledSet:
    """A whole registered data set by name, else an image folder by path, normalised by ``preprocessing``.

    A data set with its own train/test split is not one set: :func:`load_splits` reads it.
    """
    data = _load(name_or_folder, input_shape, preprocessing)
    if isinstance(data, Splits):
        raise SplitnetError(f"dataset {name_or_folder} comes with its own train/test split", "read it with load_splits")
    return data


def load_splits(name_or_folder: str, input_shape: tuple[int, ...], preprocessing: Preprocessing = IMAGENET) -> Splits:
    """The train / test (/ validation) splits every command uses: the set's own, else 20% held out."""
    data = _load(name_or_folder, input_shape, preprocessing)
    return data if isinstance(data, Splits) else holdout_split(data)


def _stratified(data: LabelledSet, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(kept, held) indices: ``fraction`` of every class (at least one image, if it has two) held."""
    rng = np.random.RandomState(seed)
    kept, held = [], []
    for label in range(len(data.classes)):
        members = rng.permutation(np.flatnonzero(data.labels == label))
        count = max(1, int(round(len(members) * fraction))) if len(members) > 1 else 0
        held.extend(members[:count])
        kept.extend(members[count:])
    return kept, held


def holdout_split(data: LabelledSet, fraction: float = HOLDOUT_FRACTION, seed: int = HOLDOUT_SEED) -> Splits:
    """A stratified train / held-out split: ``fraction`` of every class (at least one image) held out."""
    train, test = _stratified(data, fraction, seed)
    if not test or not train:
        raise SplitnetError(
            f"dataset {data.name} is too small to hold out images for testing ({len(data)} images)",
            "give every class at least two images",
        )
    part = f"held-out {fraction:.0%} per class (seed {seed})"
    return Splits(
        train=data.subset(np.sort(train), "training split"),
        test=data.subset(np.sort(test), part),
    )


def validation_split(
    train: LabelledSet, test: LabelledSet, fraction: float = VALIDATION_FRACTION, seed: int = HOLDOUT_SEED
) -> Splits:
    """A data set's own split, with a stratified validation slice cut from its training images only."""
    kept, held = _stratified(train, fraction, seed)
    if not kept or not held:
        raise SplitnetError(
            f"dataset {train.name} has too few training images to cut a validation slice ({len(train)})",
            "give every class at least two training images",
        )
    return Splits(
        train=train.subset(np.sort(kept), "training images less the validation slice"),
        test=test,
        validation=train.subset(np.sort(held), f"validation: {fraction:.1%} of each class's training images"),
    )
