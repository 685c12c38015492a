"""Measure how fast a board really is, with a small convolution it runs like a branch would.

``profile`` placement and ``splitrun boards`` use it: the probe is compiled for the board's
build target (cached like any part), uploaded, and timed on the board with TVM's
time_evaluator, so RPC and transfer are not in the figure. Speeds are reported in GFLOP/s
and relative to the fastest board probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm
from splitnet.framework.cache import content_key
from splitnet.framework.compile import CompiledArtifact, build_cached
from splitnet.framework.targets import target_key
from splitnet.runtime.board_session import BoardSession
from tvm.script import ir as I  # noqa: N812 (TVMScript's own spelling)
from tvm.script import relax as R  # noqa: N812

CHANNELS, SIZE, KERNEL = 32, 28, 3
PROBE_FLOPS = 2 * CHANNELS * CHANNELS * KERNEL * KERNEL * SIZE * SIZE
PROBE_VERSION = "1"


@I.ir_module
class _Probe:
    @R.function
    def main(x: R.Tensor((1, 32, 28, 28), "float32"), w: R.Tensor((32, 32, 3, 3), "float32")) -> R.Tensor(
        (1, 32, 28, 28), "float32"
    ):
        with R.dataflow():
            y = R.nn.conv2d(x, w, padding=(1, 1))
            z = R.nn.relu(y)
            R.output(z)
        return z


@dataclass(frozen=True)
class ProbeResult:
    board: str
    seconds: float
    gflops: float


def probe_inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, (1, CHANNELS, SIZE, SIZE)).astype(np.float32)
    w = rng.uniform(-1, 1, (CHANNELS, CHANNELS, KERNEL, KERNEL)).astype(np.float32)
    return x, w


def compile_probe(target: dict, fmt: str = "so", cache_dir: Path | None = None) -> CompiledArtifact:
    key = content_key("probe", PROBE_VERSION, target_key(target), fmt, tvm.__version__)
    library, cached = build_cached("probe", key, lambda _: _Probe, target, fmt, cache_dir)
    return CompiledArtifact(
        part="probe",
        path=library,
        target=target,
        key=key,
        input_names=("x", "w"),
        input_shapes=((1, CHANNELS, SIZE, SIZE), (CHANNELS, CHANNELS, KERNEL, KERNEL)),
        output_shape=(1, CHANNELS, SIZE, SIZE),
        tuned=False,
        cached=cached,
    )


def probe(session: BoardSession, repeat: int = 5) -> ProbeResult:
    """Median on-board time of the probe convolution, as GFLOP/s."""
    board = session.board
    module = session.load(compile_probe(board.build_target, board.build_format))
    times = module.compute_times(*probe_inputs(), repeat=repeat)
    seconds = float(np.median(times))
    return ProbeResult(board=board.name, seconds=seconds, gflops=PROBE_FLOPS / seconds / 1e9)


def relative_speeds(results: list[ProbeResult]) -> dict[str, float]:
    """Each board's speed relative to the fastest probed (1.0)."""
    fastest = max(r.gflops for r in results)
    return {r.board: r.gflops / fastest for r in results}
