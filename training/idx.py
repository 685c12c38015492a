"""MNIST-format idx files, and Fashion-MNIST read from Debian's ``dataset-fashion-mnist``.

An idx file is a 4-byte magic number (two zero bytes, a type code, 0x08 for unsigned bytes,
and the number of dimensions), one big-endian uint32 per dimension, then the values. A
folder of the four files MNIST and Fashion-MNIST ship (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
gzipped or not) is a data set with its own official split: the test images are used as
they are, and the validation slice training watches is cut from the training images
(:func:`splitnet.training.data.validation_split`).

``fashion-mnist`` (Zalando's Fashion-MNIST, MIT: 60,000 training and 10,000 test 28x28
greyscale images of 10 kinds of clothing, 6,000 and 1,000 per class) is read from where
Debian's package puts it, ``/usr/share/datasets/fashion-mnist``, or from the folder
``$SPLITNET_FASHION_MNIST_DIR`` names. When the files are missing the error gives the apt
command. Every image goes through :func:`splitnet.framework.images.preprocess` like any other
(greyscale to RGB, resized to the model's input, the model's normalisation).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from ..framework.errors import SplitnetError
from ..framework.images import IMAGENET, Preprocessing, preprocess
from .data import LabelledSet, Splits, register_dataset, validation_split

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
UBYTE = 0x08
FASHION_MNIST = "fashion-mnist"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # where Debian's package installs it
FASHION_MNIST_ENV = "SPLITNET_FASHION_MNIST_DIR"
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_MODEL = "resnet18_v1_thumb28_half"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _file(folder: Path, stem: str) -> Path | None:
    """``stem.gz`` or ``stem`` in ``folder``, whichever exists (the gzipped one first)."""
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def missing_files(folder: Path) -> list[str]:
    """The idx files of the four that ``folder`` lacks (gzipped or not)."""
    return [stem for pair in IDX_FILES.values() for stem in pair if _file(folder, stem) is None]


def is_idx_folder(folder: Path) -> bool:
    """Whether ``folder`` holds any of the four idx files (then it is read as an idx data set)."""
    return folder.is_dir() and len(missing_files(folder)) < 4


def read_idx(path: Path, limit: int | None = None) -> np.ndarray:
    """The uint8 array in an idx file (gzipped when its name ends in .gz); the first ``limit`` records."""
    fix = f"restore {path.name} (a truncated or foreign file), or point the data set at another folder"
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as handle:
            magic = handle.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] != UBYTE or magic[3] == 0:
                raise SplitnetError(f"{path} is not an idx file of unsigned bytes (magic {magic.hex()})", fix)
            header = handle.read(4 * magic[3])
            if len(header) < 4 * magic[3]:
                raise SplitnetError(f"{path} ends inside its idx header", fix)
            shape = [int(d) for d in np.frombuffer(header, dtype=">u4")]
            count = shape[0] if limit is None else min(limit, shape[0])
            size = count * int(np.prod(shape[1:], dtype=np.int64))
            data = handle.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        raise SplitnetError(f"{path} cannot be read ({type(exc).__name__}: {exc})", fix) from None
    if len(data) < size:
        raise SplitnetError(f"{path} is truncated ({len(data)} of {size} bytes of data)", fix)
    return np.frombuffer(data, dtype=np.uint8).reshape([count, *shape[1:]])


def _split(
    folder: Path,
    part: str,
    name: str,
    description: str,
    classes: tuple[str, ...] | None,
    input_shape: tuple[int, ...],
    preprocessing: Preprocessing,
    limit: int | None,
) -> LabelledSet:
    images_stem, labels_stem = IDX_FILES[part]
    images_path, labels_path = _file(folder, images_stem), _file(folder, labels_stem)
    pixels, labels = read_idx(images_path, limit), read_idx(labels_path, limit)
    if pixels.ndim != 3 or labels.ndim != 1 or len(pixels) != len(labels):
        raise SplitnetError(
            f"{images_path.name} ({'x'.join(map(str, pixels.shape))}) and {labels_path.name} "
            f"({'x'.join(map(str, labels.shape))}) in {folder} are not N greyscale images and N labels",
            "use the images and labels files of the same data set",
        )
    known = classes if classes is not None else tuple(str(c) for c in range(int(labels.max(initial=0)) + 1))
    if labels.size and int(labels.max()) >= len(known):
        raise SplitnetError(
            f"{labels_path} has label {int(labels.max())}, beyond the {len(known)} classes of {name}",
            "use the labels file of the same data set",
        )
    images = np.concatenate([preprocess(Image.fromarray(p, mode="L"), input_shape, preprocessing) for p in pixels])
    which = "official test split" if part == "test" else "official training split"
    return LabelledSet(
        name=name,
        description=f"{description}; {which}: {len(labels)} images",
        images=images,
        labels=labels.astype(np.int64),
        classes=known,
    )


def load_idx_folder(
    folder: Path,
    input_shape: tuple[int, ...],
    preprocessing: Preprocessing = IMAGENET,
    *,
    name: str | None = None,
    description: str | None = None,
    classes: tuple[str, ...] | None = None,
    limit: int | None = None,
) -> Splits:
    """The four idx files in ``folder`` as their own train / test split (``limit``: the first LIMIT of each)."""
    missing = missing_files(folder)
    if missing:
        raise SplitnetError(
            f"{folder} lacks {', '.join(missing)} (gzipped or not)",
            "put all four idx files (training and t10k images and labels) in the folder",
        )
    name = name or folder.name
    size = f"{input_shape[2]}x{input_shape[3]}"
    description = description or f"idx folder {folder}"
    common = (name, f"{description}, at {size}", classes, input_shape, preprocessing, limit)
    train, test = _split(folder, "train", *common), _split(folder, "test", *common)
    return validation_split(train, test)


def fashion_mnist_dir() -> Path:
    """``$SPLITNET_FASHION_MNIST_DIR``, else where Debian's package installs Fashion-MNIST."""
    env = os.environ.get(FASHION_MNIST_ENV)
    return Path(env) if env else FASHION_MNIST_DIR


def load_fashion_mnist(
    input_shape: tuple[int, ...], preprocessing: Preprocessing = IMAGENET, limit: int | None = None
) -> Splits:
    """Fashion-MNIST's official 60,000 / 10,000 split, with 500 validation images per class from the 60,000."""
    folder = fashion_mnist_dir()
    missing = missing_files(folder)
    if missing:
        where = f"{folder} ({FASHION_MNIST_ENV})" if os.environ.get(FASHION_MNIST_ENV) else str(folder)
        raise SplitnetError(
            f"Fashion-MNIST is not installed: {where} has no {missing[0]}[.gz]",
            f"apt-get update && apt-get install -y {FASHION_MNIST_PACKAGE} (as root), or set "
            f"{FASHION_MNIST_ENV} to a folder holding its four idx files",
        )
    return load_idx_folder(
        folder,
        input_shape,
        preprocessing,
        name=FASHION_MNIST,
        description=f"Fashion-MNIST ({folder}: 28x28 greyscale images of 10 kinds of clothing)",
        classes=FASHION_MNIST_CLASSES,
        limit=limit,
    )


register_dataset(FASHION_MNIST, load_fashion_mnist, model=FASHION_MNIST_MODEL)
