"""One strategy's result in the terminal: its pieces, end-to-end latency, bytes moved, checks."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..framework.verify import FAIL, PASS
from .base import StrategyResult


def _status(status: str) -> str:
    color = {PASS: "green", FAIL: "bold red"}.get(status, "cyan")
    return f"[{color}]{status}[/]"


def kib(nbytes: float) -> str:
    return f"{nbytes / 1024:.1f}"


def render_result(result: StrategyResult, console: Console) -> None:
    console.print(
        f"[bold]{result.model}[/], strategy [bold]{result.strategy}[/] over {result.n} pieces on {result.inventory}"
        f"\n{result.detail}; frames: {result.images}"
    )
    pieces = Table(title="Pieces", title_justify="left")
    for column in ("piece", "board", "GFLOPs", "in KiB", "out KiB", "compute ms"):
        pieces.add_column(column, justify="left" if column in ("piece", "board") else "right")
    for p in result.pieces:
        pieces.add_row(
            p.name, p.board, f"{p.flops / 1e9:.3f}", kib(p.in_bytes), kib(p.out_bytes), f"{p.compute_ms:.2f}"
        )
    console.print(pieces)
    e2e = result.latency
    latency = Table(title=f"End to end ({e2e.frames} timed frames, {result.in_flight} in flight)", title_justify="left")
    columns = ("mean ms", "p50 ms", "p95 ms", "p99 ms", "throughput (frames/s)", "RPC KiB/frame")
    for column in (*columns, "between boards KiB/frame"):
        latency.add_column(column, justify="right")
    latency.add_row(
        *(f"{v:.2f}" for v in (e2e.mean_ms, e2e.p50_ms, e2e.p95_ms, e2e.p99_ms, result.throughput_fps)),
        kib(result.rpc_bytes_per_frame),
        kib(result.between_boards_bytes_per_frame),
    )
    console.print(latency)
    checks = Table(title="Checks", title_justify="left")
    for column in ("check", "result", "status", "detail"):
        checks.add_column(column)
    for check in result.checks:
        checks.add_row(check.name, check.value, _status(check.status), check.detail)
    console.print(checks)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.stage_seconds.items())
    console.print(f"stages: {stages}; compiled {result.compiled_parts} parts, {result.cache_hits} from cache")
