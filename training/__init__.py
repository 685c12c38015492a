"""Training and accuracy: the reference and its fine-tuned splits on real labelled images."""

from splitnet.training.data import LabelledSet, Splits, holdout_split, list_datasets, load_dataset, register_dataset
from splitnet.training.distill import DistillLoss
from splitnet.training.store import load_split
from splitnet.training.train import TrainOptions, TrainResult, train

__all__ = [
    "DistillLoss",
    "LabelledSet",
    "Splits",
    "TrainOptions",
    "TrainResult",
    "holdout_split",
    "list_datasets",
    "load_dataset",
    "load_split",
    "register_dataset",
    "train",
]
