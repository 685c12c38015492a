"""The branch run's frames: a verify pass, warm-up and timed frames, then frames in flight.

Every answer is kept (:class:`FrameRecord`), recovered and degraded ones included, so the
checks can compare every frame sent with the in-process split.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from rich.progress import Progress

from ..framework.images import Frame
from ..framework.progress import Stopwatch
from ..runtime.chaos import Chaos
from ..runtime.executor import DistributedSplit
from ..runtime.guard import FIRST_CALL_TIMEOUT_S, derived_timeout, guarded
from .options import RunOptions


@dataclass(frozen=True)
class FrameRecord:
    image: int  # index into the frame list
    logits: np.ndarray
    degraded: bool
    total_s: float
    lost: tuple[int, ...]  # branches dropped when it ran (degrade policy)


@dataclass
class TimedRuns:
    frames: list[FrameRecord]  # every frame sent: verify pass, warm-up, timed
    branch_call_s: list[tuple[float, ...]]  # timed frames only, from here on
    total_s: list[float]
    head_s: list[float]
    steady_fps: float = 0.0  # frames/s with --depth frames in flight (0 when depth is 1)
    steady_host_cpu_ms: float = 0.0  # this process's CPU per frame in that phase (every thread)
    ran_s: dict = field(default_factory=dict)  # module -> seconds it ran on its board per timed call


def _called(runner: DistributedSplit) -> list:
    """Every module the runner calls (replicas included) that counts its time on the board."""
    return [m for replicas in runner.branches for m in replicas if hasattr(m, "ran_s")]


def compute_s(
    branch: int, module, x: np.ndarray, repeat: int, ran: tuple[float, ...] = (), runs: int = 0
) -> tuple[float, str]:
    """Median on-board seconds of one branch call (NaN for a branch that was dropped), and where
    it was measured: in the ``runs`` timed calls themselves where the board's server counts it
    (``ran``: no drift of a shared machine between the calls and their compute), else in
    ``repeat`` calls timed on the board after the frames."""
    if module is None:
        return float("nan"), "dropped"
    if ran and len(ran) >= min(repeat, runs):
        return float(np.median(ran)), "calls"
    what = f"timing branch {branch} on {module.board}"
    times = guarded(lambda: module.compute_times(x, repeat=repeat), timeout=FIRST_CALL_TIMEOUT_S, what=what)
    return float(np.median(times)), "after"


def run_frames(
    runner: DistributedSplit,
    frames: list[Frame],
    options: RunOptions,
    progress: Progress,
    watch: Stopwatch,
    chaos: Chaos,
) -> TimedRuns:
    """A verify pass over every image, then warm-up and timed frames (cycling); every answer kept.

    The verify pass runs with the first-call timeout; its branch call times then set the
    timeout for the rest (unless ``--timeout`` fixed it). The timed frames run one at a time
    (single-frame latency); then, with ``depth`` > 1, as many again with ``depth`` frames in
    flight, so a board starts the next frame while the head and the transfers of the last
    one are still going (steady-state throughput).
    """
    task = progress.add_task("frames", total=options.frames_sent(len(frames)))
    timed = TimedRuns([], [], [], [])

    def one(image: int):
        chaos.before_frame(runner.frames, runner)
        result = runner(frames[image].on_wire(options.wire))
        timed.frames.append(
            FrameRecord(image, result.logits, result.degraded, result.total_s, tuple(sorted(runner.lost)))
        )
        progress.advance(task)
        return result

    with watch.stage("verify pass"):
        first = [one(i) for i in range(len(frames))]
    runner.timeout_s = options.timeout_s or derived_timeout([s for r in first if not r.events for s in r.branch_call_s])
    with watch.stage("timed frames"):
        for i in range(options.warmup + options.runs):
            if i == options.warmup:
                for module in _called(runner):
                    module.ran_s.clear()
            result = one(i % len(frames))
            if i >= options.warmup:
                timed.branch_call_s.append(result.branch_call_s)
                timed.total_s.append(result.total_s)
                timed.head_s.append(result.head_s)
        timed.ran_s = {module: tuple(module.ran_s) for module in _called(runner)}
    if options.pipelined_runs:  # steady state: `depth` frames in flight, so boards never wait on the head
        with watch.stage("pipelined frames"), ThreadPoolExecutor(options.depth, "splitnet-frame") as pool:
            start, cpu = time.perf_counter(), time.process_time()
            list(pool.map(one, (i % len(frames) for i in range(options.pipelined_runs))))
            timed.steady_fps = options.pipelined_runs / (time.perf_counter() - start)
            timed.steady_host_cpu_ms = (time.process_time() - cpu) * 1000.0 / options.pipelined_runs
    return timed
