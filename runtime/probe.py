"""Measure how fast a board really is, with a small convolution it runs like a branch would.

``profile`` placement and ``splitrun boards`` use it: the probe
(:func:`splitnet.framework.kernels.compile_probe`, built by the caller for the board's build
target and cached like any part) is uploaded and timed on the board with TVM's
time_evaluator, so RPC and transfer are not in the figure. Speeds are reported in GFLOP/s
and relative to the fastest board probed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..framework.artifact import CompiledArtifact
from .board_session import BoardSession


@dataclass(frozen=True)
class ProbeResult:
    board: str
    seconds: float
    gflops: float


def probe_inputs(artifact: CompiledArtifact) -> tuple[np.ndarray, np.ndarray]:
    """Seeded inputs of the probe's shapes: the feature map ``x`` and the kernel ``w``."""
    rng = np.random.RandomState(0)
    return tuple(rng.uniform(-1, 1, shape).astype(np.float32) for shape in artifact.input_shapes)


def probe_flops(artifact: CompiledArtifact) -> int:
    """Multiply-adds x 2 of the probe convolution (same-size output), from its input shapes."""
    (_, _, height, width), (c_out, c_in, kh, kw) = artifact.input_shapes
    return 2 * c_out * c_in * kh * kw * height * width


def probe(session: BoardSession, artifact: CompiledArtifact, repeat: int = 5) -> ProbeResult:
    """Median on-board time of the probe convolution ``artifact`` (built for this board), as GFLOP/s."""
    module = session.load(artifact)
    times = module.compute_times(*probe_inputs(artifact), repeat=repeat)
    seconds = float(np.median(times))
    return ProbeResult(board=session.board.name, seconds=seconds, gflops=probe_flops(artifact) / seconds / 1e9)


def relative_speeds(results: list[ProbeResult]) -> dict[str, float]:
    """Each board's speed relative to the fastest probed (1.0)."""
    fastest = max(r.gflops for r in results)
    return {r.board: r.gflops / fastest for r in results}
