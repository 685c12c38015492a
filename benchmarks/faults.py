"""A board killed mid-run, under each recovery policy: frames lost, worst frame, recovery time.

One command, one run per policy on the same boards, then one table:

    python benchmarks/faults.py --model resnet18_v1 --frames 200 --kill-at 50

The shipped ``pynq-with-spare`` inventory (three emulated PYNQ boards; with two branches the
third is a spare) is used for every policy, and board 1 is killed (SIGKILL to its RPC
server) just before frame ``--kill-at``. Frames count every frame sent: the verify pass over
the 8 built-in images first, then timed frames. Writes the figures as JSON too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from splitnet.framework.errors import SplitnetError
from splitnet.runtime.chaos import parse_chaos
from splitnet.strategies import RunOptions, run

POLICIES = ("spare", "replicate", "coded", "degrade")
VERIFY_FRAMES = 8  # the built-in image set


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="pynq-with-spare")
    parser.add_argument("--model", default="resnet18_v1")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--kill-at", type=int, default=50)
    parser.add_argument("--board", default="1")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--json", type=Path, default=Path("faults-benchmark.json"))
    args = parser.parse_args(argv)
    out = Console(highlight=False, width=180)
    rows = []
    try:
        for policy in args.policies.split(","):
            report = run(
                RunOptions(
                    model=args.model,
                    branches=2,
                    runs=args.frames - VERIFY_FRAMES,
                    warmup=0,
                    inventory=args.inventory,
                    policy=policy,
                    chaos=(parse_chaos(f"kill:{args.board}@{args.kill_at}"),),
                )
            )
            frame_ms = np.asarray(report.frame_ms)
            kill = args.kill_at
            rows.append(
                {
                    "policy": policy,
                    "frames_sent": report.frames,
                    "frames_answered": len(frame_ms),
                    "frames_lost": args.frames - len(frame_ms),
                    "frames_degraded": report.frames_degraded,
                    "ok": report.ok,
                    "max_abs_diff_exact_frames": report.fidelity_max_abs_diff,
                    "worst_frame_ms": report.worst_frame_ms,
                    "mean_ms_before_kill": float(frame_ms[VERIFY_FRAMES:kill].mean()),
                    "mean_ms_after_kill": float(frame_ms[kill + 1 :].mean()),
                    "kill_frame_ms": float(frame_ms[kill]),
                    "faults": list(report.faults),
                    "parity_decodes": report.parity_decodes,
                    "timeout_s": report.timeout_s,
                }
            )
    except SplitnetError as exc:
        out.print(f"error: {exc.one_line()}")
        return 2
    table = Table(title=f"{args.model}, N=2, board {args.board} killed at frame {args.kill_at} of {args.frames}")
    columns = ("policy", "answered", "lost", "degraded", "max |diff|", "detected ms", "recovered ms")
    columns += ("kill frame ms", "worst ms", "mean ms before", "mean ms after")
    for column in columns:
        table.add_column(column, justify="left" if column == "policy" else "right")
    for row in rows:
        detected = ", ".join(f"{f['detected_ms']:.0f}" for f in row["faults"]) or "-"
        recovered = ", ".join("-" if f["recovered_ms"] is None else f"{f['recovered_ms']:.0f}" for f in row["faults"])
        table.add_row(
            row["policy"],
            f"{row['frames_answered']}/{args.frames}",
            str(row["frames_lost"]),
            str(row["frames_degraded"]),
            f"{row['max_abs_diff_exact_frames']:.1e}",
            detected,
            recovered or "-",
            f"{row['kill_frame_ms']:.0f}",
            f"{row['worst_frame_ms']:.0f}",
            f"{row['mean_ms_before_kill']:.0f}",
            f"{row['mean_ms_after_kill']:.0f}",
        )
    out.print(table)
    args.json.write_text(json.dumps(rows, indent=2) + "\n")
    out.print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
