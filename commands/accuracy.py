"""``splitrun accuracy``: arguments, the measurement (:mod:`splitnet.training.accuracy`), and the report files."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..framework.errors import SplitnetError
from .common import EXIT_CHECK_FAILED, add_inventory_arguments
from .train import add_common, model_for

NAME = "accuracy"
SUMMARY = "top-1/top-5 of the unsplit model and its splits, with a lost branch, in-process and on the boards"

REPORT_FILES = ("accuracy.json", "accuracy.md", "accuracy.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "2,4")
    parser.add_argument(
        "--boards",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure through the distributed runtime on the inventory's boards (default: yes)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="send only the first LIMIT held-out images through the boards"
    )
    add_inventory_arguments(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("accuracy"),
        help=f"folder for the report ({', '.join(REPORT_FILES)}; default ./accuracy)",
    )


def execute(args: argparse.Namespace) -> int:
    from ..framework.console import console, results_console
    from ..training.accuracy import AccuracyOptions, measure
    from ..training.accuracy_report import render, to_markdown, write_json, write_plot

    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SplitnetError(
            f"cannot write the report to {args.out} ({exc.strerror or exc})", "pass --out DIR (a writable folder)"
        ) from None
    report = measure(
        AccuracyOptions(
            model=model_for(args),
            dataset=args.dataset,
            branches=args.branches,
            multiple=args.multiple,
            boards=args.boards,
            limit=args.limit,
            inventory=args.inventory,
            wait_s=args.wait,
            seed=args.seed,
        )
    )
    render(report, results_console())
    json_path, md_path, png_path = (args.out / name for name in REPORT_FILES)
    write_json(report, json_path)
    md_path.write_text(to_markdown(report))
    write_plot(report, png_path)
    console.print(f"report written to {json_path}, {md_path} and {png_path}")
    return 0 if report.fidelity_ok else EXIT_CHECK_FAILED
