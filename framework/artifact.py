"""A compiled part on disk, and loading it: what the runtime needs of the compile stage.

:mod:`compile` builds a :class:`CompiledArtifact`; the runtime uploads it to a board
(:mod:`splitnet.runtime.board_session`) or loads it in this process (:class:`LocalModule`,
the merge head). Nothing here builds code.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from .quiet import quiet_native


@dataclass(frozen=True)
class CompiledArtifact:
    """A compiled part on disk, ready to upload to a board or load locally."""

    part: str
    path: Path
    target: dict
    key: str
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    tuned: bool
    cached: bool


def wire_array(x) -> np.ndarray:
    """An input as it is sent: uint8 frames stay uint8 (parts with a compiled front take them),
    everything else is float32."""
    x = np.asarray(x)
    return np.ascontiguousarray(x, dtype=np.uint8 if x.dtype == np.uint8 else np.float32)


def to_tensors(inputs, dev) -> list:
    """numpy inputs as TVM tensors on ``dev`` (local or remote): uint8 frames, else float32."""
    return [tvm.runtime.tensor(wire_array(x), dev) for x in inputs]


class LocalModule:
    """A compiled artifact loaded in this process (the merge head runs this way).

    It runs once per frame on the host, whose CPU the boards share when they are local: its
    input tensors are allocated once and refilled, and its output is read through DLPack,
    since ``tvm.runtime.tensor`` and ``.numpy()`` cost more host CPU than the head's own
    compute (about 28 and 9 us a call, against 52 us of compute for ResNet18's head).
    """

    def __init__(self, artifact: CompiledArtifact) -> None:
        with quiet_native():
            self._lib = tvm.runtime.load_module(str(artifact.path))
        self._dev = tvm.cpu(0)
        self._vm = relax.VirtualMachine(self._lib, self._dev)
        self._main = self._vm["main"]
        self._inputs: dict[tuple, object] = {}  # (position, shape, dtype) -> its tensor, refilled
        self._lock = threading.Lock()  # a VM is not re-entrant; pipelined frames share the head

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        with self._lock:
            tensors = []
            for i, given in enumerate(inputs):
                x = wire_array(given)
                key = (i, x.shape, x.dtype.str)
                tensor = self._inputs.get(key)
                if tensor is None:
                    tensor = self._inputs[key] = tvm.runtime.empty(x.shape, str(x.dtype), self._dev)
                tensors.append(tensor.copyfrom(x))
            return np.from_dlpack(self._main(*tensors)).copy()  # a copy: the VM may reuse its output
