"""SplitPlan: what a partitioner decided, as plain data that can be saved and checked.

The plan names the body (ops every branch copies), the feature tensor (the body's output,
after global pooling), the head (ops after it), the width shares, and for every body tensor
the channel indices each branch owns. It also carries the accounting a user needs before
building anything: per-branch parameters and FLOPs against the reference.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class BranchSpec:
    index: int
    share: float
    feature_size: int
    params: int
    flops: int
    conv_channels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HeadSpec:
    feature_sizes: tuple[int, ...]
    outputs: int
    params: int
    flops: int
    ops: tuple[str, ...]


@dataclass(frozen=True)
class SplitPlan:
    """A partitioner's decision for one model, N and width shares (no weights inside)."""

    model: str
    partitioner: str
    input_shape: tuple[int, ...]
    n: int
    shares: tuple[float, ...]
    multiple: int
    body_ops: tuple[str, ...]
    feature_tensor: str
    head_ops: tuple[str, ...]
    assignment: dict[str, tuple[tuple[int, ...], ...] | None]
    branches: tuple[BranchSpec, ...]
    head: HeadSpec
    reference_params: int
    reference_flops: int
    reference_body_flops: int

    def channels(self, tensor: str) -> list[np.ndarray] | None:
        """Branch channel indices of ``tensor`` (None: every branch gets all of it)."""
        value = self.assignment[tensor]
        return None if value is None else [np.asarray(idx, dtype=np.int64) for idx in value]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["assignment"] = {k: None if v is None else [_runs(idx) for idx in v] for k, v in self.assignment.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SplitPlan:
        data = dict(data)
        data["assignment"] = {
            k: None if v is None else tuple(_unruns(runs) for runs in v) for k, v in data["assignment"].items()
        }
        data["branches"] = tuple(BranchSpec(**b) for b in data["branches"])
        head = dict(data["head"])
        head["feature_sizes"], head["ops"] = tuple(head["feature_sizes"]), tuple(head["ops"])
        data["head"] = HeadSpec(**head)
        for key in ("input_shape", "shares", "body_ops", "head_ops"):
            data[key] = tuple(data[key])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def _runs(indices: tuple[int, ...]) -> list[list[int]]:
    """[3,4,5,9] -> [[3,6],[9,10]]: contiguous runs keep saved plans small."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return runs


def _unruns(runs: list[list[int]]) -> tuple[int, ...]:
    return tuple(i for start, stop in runs for i in range(start, stop))
