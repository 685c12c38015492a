"""A seeded chaos soak: many frames on four local boards, kills and stalls drawn from a seed, per policy.

    nice -n 10 python benchmarks/soak.py --model resnet18_v1 --frames 1000 --seed 1

For each policy, one run of ``--frames`` frames (the verify pass over the 8 built-in images,
then timed frames, one in flight) on the shipped ``four-pynq`` inventory (two branches, so
two boards are spares), with ``--chaos random:SEED`` (``runtime/chaos_random.py``): about
every 30-90 frames a busy board's server is killed and restarted 1-3 s later, or stalled for
1.5-3 s, whenever a spare is free to take over. Reported per policy: frames lost (the goal
is 0), the largest difference of the exact answers from the in-process split (within
1e-4), the degraded answers (flagged, and checked against the split without the lost
branches), worst and p99 frame latency, what was hit, how it was recovered, and the
processes carrying this run's owner marker left after the run (the goal is 0). The CI runs
a short version (tests/runtime/test_soak.py: the tiny model, 200 frames).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
from rich.console import Console
from rich.table import Table

from splitnet.framework.errors import SplitnetError
from splitnet.runtime.chaos import RandomChaos
from splitnet.runtime.lifeline import OWNER_ENV
from splitnet.strategies import RunOptions, run

POLICIES = ("spare", "replicate", "coded", "degrade")
VERIFY_FRAMES = 8  # the built-in image set


def our_processes() -> int:
    """Processes still carrying this process's owner marker (its boards, trackers and workers)."""
    count = 0
    for proc in psutil.process_iter():
        try:
            count += proc.environ().get(OWNER_ENV) == str(os.getpid())
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return count


def soak(policy: str, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    options = RunOptions(
        model=args.model,
        branches=2,
        multiple=args.multiple,
        runs=args.frames - VERIFY_FRAMES,
        warmup=0,
        depth=1,
        inventory=args.inventory,
        policy=policy,
        chaos=(RandomChaos(args.seed),),
    )
    try:
        report = run(options)
    except SplitnetError as exc:  # the run stopped: every frame from the failed one on is lost
        at = re.search(r"at frame (\d+)", exc.message)
        answered = int(at.group(1)) if at else 0
        return {"policy": policy, "error": exc.one_line(), "frames_sent": args.frames, "frames_answered": answered}
    finally:
        left = our_processes()
    frame_ms = np.asarray(report.frame_ms)
    faults = list(report.faults)
    degraded = next((c for c in report.checks if c.name.startswith("degraded")), None)
    return {
        "policy": policy,
        "frames_sent": args.frames,
        "frames_answered": len(frame_ms),
        "frames_lost": args.frames - len(frame_ms),
        "ok": report.ok,
        "max_abs_diff_exact": report.fidelity_max_abs_diff,
        "frames_degraded": report.frames_degraded,
        "degraded_check": f"{degraded.status} ({degraded.value})" if degraded else "",
        "worst_ms": float(frame_ms.max()),
        "p99_ms": float(np.percentile(frame_ms, 99)),
        "p50_ms": float(np.percentile(frame_ms, 50)),
        "hits": [c for c in report.chaos if "skipped" not in c],
        "skipped": [c for c in report.chaos if "skipped" in c],
        "faults_by_kind": dict(Counter(f["kind"] for f in faults)),
        "detected_ms_max": max((f["detected_ms"] for f in faults), default=0.0),
        "recovered_ms_max": max((f["recovered_ms"] or 0.0 for f in faults), default=0.0),
        "rejoins": list(report.rejoins),
        "repairs": list(report.repairs),
        "host_heads": report.host_heads,
        "processes_left": left,
        "timeout_s": report.timeout_s,
        "wall_s": time.perf_counter() - started,
        "faults": faults,
    }


def table(rows: list[dict], args: argparse.Namespace) -> Table:
    title = f"{args.model}, N=2, {args.inventory}, --chaos random:{args.seed}, {args.frames} frames per policy"
    out = Table(title=title)
    columns = ("policy", "answered", "lost", "max |diff| exact", "degraded", "worst ms", "p99 ms", "hit")
    columns += ("faults", "back", "repairs", "left")
    for column in columns:
        out.add_column(column, justify="left" if column == "policy" else "right")
    for r in rows:
        if "error" in r:
            out.add_row(r["policy"], f"{r['frames_answered']}/{r['frames_sent']}", "stopped", r["error"][:60])
            continue
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(r["faults_by_kind"].items())) or "0"
        out.add_row(
            r["policy"],
            f"{r['frames_answered']}/{r['frames_sent']}",
            str(r["frames_lost"]),
            f"{r['max_abs_diff_exact']:.1e}",
            f"{r['frames_degraded']}" + (" (flagged)" if r["frames_degraded"] else ""),
            f"{r['worst_ms']:.0f}",
            f"{r['p99_ms']:.0f}",
            f"{len(r['hits'])} ({len(r['skipped'])} skipped)",
            kinds,
            str(len(r["rejoins"])),
            str(sum(x["ok"] for x in r["repairs"])),
            str(r["processes_left"]),
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18_v1")
    parser.add_argument("--multiple", type=int, default=8)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inventory", default="four-pynq")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--json", type=Path, default=Path("soak-benchmark.json"))
    args = parser.parse_args(argv)
    out = Console(highlight=False, width=200)
    rows = []
    for policy in args.policies.split(","):
        rows.append(soak(policy, args))
        args.json.write_text(json.dumps(rows, indent=2) + "\n")  # as it goes: a long soak keeps what it has
    out.print(table(rows, args))
    out.print(f"written to {args.json}; processes of this run left at the end: {our_processes()}")
    return 0 if all("error" not in r and r["frames_lost"] == 0 and r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
