"""Answers that are wrong, not missing: every answer is checked, and every K-th frame is audited.

A board that answers with the wrong shape or with NaN or infinity (a mismatched library, a
corrupted weight) would otherwise pass straight into the merge head and out as a plausible
wrong answer. :func:`checker` makes the check each branch call and each coded head block runs
before its answer is handed on (it raises :class:`~.guard.WrongAnswer`, so the board is failed,
named and recovered like one that did not answer). The finite check applies only when the
frame itself is finite: a NaN input is the user's, not a board's fault.

A board can also answer with the right shape and finite values that are simply wrong. Only
a comparison with a trusted computation catches that, and it costs one in-process run of the
split, so :class:`Audit` does it every ``every``-th frame (``--audit K``), while the run goes
on: the in-process features start on a thread when the frame starts, and each branch's
answer is compared with its own, so the board that is wrong is named.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ..framework.verify import FIDELITY_ATOL
from .guard import FIRST_CALL_TIMEOUT_S, WrongAnswer, submit

Check = Callable[[np.ndarray], None]


def check_answer(out: np.ndarray, shape: tuple[int, ...] | None, finite: bool) -> None:
    """Raise :class:`WrongAnswer` when ``out`` cannot be the answer."""
    if shape is not None and tuple(out.shape) != tuple(shape):
        raise WrongAnswer(f"answered a {tuple(out.shape)} array where {tuple(shape)} was expected")
    if finite and not np.isfinite(out).all():
        bad = int(out.size - np.isfinite(out).sum())
        raise WrongAnswer(f"answered {bad} non-finite values (NaN or infinity) of {out.size}")


def all_finite(x: np.ndarray) -> bool:
    """Whether every value of ``x`` is finite; integer frames (uint8 pixels) always are, and
    are not scanned: 150 KB a frame of comparisons the host would take from the boards' cores."""
    return x.dtype.kind not in "fc" or bool(np.isfinite(x).all())


def checker(shape: tuple[int, ...] | None, finite: bool) -> Check:
    """The check one call's answer must pass (``shape`` None: any shape)."""
    return lambda out: check_answer(out, shape, finite)


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


@dataclass
class Audit:
    """Every ``every``-th frame, each branch's answer against the same branch run in-process.

    ``features(x)`` is the in-process split's branch features for ``x`` (handed in by the
    orchestration: the runtime runs no model itself). Counts what it checked and found.
    """

    every: int
    features: Callable[[np.ndarray], list[np.ndarray]]
    atol: float = FIDELITY_ATOL
    frames: int = 0  # frames audited
    mismatches: int = 0  # answers that differed by more than atol (each failed its board)
    worst: float = 0.0  # largest difference of an answer that was accepted
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # MXNet, one call at a time

    def due(self, frame: int) -> bool:
        return self.every > 0 and frame % self.every == 0

    def start(self, x: np.ndarray) -> Future:
        """The in-process features, computed beside the boards' calls."""

        def run() -> list[np.ndarray]:
            with self._lock:
                return self.features(x)

        return submit(run, name="splitnet-audit")

    @staticmethod
    def expected(future: Future) -> list[np.ndarray]:
        return future.result(timeout=FIRST_CALL_TIMEOUT_S)

    def compare(self, got: np.ndarray, expected: np.ndarray) -> float | None:
        """The difference when it is too large (the answer is wrong), else None (and it is kept)."""
        diff = max_diff(got, expected)
        if diff > self.atol:
            self.mismatches += 1
            return diff
        self.worst = max(self.worst, diff)
        return None

    def summary(self) -> dict:
        return {"every": self.every, "frames": self.frames, "mismatches": self.mismatches, "max_abs_diff": self.worst}
