"""Frame schedules shared by the strategies: a verify pass, then warm-up and timed frames.

``process`` answers one frame (input tensor -> logits). The verify pass runs every image
once, one at a time, with the first-call deadline; its call times then set the deadline for
the rest. Timed frames run ``in_flight`` at a time: 1 for strategies that finish a frame
before starting the next, the number of stages for a pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..framework.images import Frame


@dataclass
class Answers:
    """Every frame answered: image index and logits; latencies and wall time of the timed frames."""

    images: list[int]
    logits: list[np.ndarray]
    timed_s: list[float]
    timed_wall_s: float = 0.0
    timed_frames: int = 0

    def stacked(self) -> np.ndarray:
        return np.concatenate(self.logits) if self.logits else np.zeros((0, 0), dtype=np.float32)

    @property
    def throughput_fps(self) -> float:
        return self.timed_frames / self.timed_wall_s if self.timed_wall_s > 0 else 0.0


def verify_pass(frames: list[Frame], process: Callable[[np.ndarray], np.ndarray], answers: Answers) -> None:
    for i, frame in enumerate(frames):
        answers.images.append(i)
        answers.logits.append(process(frame.tensor))


def sequential(
    frames: list[Frame], process: Callable[[np.ndarray], np.ndarray], warmup: int, runs: int, answers: Answers
) -> None:
    """Warm-up then timed frames, one in flight (images cycle)."""
    for i in range(warmup):
        answers.images.append(i % len(frames))
        answers.logits.append(process(frames[i % len(frames)].tensor))
    start = time.perf_counter()
    for i in range(runs):
        image = (warmup + i) % len(frames)
        t0 = time.perf_counter()
        answers.logits.append(process(frames[image].tensor))
        answers.timed_s.append(time.perf_counter() - t0)
        answers.images.append(image)
    answers.timed_wall_s = time.perf_counter() - start
    answers.timed_frames = runs
