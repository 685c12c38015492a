"""``splitrun distill``: slice a model with published weights, then distil each split from it on photos.

The teacher is the model's own published weights (EfficientNet-Lite0's ImageNet ones); the
training photos are unlabelled (by default Debian opencv-doc's samples, fetched with
``apt-get download``), augmented afresh every batch; the evaluation photos are the fetched
foolbox and scikit-image ones (``splitrun models --fetch``), never trained on.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..framework.errors import SplitnetError
from .common import branch_list

NAME = "distill"
SUMMARY = "slice a model with published weights and distil its splits from it on unlabelled photos"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="efficientnet_lite0", help="a model with published weights")
    parser.add_argument("--branches", type=branch_list, default=(2, 4), help="splits to make, e.g. 2,4")
    parser.add_argument("--multiple", type=int, default=8, help="channel multiple, halved where N needs it")
    parser.add_argument(
        "--photos",
        type=Path,
        action="append",
        default=None,
        help="folder of unlabelled training photos (repeatable; default: opencv-doc's samples, fetched)",
    )
    parser.add_argument("--steps", type=int, default=200, help="distillation steps per split (default 200)")
    parser.add_argument("--batch-size", type=int, default=16, help="augmented photos per step (default 16)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--temperature", type=float, default=2.0, help="distillation temperature (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the augmentation (default 0)")
    parser.add_argument("--out", type=Path, default=Path("distilled"), help="folder for weights and the report")


def execute(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..framework.console import results_console
    from ..training.photo_distill import DistillSettings
    from ..training.published_distill import DistillRun, run_distill
    from ..zoo.imagenet_data import fetch, fetch_training_photos, sample_data

    for ok, message, fix in (
        (args.steps >= 0, "--steps must be >= 0", "e.g. --steps 200"),
        (args.batch_size >= 2, "--batch-size must be >= 2 (batch norm needs a batch)", "e.g. --batch-size 16"),
        (args.lr > 0 and args.temperature > 0, "--lr and --temperature must be positive", "e.g. --lr 1e-3"),
    ):
        if not ok:
            raise SplitnetError(message, fix)
    if not sample_data().classes.exists():
        fetch()
    folders = tuple(args.photos) if args.photos else (fetch_training_photos(),)
    settings = DistillSettings(
        steps=args.steps, batch=args.batch_size, lr=args.lr, temperature=args.temperature, seed=args.seed
    )
    rows = run_distill(DistillRun(args.model, tuple(args.branches), args.multiple, folders, settings, args.out))
    table = Table(title=f"{args.model}: the cost of splitting, on real photos")
    for column in ("N", "stage", "top-1", "top-5", "agree w/ teacher", "agree, 1 branch lost", "seconds"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in rows:
        lost = "" if math.isnan(row["agree_lost"]) else f"{row['agree_lost']:.1f}/{row['held_out']}"
        table.add_row(
            str(row["n"]),
            row["stage"],
            f"{row['top1']}/{row['labelled']}",
            f"{row['top5']}/{row['labelled']}",
            f"{row['agree']}/{row['held_out']}",
            lost,
            f"{row['seconds']:.0f}",
        )
    results_console().print(table)
    return 0
