"""Coded distributed computing for dense layers: k row blocks plus one parity block.

A dense layer ``y = W x + b`` splits by output rows: board ``j`` of ``k`` holds ``W_j`` and
returns ``W_j x``; one more board holds the parity ``P = W_1 + ... + W_k`` (blocks padded to
equal height) and returns ``P x``. Any ``k`` of the ``k + 1`` answers give ``y``: a lost or
late block is ``P x`` minus the others, exactly up to float rounding. Redundancy costs one
block (``1/k`` of the layer) however many boards there are, where replication costs a whole
copy. Used for the merge head's dense layers (the head's other ops, activations and
flattening, run on the host between them).

A code is made for a set of boards; after a loss it keeps answering from parity, and the
runtime re-encodes a new one over the boards that are left (a new ``CodedHead``: ``k`` one
less, parity over the survivors), so a second loss is decoded as exactly as the first.
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
from ..framework.verify import FIDELITY_ATOL
from .answers import all_finite, checker, max_diff
from .board_session import BoardSession, RemoteModule
from .guard import FIRST_CALL_TIMEOUT_S, WrongAnswer, submit
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


class CodeLost(SplitnetError):
    """More blocks lost in one frame than the parity block can recover."""


class BlockUploadFailed(SplitnetError):
    """A block could not be put on a board (it failed while the head was being coded)."""

    def __init__(self, board: str, detail: str) -> None:
        super().__init__(
            f"uploading a coded head block to board {board} failed ({detail})", "check it: splitrun boards"
        )
        self.board = board


class CodedDense:
    """One dense layer spread over ``k + 1`` boards (the last holds the parity block).

    ``failed_boards`` is shared by every layer of one head: a board that failed once is never
    asked again by this code, even if it comes back (the runtime re-encodes the head to take
    it back, with fresh blocks). ``keep_blocks`` keeps the block matrices on the host, so an
    audited frame can check each board's block answer.
    """

    def __init__(
        self,
        layer: HeadLayer,
        sessions: list[BoardSession],
        artifact_for: KernelFor,
        failed_boards: set[str] | None = None,
        keep_blocks: bool = False,
    ) -> None:
        self.k = len(sessions) - 1
        if self.k < 1:
            raise SplitnetError("the coded head needs at least two boards", "add a board, or use --policy spare")
        blocks, parity, self.heights = row_blocks(layer.weight.astype(np.float32), self.k)
        self.tall = blocks[0].shape[0]
        self.bias = layer.bias
        self.failed_boards = set() if failed_boards is None else failed_boards
        self.matrices = [*blocks, parity] if keep_blocks else []
        self.modules: list[RemoteModule] = []
        self._late: dict[int, Future] = {}  # block calls still running when the last output decoded
        for session, block in zip(sessions, [*blocks, parity], strict=True):
            done = submit(session.load, artifact_for(session.board), (np.ascontiguousarray(block),))
            try:
                self.modules.append(done.result(timeout=FIRST_CALL_TIMEOUT_S))
            except Exception as exc:  # noqa: BLE001 (named, so the runtime can fail that board)
                detail = " ".join(str(exc).split())[:160] or type(exc).__name__
                raise BlockUploadFailed(session.board.name, detail) from None

    @staticmethod
    def _call(module: RemoteModule, x: np.ndarray, check) -> np.ndarray:
        out = module(x)
        check(out)  # a wrong block answer raises here and is treated as a lost block
        return out

    def __call__(
        self, x: np.ndarray, dead: set[str], timeout: float, failed: Failure, audit: bool = False
    ) -> tuple[np.ndarray, int | None]:
        """``W x + b`` from the first ``k`` block answers; a missing block is decoded from parity.

        Every block answer must have the block's shape and be finite (when ``x`` is); on an
        ``audit`` frame it must also equal the block times ``x`` computed here.
        """
        self._report_late_failures(failed)
        started = time.perf_counter()
        check = checker((x.shape[0], self.tall), all_finite(x))
        skip = dead | self.failed_boards
        futures = {j: submit(self._call, m, x, check) for j, m in enumerate(self.modules) if m.board not in skip}
        answers: dict[int, np.ndarray] = {}
        pending = set(futures)

        def fail(j: int, kind: str, detail: str) -> None:
            self.failed_boards.add(self.modules[j].board)
            failed(self.modules[j].board, kind, detail, time.perf_counter() - started)

        while len(answers) < self.k and pending:
            remaining = started + timeout - time.perf_counter()
            if remaining <= 0:
                break
            done, _ = wait([futures[j] for j in pending], timeout=remaining, return_when=FIRST_COMPLETED)
            for j in sorted(pending):
                if futures[j] not in done:
                    continue
                pending.discard(j)
                exc = futures[j].exception()
                if exc is not None:
                    fail(j, "wrong" if isinstance(exc, WrongAnswer) else "error", " ".join(str(exc).split())[:200])
                    continue
                out = futures[j].result()
                if audit and self.matrices:
                    diff = max_diff(out, x @ self.matrices[j].T)
                    if diff > FIDELITY_ATOL:
                        fail(j, "wrong", f"audit: head block {j} differs from the host's by {diff:.1e}")
                        continue
                answers[j] = out
        if len(answers) < self.k:
            for j in pending:
                fail(j, "timeout", f"no answer in {timeout:.2f} s")
            lost = [self.modules[j].board for j in range(self.k + 1) if j not in answers]
            raise CodeLost(
                f"the coded head lost {len(lost)} of its {self.k + 1} blocks (boards {', '.join(lost)}); "
                "one parity block recovers only one",
                "add boards, or use --policy spare",
            )
        self._late = {j: futures[j] for j in pending}  # still running: checked at the next call
        y, recovered = decode(answers, self.k, self.heights)
        return (y + self.bias if self.bias is not None else y), recovered

    def _report_late_failures(self, failed: Failure) -> None:
        """Blocks that were not needed last time but have since failed are failures too."""
        late, self._late = self._late, {}
        for j, future in late.items():
            if future.done() and future.exception() is not None and self.modules[j].board not in self.failed_boards:
                exc = future.exception()
                self.failed_boards.add(self.modules[j].board)
                kind = "wrong" if isinstance(exc, WrongAnswer) else "error"
                failed(self.modules[j].board, kind, " ".join(str(exc).split())[:200], 0.0)


class CodedHead:
    """The merge head with every dense layer coded over the boards; the rest on the host."""

    def __init__(self, head: Part, sessions: list[BoardSession], artifact_for: KernelFor, keep_blocks: bool = False):
        self.layers = head_layers(head)
        self.boards = tuple(s.board.name for s in sessions)
        self.failed_boards: set[str] = set()
        self.dense = {
            i: CodedDense(layer, sessions, artifact_for, self.failed_boards, keep_blocks)
            for i, layer in enumerate(self.layers)
            if layer.kind == "dense"
        }
        self.recovered_blocks = 0

    @property
    def k(self) -> int:
        return len(self.boards) - 1

    def __call__(
        self, features: tuple[np.ndarray, ...], dead: set[str], timeout: float, failed: Failure, audit: bool = False
    ) -> np.ndarray:
        x = np.concatenate(features, axis=1).astype(np.float32)
        for i, layer in enumerate(self.layers):
            if layer.kind == "dense":
                x, recovered = self.dense[i](x, dead, timeout, failed, audit)
                self.recovered_blocks += recovered is not None
            elif layer.kind == "relu":
                x = np.maximum(x, 0)
            elif layer.kind == "flatten":
                x = x.reshape(x.shape[0], -1)
        return x

    def poison(self, board: str) -> int:
        """Chaos: NaN into the weights this head keeps on ``board``; returns the blocks poisoned."""
        modules = [m for layer in self.dense.values() for m in layer.modules if m.board == board]
        for module in modules:
            module.fill_bound(float("nan"))
        return len(modules)
