"""What every strategy shares: options, the context a run gets, the result it returns.

A strategy is a class with a ``name``, a one-line ``summary``, ``lossless`` (whether its
output must equal the unsplit model's) and ``run(context) -> StrategyResult``. Strategies
register by name (``@register_strategy``, :mod:`registry`), so a new way of spreading a
model over boards is one new module; ``splitrun --strategy NAME`` and ``splitrun compare``
find it there.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from rich.progress import Progress

from ..framework.images import Frame
from ..framework.report import LatencyStats
from ..framework.verify import FAIL, FIDELITY_ATOL, INFO, PASS, Check
from ..partitioners.graph import ModelGraph
from ..runtime.fleet import Fleet
from ..runtime.inventory import Inventory
from ..zoo import Reference
from .options import RunOptions
from .registry import DEFAULT_STRATEGY, get_strategy, list_strategies, register_strategy
from .request import SplitRequest

__all__ = [
    "DEFAULT_STRATEGY",
    "Context",
    "PieceReport",
    "Strategy",
    "StrategyOptions",
    "StrategyResult",
    "accuracy_checks",
    "get_strategy",
    "list_strategies",
    "register_strategy",
]


@dataclass(frozen=True)
class StrategyOptions:
    """``run`` holds what the branch run takes (model, N, images, frames, inventory, ...);
    ``fuse_until`` is the spatial strategy's last fused layer (None: chosen by cost)."""

    run: RunOptions = field(default_factory=RunOptions)
    fuse_until: str | None = None


@dataclass
class Context:
    """One strategy run's inputs: started boards, the reference, its graph, the frames."""

    options: StrategyOptions
    request: SplitRequest  # the options' split, checked once for every strategy of the run
    inventory: Inventory
    fleet: Fleet
    reference: Reference
    graph: ModelGraph
    frames: list[Frame]
    image_source: str
    reference_logits: np.ndarray  # unsplit model in MXNet, one row per frame
    progress: Progress | None = None  # progress bars on stderr (compile, upload, frames)

    @property
    def frames_sent(self) -> int:
        return len(self.frames) + self.options.run.warmup + self.options.run.runs


@dataclass(frozen=True)
class PieceReport:
    """One compiled piece on one board: a tile, a stage, a branch or the head."""

    name: str
    board: str
    flops: int
    in_bytes: int
    out_bytes: int
    compute_ms: float  # median on-board time of one call (NaN when not measured)


@dataclass(frozen=True)
class StrategyResult:
    strategy: str
    model: str
    n: int
    inventory: str
    images: str
    lossless: bool  # the strategy promises the unsplit model's output
    pieces: tuple[PieceReport, ...]
    latency: LatencyStats  # timed frames, from input to logits
    throughput_fps: float  # timed frames / wall time of the timed section
    in_flight: int  # frames in flight at once in the timed section
    rpc_bytes_per_frame: int  # every array sent to or received from a board, per frame
    between_boards_bytes_per_frame: int  # intermediate tensors one piece hands another, per frame
    max_abs_diff: float  # logits against the unsplit model, over every frame answered
    top1_agreement: float  # share of frames whose top-1 equals the unsplit model's
    frames: int  # frames answered (verify pass, warm-up, timed)
    checks: tuple[Check, ...]
    detail: str = ""  # what the strategy chose (fused layers, cut points, ...)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    compiled_parts: int = 0
    cache_hits: int = 0

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")


class Strategy(Protocol):
    name: str
    summary: str
    lossless: bool

    def run(self, context: Context) -> StrategyResult: ...


def accuracy_checks(
    logits: np.ndarray, reference: np.ndarray, lossless: bool, frames_sent: int
) -> tuple[tuple[Check, ...], float, float]:
    """Logits (one row per frame answered) against the unsplit model's for the same frames."""
    diff = float(np.max(np.abs(logits - reference))) if len(logits) else float("inf")
    agree = float(np.mean(logits.argmax(axis=1) == reference.argmax(axis=1))) if len(logits) else 0.0
    checks = (
        Check(
            name="output vs unsplit model (MXNet)",
            value=f"max |diff| {diff:.2e}",
            status=(PASS if diff <= FIDELITY_ATOL else FAIL) if lossless else INFO,
            detail=f"lossless: tolerance {FIDELITY_ATOL:.0e}" if lossless else "not lossless by design",
        ),
        Check(
            name="frames answered",
            value=f"{len(logits)}/{frames_sent}",
            status=PASS if len(logits) == frames_sent else FAIL,
            detail="no frame lost",
        ),
        Check(
            name="top-1 vs unsplit model",
            value=f"{agree:.0%}",
            status=INFO,  # lossless is judged by the difference; a near tie may still flip a top-1
            detail="share of frames" if lossless else "the cost of the strategy",
        ),
    )
    return checks, diff, agree
