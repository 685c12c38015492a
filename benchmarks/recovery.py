"""The failure cases beyond one killed board, one run each: detection, recovery, repair and return times.

    nice -n 10 python benchmarks/recovery.py --model resnet18_v1

Cases (frames count every frame sent, from 0: the verify pass over the 8 built-in images,
then timed frames, one in flight):

* ``second <policy>``: two boards killed at frames 20 and 70 of 200 (``four-pynq``: two
  spares), under ``spare``, ``replicate`` and ``coded``;
* ``stall comes back``: board 0 stalled 3 s at frame 20 (``pynq-with-spare``): timed out,
  re-placed, and back on its session when the stall ends;
* ``restart comes back``: board 1's server killed at frame 20 and restarted 1 s later;
* ``tracker killed``: the local tracker killed at frame 20, board 1 restarted at frame 60;
* ``tracker not ours``: a tracker splitrun did not start, killed before the first frame,
  board 1 restarted at frame 60: the one line that says the tracker is gone;
* ``wrong answers``: ``coded`` with unequal widths; board 2 (a head block only) answers NaN
  from frame 20, board 1 runs the wrong branch library (a wrong shape) from frame 50;
* ``audit``: board 1 runs the wrong branch library from frame 22, same shape: caught by
  ``--audit 5`` at frame 25 (frames 22-24 are answered wrong, and the checks say so).

Writes every run's faults, repairs, returns and tracker events as JSON too.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from splitnet.framework.errors import SplitnetError
from splitnet.runtime.chaos import parse_chaos
from splitnet.runtime.local_cluster import LocalCluster
from splitnet.runtime.tracker_requests import tracker_summary
from splitnet.strategies import RunOptions, run

VERIFY_FRAMES = 8


def cases(frames: int, long_frames: int) -> dict[str, dict]:
    return {
        "second spare": dict(inventory="four-pynq", policy="spare", chaos=["kill:1@20", "kill:2@70"]),
        "second replicate": dict(inventory="four-pynq", policy="replicate", chaos=["kill:1@20", "kill:0@70"]),
        "second coded": dict(inventory="four-pynq", policy="coded", chaos=["kill:1@20", "kill:2@70"]),
        "stall comes back": dict(inventory="pynq-with-spare", policy="spare", chaos=["stall:0@20:3s"]),
        "restart comes back": dict(
            inventory="pynq-with-spare", policy="spare", chaos=["restart:1@20:1s"], frames=long_frames
        ),
        "tracker killed": dict(
            inventory="pynq-with-spare",
            policy="spare",
            chaos=["kill:tracker@20", "restart:1@60:1s"],
            frames=long_frames,
        ),
        "tracker not ours": dict(policy="spare", chaos=["restart:1@60:1s"], remote_tracker=True),
        "wrong answers": dict(
            inventory="pynq-with-spare",
            policy="coded",
            widths=(0.625, 0.375),
            chaos=["corrupt:2@20", "corrupt:1@50"],
        ),
        "audit": dict(inventory="pynq-with-spare", policy="spare", chaos=["corrupt:1@22"], audit=5),
    }


def _remote_tracker_inventory(folder: Path) -> tuple[LocalCluster, Path]:
    """A tracker this script starts (splitrun did not), and an inventory of three local boards using it."""
    cluster = LocalCluster(()).__enter__()
    path = folder / "tracker-not-ours.yaml"
    boards = "".join(f"  - {{name: pynq{i}, target: pynq-z1, local: true, cores: 1}}\n" for i in range(3))
    path.write_text(f"tracker: {{host: 127.0.0.1, port: {cluster.tracker_port}, local: false}}\nboards:\n{boards}")
    return cluster, path


def _kill_when_held(cluster: LocalCluster, boards: int) -> threading.Thread:
    def watch() -> None:
        while True:
            try:
                summary = tracker_summary(cluster.host, cluster.tracker_port, timeout=2.0)
            except SplitnetError:
                return
            held = len(summary.get("server_info", [])) >= boards
            if held and summary.get("queue_info", {}).get("pynq", {}).get("free", 1) == 0:
                cluster.kill_tracker()
                return
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def one(name: str, case: dict, args: argparse.Namespace) -> dict:
    frames = case.get("frames", args.frames)
    tracker = None
    inventory = case.get("inventory")
    if case.get("remote_tracker"):
        tracker, inventory = _remote_tracker_inventory(args.json.parent)
        _kill_when_held(tracker, 3)
    options = RunOptions(
        model=args.model,
        branches=2,
        widths=case.get("widths"),
        runs=frames - VERIFY_FRAMES,
        warmup=0,
        depth=1,
        inventory=inventory,
        policy=case["policy"],
        chaos=tuple(parse_chaos(c) for c in case["chaos"]),
        audit=case.get("audit", 0),
    )
    started = time.perf_counter()
    try:
        report = run(options)
    except SplitnetError as exc:
        return {"case": name, "error": exc.one_line(), "chaos": case["chaos"]}
    finally:
        if tracker is not None:
            tracker.stop()
    return {
        "case": name,
        "policy": case["policy"],
        "chaos": case["chaos"],
        "frames_sent": frames,
        "frames_answered": len(report.frame_ms),
        "ok": report.ok,
        "max_abs_diff_exact": report.fidelity_max_abs_diff,
        "worst_ms": report.worst_frame_ms,
        "p50_ms": float(np.median(report.frame_ms)),
        "faults": list(report.faults),
        "repairs": list(report.repairs),
        "rejoins": list(report.rejoins),
        "tracker": list(report.tracker),
        "notes": list(report.notes),
        "audit": report.audit,
        "host_heads": report.host_heads,
        "parity_decodes": report.parity_decodes,
        "wall_s": time.perf_counter() - started,
    }


def _events(row: dict) -> str:
    parts = [
        f"{f['board']}@{f['frame']} {f['kind']} {f['detected_ms']:.0f}/"
        + ("-" if f["recovered_ms"] is None else f"{f['recovered_ms']:.0f}")
        for f in row["faults"]
    ]
    return "; ".join(parts) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18_v1")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--long-frames", type=int, default=600, help="for the cases that wait for a server restart")
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    parser.add_argument("--json", type=Path, default=Path("recovery-benchmark.json"))
    args = parser.parse_args(argv)
    chosen = cases(args.frames, args.long_frames)
    names = args.cases.split(",") if args.cases else list(chosen)
    rows = []
    for name in names:
        rows.append(one(name, chosen[name], args))
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    out = Console(highlight=False, width=220)
    table = Table(title=f"{args.model}, N=2: failure cases (times in ms; board@frame kind detected/recovered)")
    for column in ("case", "answered", "max |diff|", "faults", "repairs", "back after", "tracker", "worst"):
        table.add_column(column, justify="left" if column in ("case", "faults", "repairs") else "right")
    for r in rows:
        if "error" in r:
            table.add_row(r["case"], "stopped", "", r["error"][:100])
            continue
        repairs = "; ".join(f"{x['done'].split(':')[0]} {x['ms']:.0f}" for x in r["repairs"] if x["ok"]) or "-"
        back = "; ".join(f"{x['board']} {x['down_ms']:.0f}" for x in r["rejoins"]) or "-"
        tracker = "; ".join(f"{t['event']} {t['down_ms']:.0f}" for t in r["tracker"]) or ("note" if r["notes"] else "-")
        table.add_row(
            r["case"],
            f"{r['frames_answered']}/{r['frames_sent']}",
            f"{r['max_abs_diff_exact']:.1e}",
            _events(r),
            repairs,
            back,
            tracker,
            f"{r['worst_ms']:.0f}",
        )
    out.print(table)
    for r in rows:
        for note in r.get("notes", []):
            out.print(f"{r['case']}: {note}")
    out.print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
