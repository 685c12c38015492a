"""Coded distributed computing for dense layers: k row blocks plus one parity block.

A dense layer ``y = W x + b`` splits by output rows: board ``j`` of ``k`` holds ``W_j`` and
returns ``W_j x``; one more board holds the parity ``P = W_1 + ... + W_k`` (blocks padded to
equal height) and returns ``P x``. Any ``k`` of the ``k + 1`` answers give ``y``: a lost or
late block is ``P x`` minus the others, exactly up to float rounding. Redundancy costs one
block (``1/k`` of the layer) however many boards there are, where replication costs a whole
copy. Used for the merge head's dense layers (the head's other ops, activations and
flattening, run on the host between them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass

import numpy as np

from ..framework.artifact import CompiledArtifact
from ..framework.errors import SplitnetError
from ..framework.split_model import Part
from .board_session import BoardSession, RemoteModule
from .guard import FIRST_CALL_TIMEOUT_S, submit
from .inventory import Board

# The matvec kernel (splitnet.framework.kernels.compile_matvec) built for a board: handed in
# by the orchestration, since the runtime runs artifacts and never compiles.
KernelFor = Callable[[Board], CompiledArtifact]


def row_blocks(weight: np.ndarray, k: int) -> tuple[list[np.ndarray], np.ndarray, list[int]]:
    """``k`` row blocks (zero-padded to equal height), their sum, and each block's real height."""
    bounds = np.linspace(0, weight.shape[0], k + 1).round().astype(int)
    heights = [int(bounds[j + 1] - bounds[j]) for j in range(k)]
    tall = max(heights)
    blocks = []
    for j in range(k):
        block = np.zeros((tall, weight.shape[1]), dtype=np.float32)
        block[: heights[j]] = weight[bounds[j] : bounds[j + 1]]
        blocks.append(block)
    return blocks, np.sum(blocks, axis=0, dtype=np.float32), heights


def decode(answers: dict[int, np.ndarray], k: int, heights: list[int]) -> tuple[np.ndarray, int | None]:
    """``y`` from any ``k`` of the ``k + 1`` block answers (index ``k`` is the parity).

    Returns the output and the index of the block recovered from parity (None if none was).
    """
    missing = [j for j in range(k) if j not in answers]
    if len(missing) > 1 or (missing and k not in answers):
        raise ValueError(f"blocks {missing} lost and cannot all be recovered from one parity block")
    recovered = None
    if missing:
        recovered = missing[0]
        answers = dict(answers)
        answers[recovered] = answers[k] - sum(answers[j] for j in range(k) if j != recovered)
    return np.concatenate([answers[j][:, : heights[j]] for j in range(k)], axis=1), recovered


@dataclass(frozen=True)
class HeadLayer:
    kind: str  # "dense", "relu", "flatten", "identity"
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None


def head_layers(head: Part) -> list[HeadLayer]:
    """The merge head as a list of layers after the concat; dense layers are what gets coded."""
    nodes = json.loads(head.symbol_json)["nodes"]
    layers = []
    for node in nodes:
        op, attrs = node["op"], node.get("attrs", {})
        if op in ("null", "Concat"):
            continue
        if op == "FullyConnected":
            names = [nodes[i]["name"] for i, _, _ in node["inputs"][1:]]
            bias = head.params[names[1]] if len(names) > 1 and attrs.get("no_bias") != "True" else None
            layers.append(HeadLayer("dense", head.params[names[0]], bias))
        elif (op == "Activation" and attrs.get("act_type") == "relu") or op == "relu":
            layers.append(HeadLayer("relu"))
        elif op == "Flatten":
            layers.append(HeadLayer("flatten"))
        elif op == "Dropout":
            layers.append(HeadLayer("identity"))
        else:
            raise SplitnetError(
                f"the merge head's {op} layer ({node['name']}) cannot run as a coded head",
                "use another recovery policy (spare, replicate or degrade) for this model",
            )
    return layers


