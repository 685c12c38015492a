"""``splitrun accuracy``: arguments, the measurement, and the report files."""

from __future__ import annotations

import argparse
from pathlib import Path

from splitnet.framework.errors import SplitnetError
from splitnet.training.train_command import add_common

REPORT_FILES = ("accuracy.json", "accuracy.md", "accuracy.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from splitnet.framework.cli import add_inventory_arguments

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
    from splitnet.framework.cli import EXIT_CHECK_FAILED
    from splitnet.framework.console import console, results_console
    from splitnet.training.accuracy import AccuracyOptions, measure
    from splitnet.training.accuracy_report import render, to_markdown, write_json, write_plot

    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SplitnetError(
            f"cannot write the report to {args.out} ({exc.strerror or exc})", "pass --out DIR (a writable folder)"
        ) from None
    report = measure(
        AccuracyOptions(
            model=args.model,
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
