"""The speed benchmark's figures: ratios per round, medians over rounds, issue 16's targets.

On a machine whose speed drifts (a shared hypervisor), one split run per N measures each N
at a different moment, so a ratio between them holds the drift as well as the split: one
configuration spread from 0.59 to 1.02 of the ceiling over ten runs (README). So
``speed.py`` runs every N in several rounds, in alternating order, takes each ratio within
a round (the N=1 it divides by ran next to it), and reports the median over rounds with
its spread, the lowest and highest round.
"""

from __future__ import annotations

import numpy as np

# The figures a round's ratio targets read; their spread over rounds is printed beside them.
SPREAD_KEYS = ("of_ceiling", "speedup_vs_data_parallel", "latency_over_compute", "fps_steady", "latency_p50_ms")


def derive(rows: list[dict], parallel_fps: float) -> None:
    """Add one round's ratios to its rows (N=1's row in the same round is the base)."""
    base = next((r for r in rows if r["n"] == 1), None)
    for row in rows:
        speedup = row["fps_steady"] / base["fps_steady"] if base else float("nan")
        ceiling = base["slowest_board_compute_ms"] / row["slowest_board_compute_ms"] if base else float("nan")
        row["speedup_vs_unsplit"] = speedup
        row["speedup_vs_data_parallel"] = row["fps_steady"] / parallel_fps
        row["ceiling"] = ceiling
        row["of_ceiling"] = speedup / ceiling
        row["latency_over_compute"] = row["latency_p50_ms"] / (row["slowest_board_compute_ms"] + row["head_ms"])


def _median(values: list):
    first = values[0]
    if not isinstance(first, (list, dict)) and all(v == first for v in values):
        return first  # names, counts, flags that every round shares
    if isinstance(first, bool):
        return all(values)
    if isinstance(first, (int, float)):
        return float(np.median(values))
    if isinstance(first, list) and first and all(isinstance(v, (int, float)) for v in first):
        return [float(v) for v in np.median(np.array(values, dtype=float), axis=0)]
    if isinstance(first, dict):
        return {k: _median([v[k] for v in values]) for k in first}
    return first  # names, boards, tuning: the same in every round


def combine(rounds: list[list[dict]]) -> list[dict]:
    """One row per N: the median of every figure over the rounds, and ``spread`` (lowest and
    highest round) of the figures the targets read."""
    combined = []
    for n in sorted({row["n"] for rows in rounds for row in rows}):
        runs = [row for rows in rounds for row in rows if row["n"] == n]
        row = {key: _median([r[key] for r in runs]) for key in runs[0]}
        row["n"] = n
        row["rounds"] = len(runs)
        row["spread"] = {key: (min(r[key] for r in runs), max(r[key] for r in runs)) for key in SPREAD_KEYS}
        combined.append(row)
    return combined


def period_accounting(row: dict, cores: int) -> str:
    """Where an N's steady frame period goes when boards hold every core and the host shares
    them: the busiest board's compute, and the host's CPU per frame spread evenly over the
    cores it takes it from (what bounds ``of ceiling`` on such a machine; the rest is what
    neither explains)."""
    period = 1000.0 / row["fps_steady"]
    host = row["host_cpu_ms"] / cores
    rest = period - row["slowest_board_compute_ms"] - host
    return (
        f"N={row['n']} steady frame period {period:.2f} ms = busiest board's compute "
        f"{row['slowest_board_compute_ms']:.2f} + host CPU {row['host_cpu_ms']:.2f} ms a frame over {cores} "
        f"shared cores ({host:.2f}) + {rest:.2f} ms else"
    )


def _spread(row: dict, key: str, fmt: str = "{:.2f}") -> str:
    low, high = row["spread"][key]
    return f" (rounds {fmt.format(low)}-{fmt.format(high)})" if row["rounds"] > 1 else ""


def targets(rows: list[dict], ort: dict, baselines: dict) -> list[tuple[str, str, bool]]:
    """Issue 16's targets for N=2, on the medians over rounds: (what, the figure, met)."""
    two = next((r for r in rows if r["n"] == 2), None)
    if two is None:
        return []
    tvm_vs_ort = two["compute_ms"][0] / baselines["ort_branch_ms"]
    return [
        (
            "steady throughput >= 0.9x the compute ceiling",
            f"{two['of_ceiling']:.2f}x{_spread(two, 'of_ceiling')}",
            two["of_ceiling"] >= 0.9,
        ),
        (
            "steady throughput >= 1.4x data parallel (TVM, same boards)",
            f"{two['speedup_vs_data_parallel']:.2f}x{_spread(two, 'speedup_vs_data_parallel')}",
            two["speedup_vs_data_parallel"] >= 1.4,
        ),
        (
            "single-frame latency <= 1.3x (slowest branch + head)",
            f"{two['latency_over_compute']:.2f}x{_spread(two, 'latency_over_compute')}",
            two["latency_over_compute"] <= 1.3,
        ),
        ("tuned TVM on one branch <= 1.5x onnxruntime (one thread)", f"{tvm_vs_ort:.2f}x", tvm_vs_ort <= 1.5),
        (
            "throughput above onnxruntime unsplit on one board",
            f"{two['fps_steady']:.1f}{_spread(two, 'fps_steady', '{:.1f}')} vs {ort['one_board_fps']:.1f} frames/s",
            two["fps_steady"] > ort["one_board_fps"],
        ),
        (
            "single-frame latency below onnxruntime unsplit on one board",
            f"{two['latency_p50_ms']:.1f}{_spread(two, 'latency_p50_ms', '{:.1f}')} vs "
            f"{ort['one_board_latency_ms']:.1f} ms",
            two["latency_p50_ms"] < ort["one_board_latency_ms"],
        ),
    ]
