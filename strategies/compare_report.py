"""Strategies side by side: a rich table, a JSON document and a PNG plot (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..framework.verify import FIDELITY_ATOL
from .base import StrategyResult
from .render import kib

COMPARE_COLUMNS = {
    "strategy": "the registered strategy",
    "lossless": "whether the strategy promises the unsplit model's output (checked within 1e-4)",
    "boards": "boards the strategy's pieces ran on (the merge head of branch runs on the host)",
    "p50 ms": "median latency of a timed frame, input to logits",
    "frames/s": "timed frames over the wall time of the timed section (pipeline: N frames in flight; branch: "
    "1000 / mean latency, one frame in flight, as splitrun run reports it)",
    "RPC KiB/frame": "every array sent to or received from a board per frame",
    "between boards KiB/frame": "intermediate tensors one piece hands another per frame (they travel via the host)",
    "max abs diff": "largest logit difference from the unsplit model (MXNet), over every frame answered",
    "top-1": "share of frames whose top-1 class equals the unsplit model's",
    "checks": "PASS when no check failed",
}


def boards_used(result: StrategyResult) -> int:
    return len({p.board for p in result.pieces if p.board != "host"})


def render_compare(results: list[StrategyResult], console: Console) -> None:
    first = results[0]
    console.print(
        f"[bold]{first.model}[/]: {len(results)} strategies, N={first.n}, on {first.inventory}; frames: {first.images}"
    )
    table = Table(title="Strategies side by side", title_justify="left")
    for column in COMPARE_COLUMNS:
        table.add_column(column, justify="left" if column in ("strategy", "lossless", "checks") else "right")
    for r in results:
        table.add_row(
            r.strategy,
            "yes" if r.lossless else "no",
            str(boards_used(r)),
            f"{r.latency.p50_ms:.2f}",
            f"{r.throughput_fps:.2f}",
            kib(r.rpc_bytes_per_frame),
            kib(r.between_boards_bytes_per_frame),
            f"{r.max_abs_diff:.2e}",
            f"{r.top1_agreement:.0%}",
            "[green]PASS[/]" if r.ok else "[bold red]FAIL[/]",
        )
    console.print(table)
    for r in results:
        console.print(f"  {r.strategy}: {r.detail}", highlight=False)


def compare_dict(results: list[StrategyResult]) -> dict:
    return {
        "model": results[0].model,
        "n": results[0].n,
        "inventory": results[0].inventory,
        "images": results[0].images,
        "ok": all(r.ok for r in results),
        "columns": COMPARE_COLUMNS,
        "strategies": [r.to_dict() for r in results],
    }


def write_json(results: list[StrategyResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(compare_dict(results), indent=2) + "\n")


def write_plot(results: list[StrategyResult], path: Path) -> None:
    """Four bar charts: p50 latency, throughput, bytes between boards, max |diff| (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.strategy for r in results]
    colors = ["#4c72b0" if r.lossless else "#dd8452" for r in results]
    panels = (
        ("p50 latency (ms)", [r.latency.p50_ms for r in results], False),
        ("throughput (frames/s)", [r.throughput_fps for r in results], False),
        ("between boards (KiB/frame)", [r.between_boards_bytes_per_frame / 1024 for r in results], False),
        ("max |diff| vs unsplit", [max(r.max_abs_diff, 1e-12) for r in results], True),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
    for ax, (title, values, log) in zip(axes, panels, strict=True):
        ax.bar(names, values, color=colors)
        ax.set_title(title, fontsize=10)
        if log:
            ax.set_yscale("log")
            ax.axhline(FIDELITY_ATOL, color="grey", linestyle="--", linewidth=1)
            ax.text(
                0.02,
                FIDELITY_ATOL * 1.3,
                "lossless tolerance",
                fontsize=7,
                color="grey",
                transform=ax.get_yaxis_transform(),
            )
        ax.tick_params(axis="x", labelrotation=20)
    fig.suptitle(f"{results[0].model}, N={results[0].n} (blue: lossless)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
