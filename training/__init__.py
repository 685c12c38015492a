"""Training and accuracy: the reference and its fine-tuned splits on real labelled images."""

from .data import LabelledSet, Splits, holdout_split, list_datasets, load_dataset, register_dataset
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
    "register_dataset",
    "train",
]
