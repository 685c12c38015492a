"""Placement on unequal boards: equal widths (round-robin) against balanced and profile.

One command, one run of each strategy on the same inventory, then one table of ratios:

    python benchmarks/placement.py --inventory heterogeneous --model resnet18_v1 --runs 10

The shipped ``heterogeneous`` inventory has one full-speed board and one limited to half a
core by a cgroup CPU quota (root needed), so the slow board is slow the way hardware is
slow, not through a sleep in our code. Writes the figures as JSON too (``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from splitnet.framework.errors import SplitnetError
from splitnet.strategies import RunOptions, run

STRATEGIES = ("round-robin", "balanced", "profile")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="heterogeneous")
    parser.add_argument("--model", default="resnet18_v1")
    parser.add_argument("--branches", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, default=Path("placement-benchmark.json"))
    args = parser.parse_args(argv)
    out = Console(highlight=False, width=160)
    results = {}
    try:
        for strategy in STRATEGIES:
            report = run(
                RunOptions(
                    model=args.model,
                    branches=args.branches,
                    runs=args.runs,
                    warmup=2,
                    inventory=args.inventory,
                    placement=strategy,
                )
            )
            results[strategy] = report
    except SplitnetError as exc:
        out.print(f"error: {exc.one_line()}")
        return 2
    equal = results["round-robin"].slowest_branch.compute_ms
    table = Table(title=f"{args.model}, N={args.branches}, inventory {args.inventory}", title_justify="left")
    for column in ("placement", "shares", "branch compute ms", "slowest ms", "vs equal", "e2e p50 ms", "frames/s"):
        table.add_column(column, justify="left" if column in ("placement", "shares") else "right")
    rows = []
    for strategy, report in results.items():
        slowest = report.slowest_branch.compute_ms
        row = {
            "placement": strategy,
            "boards": [b.board for b in report.branches],
            "shares": [round(b.share, 4) for b in report.branches],
            "branch_compute_ms": [round(b.compute_ms, 2) for b in report.branches],
            "slowest_branch_ms": slowest,
            "slowest_vs_equal_widths": slowest / equal,
            "e2e_p50_ms": report.end_to_end.p50_ms,
            "throughput_fps": report.throughput_fps,
            "fidelity_max_abs_diff": report.fidelity_max_abs_diff,
            "board_speeds": report.board_speeds,
            "probe_gflops": report.probe_gflops,
        }
        rows.append(row)
        table.add_row(
            strategy,
            ", ".join(f"{b}={s:.3f}" for b, s in zip(row["boards"], row["shares"], strict=True)),
            ", ".join(f"{c:.1f}" for c in row["branch_compute_ms"]),
            f"{slowest:.1f}",
            f"{slowest / equal:.2f}x",
            f"{row['e2e_p50_ms']:.1f}",
            f"{row['throughput_fps']:.2f}",
        )
    out.print(table)
    args.json.write_text(json.dumps(rows, indent=2) + "\n")
    out.print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
