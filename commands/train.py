"""``splitrun train``: arguments, the run (:func:`splitnet.training.train`), and a summary table."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..framework.errors import SplitnetError
from .common import branch_list

NAME = "train"
SUMMARY = "train the reference and fine-tune its N-way splits on labelled images (distillation, checkpoints)"


def add_common(parser: argparse.ArgumentParser, default_branches: str) -> None:
    """The options train and accuracy share: model, data set, the N list, multiple, seed."""
    from ..training.data import list_datasets
    from ..training.idx import FASHION_MNIST, FASHION_MNIST_MODEL
    from ..training.train import DEFAULT_DATASET, DEFAULT_MODEL

    parser.add_argument(
        "--model",
        default=None,
        help=f"registered model (default {DEFAULT_MODEL}; with --dataset {FASHION_MNIST}, {FASHION_MNIST_MODEL})",
    )
    parser.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        help=f"built-in data set ({', '.join(list_datasets())}), a folder with one subfolder of images per class, "
        f"or a folder of MNIST-format idx files (default {DEFAULT_DATASET})",
    )
    parser.add_argument(
        "--branches",
        "-n",
        type=branch_list,
        default=branch_list(default_branches),
        help=f"the N to split into, comma-separated (default {default_branches})",
    )
    parser.add_argument("--multiple", type=int, default=8, help="round branch channel counts to this (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed for init, shuffling and branch dropout (default 0)")


def model_for(args: argparse.Namespace) -> str:
    """``--model``, else the model the data set trains by default (the digits model for folders)."""
    from ..training.data import default_model
    from ..training.train import DEFAULT_MODEL

    return args.model or default_model(args.dataset, DEFAULT_MODEL)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..training.distill import DEFAULT_ALPHA, DEFAULT_TEMPERATURE

    add_common(parser, "2,4")
    parser.add_argument("--epochs", type=int, default=15, help="epochs for the reference (default 15)")
    parser.add_argument("--split-epochs", type=int, default=8, help="fine-tuning epochs per split (default 8)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--lr", type=float, default=0.05, help="reference learning rate, cosine decay (default 0.05)")
    parser.add_argument("--split-lr", type=float, default=0.02, help="fine-tuning learning rate (default 0.02)")
    parser.add_argument(
        "--alpha", type=float, default=DEFAULT_ALPHA, help=f"distillation weight (default {DEFAULT_ALPHA})"
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        help=f"distillation temperature (default {DEFAULT_TEMPERATURE:g})",
    )
    parser.add_argument(
        "--branch-dropout",
        type=float,
        default=0.0,
        metavar="RATE",
        help="share of samples that lose one random branch's features while fine-tuning, so the head "
        "tolerates a lost board (default 0)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("trained"),
        help="folder for weights, manifest.json and checkpoints (default ./trained; --out params updates what ships)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    parser.add_argument("--limit", type=int, default=None, help="train on LIMIT training images only (quick runs)")


def execute(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..framework.console import console, results_console
    from ..training.train import TrainOptions, train

    if args.out.exists() and not args.out.is_dir():
        raise SplitnetError(f"--out {args.out} is a file", "pass a folder for --out")
    result = train(
        TrainOptions(
            model=model_for(args),
            dataset=args.dataset,
            branches=args.branches,
            epochs=args.epochs,
            split_epochs=args.split_epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            split_lr=args.split_lr,
            seed=args.seed,
            alpha=args.alpha,
            temperature=args.temperature,
            branch_dropout=args.branch_dropout,
            multiple=args.multiple,
            out=args.out,
            resume=args.resume,
            limit=args.limit,
        )
    )
    table = Table(title=f"Trained on {result.dataset}")
    for column in ("model", "epochs", "top-1", "top-5", "train s", "file"):
        table.add_column(column, justify="left" if column in ("model", "file") else "right")
    for stage in result.stages:
        table.add_row(
            "unsplit" if stage.n == 1 else f"N={stage.n}",
            str(len(stage.history)),
            f"{stage.top1:.2%}",
            f"{stage.top5:.2%}",
            f"{stage.seconds:.0f}",
            str(args.out / stage.file),
        )
    results_console().print(table)
    console.print(f"weights and manifest.json written to {args.out}")
    return 0