Failure = Callable[[str, str, str, float], None]  # board, kind, detail, detected after seconds


class CodedDense:
    """One dense layer spread over ``k + 1`` boards (the last holds the parity block)."""

    def __init__(self, layer: HeadLayer, sessions: list[BoardSession], artifact_for: KernelFor) -> None:
        self.k = len(sessions) - 1
        if self.k < 1:
            raise SplitnetError("the coded head needs at least two boards", "add a board, or use --policy spare")
        blocks, parity, self.heights = row_blocks(layer.weight.astype(np.float32), self.k)
        self.bias = layer.bias
        self.modules: list[RemoteModule] = []
        self._late: dict[int, Future] = {}  # block calls still running when the last output decoded
        for session, block in zip(sessions, [*blocks, parity], strict=True):
            done = submit(session.load, artifact_for(session.board), (np.ascontiguousarray(block),))
            self.modules.append(done.result(timeout=FIRST_CALL_TIMEOUT_S))

    def __call__(self, x: np.ndarray, dead: set[str], timeout: float, failed: Failure) -> tuple[np.ndarray, int | None]:
        """``W x + b`` from the first ``k`` block answers; a missing block is decoded from parity."""
        self._report_late_failures(failed)
        started = time.perf_counter()
        futures = {j: submit(m, x) for j, m in enumerate(self.modules) if m.board not in dead}
        answers: dict[int, np.ndarray] = {}
        pending = set(futures)
        while len(answers) < self.k and pending:
            remaining = started + timeout - time.perf_counter()
            if remaining <= 0:
                break
            done, _ = wait([futures[j] for j in pending], timeout=remaining, return_when=FIRST_COMPLETED)
            for j in sorted(pending):
                if futures[j] in done:
                    pending.discard(j)
                    if futures[j].exception() is None:
                        answers[j] = futures[j].result()
                    else:
                        detail = " ".join(str(futures[j].exception()).split())[:200]
                        failed(self.modules[j].board, "error", detail, time.perf_counter() - started)
        if len(answers) < self.k:
            for j in pending:
                failed(self.modules[j].board, "timeout", f"no answer in {timeout:.2f} s", time.perf_counter() - started)
            lost = [self.modules[j].board for j in range(self.k + 1) if j not in answers]
            raise SplitnetError(
                f"the coded head lost {len(lost)} of its {self.k + 1} blocks (boards {', '.join(lost)}); "
                "one parity block recovers only one",
                "add boards, or use --policy spare",
            )
        self._late = {j: futures[j] for j in pending}  # still running: checked at the next call
        y, recovered = decode(answers, self.k, self.heights)
        return (y + self.bias if self.bias is not None else y), recovered

    def _report_late_failures(self, failed: Failure) -> None:
        """Blocks that were not needed last time but have since failed are failures too."""
        for j, future in self._late.items():
            if future.done() and future.exception() is not None:
                failed(self.modules[j].board, "error", " ".join(str(future.exception()).split())[:200], 0.0)
        self._late = {}


class CodedHead:
    """The merge head with every dense layer coded over the boards; the rest on the host."""

    def __init__(self, head: Part, sessions: list[BoardSession], artifact_for: KernelFor) -> None:
        self.layers = head_layers(head)
        self.dense = {
            i: CodedDense(layer, sessions, artifact_for) for i, layer in enumerate(self.layers) if layer.kind == "dense"
        }
        self.recovered_blocks = 0

    def __call__(self, features: tuple[np.ndarray, ...], dead: set[str], timeout: float, failed: Failure) -> np.ndarray:
        x = np.concatenate(features, axis=1).astype(np.float32)
        for i, layer in enumerate(self.layers):
            if layer.kind == "dense":
                x, recovered = self.dense[i](x, dead, timeout, failed)
                self.recovered_blocks += recovered is not None
            elif layer.kind == "relu":
                x = np.maximum(x, 0)
            elif layer.kind == "flatten":
                x = x.reshape(x.shape[0], -1)
        return x
