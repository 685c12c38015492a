"""Run frames through a placed split model: branches in parallel, then the merge head.

Branch calls go out from one thread per branch (TVM RPC releases the GIL, so sessions on
different boards really run at once); branches sharing a board queue on its lock. The head
runs in this process, where the features arrive.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from splitnet.runtime.board_session import RemoteModule


@dataclass(frozen=True)
class FrameResult:
    logits: np.ndarray
    features: tuple[np.ndarray, ...]
    branch_call_s: tuple[float, ...]
    head_s: float
    total_s: float


class DistributedSplit:
    """``DistributedSplit(branches, head)(x)`` -> :class:`FrameResult` for one frame."""

    def __init__(self, branches: list[RemoteModule], head: Callable[..., np.ndarray]) -> None:
        self.branches = branches
        self.head = head
        self._pool = ThreadPoolExecutor(max_workers=len(branches), thread_name_prefix="splitnet-branch")

    @staticmethod
    def _timed(module: RemoteModule, x: np.ndarray) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        out = module(x)
        return out, time.perf_counter() - start

    def __call__(self, x: np.ndarray) -> FrameResult:
        start = time.perf_counter()
        futures = [self._pool.submit(self._timed, module, x) for module in self.branches]
        results = [f.result() for f in futures]
        features = tuple(r[0] for r in results)
        head_start = time.perf_counter()
        logits = self.head(*features)
        end = time.perf_counter()
        return FrameResult(
            logits=logits,
            features=features,
            branch_call_s=tuple(r[1] for r in results),
            head_s=end - head_start,
            total_s=end - start,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
