"""Training and accuracy: the reference and its fine-tuned splits on real labelled images."""

from . import idx as _idx  # noqa: F401  (registers fashion-mnist)
from .data import (
    LabelledSet,
    Splits,
    holdout_split,
    list_datasets,
    load_dataset,
    load_splits,
    register_dataset,
    validation_split,
)
from .distill import DistillLoss
from .train import TrainOptions, TrainResult, train

__all__ = [
    "DistillLoss",
    "LabelledSet",
    "Splits",
    "TrainOptions",
    "TrainResult",
    "holdout_split",
    "list_datasets",
    "load_dataset",
    "load_splits",
    "register_dataset",
    "train",
    "validation_split",
]
