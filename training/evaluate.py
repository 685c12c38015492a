"""Logits of a split model over a held-out set: in-process (MXNet) and through the boards.

In-process, each part runs as a Gluon SymbolBlock in batches; the branch features are kept,
so the degraded answers (one branch lost: its features zeroed, as the runtime's ``degrade``
policy does) cost only a head call each.

Through the boards, the same split goes the way ``splitrun run`` sends it, through the one
deploy path (:mod:`splitnet.strategies.deploy`): every part is built with TVM through the
compile cache with the tuning database that matches it, branches are uploaded to the boards
of the inventory (real RPC servers registered with a tracker), and every held-out image is
one frame of a :class:`DistributedSplit`, one frame at a time. The degraded pass marks the
last branch lost on the same runner, so its answers come from the surviving boards' features.
"""

from __future__ import annotations

from dataclasses import dataclass

import mxnet as mx
import numpy as np
from rich.progress import Progress

from ..framework.split_model import SplitModel
from ..runtime.board_session import BoardSession
from ..runtime.inventory import Inventory
from ..strategies.deploy import deploy_split
from .metrics import EVAL_BATCH


@dataclass(frozen=True)
class InProcess:
    logits: np.ndarray  # (images, classes)
    degraded: tuple[np.ndarray, ...]  # logits with branch i's features zeroed, one per branch (N > 1)


@dataclass(frozen=True)
class OnBoards:
    logits: np.ndarray
    degraded: np.ndarray | None  # the last branch lost (N > 1)
    lost_branch: int | None
    frame_s: tuple[float, ...]  # end-to-end seconds per frame (intact pass)
    boards: tuple[str, ...]  # board of each branch
    fidelity: float  # max |boards - in-process| over the intact and degraded answers
    tuning: tuple[str, ...] = ()  # which tuning database each build used, or why none


def in_process(split: SplitModel, images: np.ndarray, batch: int = EVAL_BATCH) -> InProcess:
    features = [
        np.concatenate([part(images[i : i + batch]) for i in range(0, len(images), batch)]) for part in split.branches
    ]
    logits = split.merge(features)
    degraded = ()
    if split.plan.n > 1:
        degraded = tuple(
            split.merge([np.zeros_like(f) if j == i else f for j, f in enumerate(features)])
            for i in range(split.plan.n)
        )
    return InProcess(logits=logits, degraded=degraded)


def on_boards(
    split: SplitModel,
    images: np.ndarray,
    inventory: Inventory,
    sessions: dict[str, BoardSession],
    expected: InProcess,
    progress: Progress,
    label: str,
) -> OnBoards:
    """Every image as one frame through the boards (and again with the last branch lost)."""
    n = split.plan.n
    deployment = deploy_split(split, inventory, sessions, "degrade")
    runner, placement = deployment.runner, deployment.placement
    passes = 2 if n > 1 else 1
    task = progress.add_task(label, total=passes * len(images))
    logits, frame_s = [], []
    for x in images:
        result = runner(x[None])
        logits.append(result.logits)
        frame_s.append(result.total_s)
        progress.advance(task)
    intact = np.concatenate(logits)
    worst = float(np.max(np.abs(intact - expected.logits)))
    degraded, lost = None, None
    if n > 1:
        lost = n - 1
        runner.lost = {lost}  # as if its board had failed: the degrade policy's answers
        degraded_logits = []
        for x in images:
            degraded_logits.append(runner(x[None]).logits)
            progress.advance(task)
        degraded = np.concatenate(degraded_logits)
        worst = max(worst, float(np.max(np.abs(degraded - expected.degraded[lost]))))
    return OnBoards(
        logits=intact,
        degraded=degraded,
        lost_branch=lost,
        frame_s=tuple(frame_s),
        boards=placement.branches,
        fidelity=worst,
        tuning=deployment.tuning,
    )


def reference_logits(block: mx.gluon.HybridBlock, images: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    return np.concatenate([block(mx.nd.array(images[i : i + batch])).asnumpy() for i in range(0, len(images), batch)])
