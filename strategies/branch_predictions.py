"""What the unsplit model and the split (as the boards answered) predict for each image.

Only runs given ``--images`` get the table: on the built-in drawn frames a class name means
nothing. The split's answer is the first one the boards returned for the image (the verify
pass; already checked against the split in-process); ImageNet models (1000 classes) get
their class names when they have been fetched (``splitrun models --fetch``), others show
class indices. A foolbox photo's label comes from its file name.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ..framework.console import notice
from ..framework.errors import SplitnetError
from ..framework.images import Frame
from ..framework.predictions import image_predictions
from ..zoo.imagenet_data import class_names, label_of
from .branch_frames import TimedRuns

IMAGENET_CLASSES = 1000


def names_for(classes: int) -> list[str] | None:
    """ImageNet's class names for a 1000-class model, when fetched; else None (indices are shown)."""
    if classes != IMAGENET_CLASSES:
        return None
    try:
        return class_names()
    except SplitnetError as exc:
        notice(f"class indices shown: {exc.one_line()}")
        return None


def board_predictions(
    frames: list[Frame], classes: int, timed: TimedRuns, split_logits: np.ndarray, reference_logits: np.ndarray
) -> tuple[dict, ...]:
    """Per image: the reference's and the boards' top-1 (the in-process split's if no board answered)."""
    answered: dict[int, np.ndarray] = {}
    for record in timed.frames:
        answered.setdefault(record.image, record.logits.reshape(1, -1))
    split = np.concatenate([answered.get(i, split_logits[i : i + 1]) for i in range(len(frames))])
    names = names_for(classes)
    rows = image_predictions(
        [f.name for f in frames], reference_logits, split, names, [label_of(f.name) for f in frames]
    )
    return tuple(asdict(row) for row in rows)
