"""What a frame looks like on the wire: uint8 pixels (the default) or normalised float32.

Over loopback TVM RPC moves about 70 MB/s (../shared/STACK.md), so a float32 224x224
frame costs a board 8-14 ms of copying before it computes anything. Sending the pixels
as uint8 is 4x fewer bytes; the cast and the model's own normalisation
(:class:`~splitnet.framework.images.Preprocessing`) then have to run on the board, so they
are compiled into the front of every part that reads the frame: :func:`with_wire` marks
those parts (``Part.front``), and :func:`prepend_front` puts the ops in front of the part's
ONNX graph before it goes to Relax. Tuning and the build both export through
:func:`splitnet.framework.compile.to_onnx`, so they see the same graph, and the front is in
the part's content hash, so it is covered by the compile cache key.

The front is written as the same float32 ops as ``Preprocessing.normalise`` (cast, divide,
subtract, divide), so a board fed the uint8 frame answers what the in-process split answers
for the float32 frame made from it. TVM keeps it as its own small elementwise kernel: the
convolutions' loop nests, and so their tuning records, are the same for both wires.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .errors import SplitnetError
from .images import Preprocessing

WIRES = ("uint8", "float32")
DEFAULT_WIRE = "uint8"


def check_wire(wire: str) -> str:
    if wire not in WIRES:
        raise SplitnetError(f"unknown wire format {wire!r}", f"use --wire {' or --wire '.join(WIRES)}")
    return wire


def frame_bytes(input_shape: tuple[int, ...], wire: str) -> int:
    """Bytes of one frame on the wire."""
    return int(np.prod(input_shape)) * (1 if wire == "uint8" else 4)


def with_wire(split, wire: str, preprocessing: Preprocessing):
    """``split`` with every branch (the parts that read the frame) taking ``wire`` frames.

    float32 leaves the split as it is; uint8 gives each branch a ``front``: the cast and
    ``preprocessing``, compiled into it. The head reads features, never the frame.
    """
    if check_wire(wire) == "float32":
        return split
    branches = tuple(dataclasses.replace(b, front=preprocessing) for b in split.branches)
    return dataclasses.replace(split, branches=branches)


def _constant(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def prepend_front(model: onnx.ModelProto, input_name: str, preprocessing: Preprocessing) -> onnx.ModelProto:
    """``model`` reading uint8 NCHW pixels at ``input_name``: cast, ``/ divisor``, ``- mean``, ``/ std``, then
    the original graph (which read the normalised float32 frame). Edited in place and returned."""
    graph = model.graph
    entry = next((i for i in graph.input if i.name == input_name), None)
    if entry is None:
        raise ValueError(f"the ONNX graph has no input {input_name!r}")
    inner = f"{input_name}__normalised"
    for node in graph.node:  # the original graph now reads the normalised tensor
        node.input[:] = [inner if name == input_name else name for name in node.input]
    prefix = f"{input_name}__front"
    graph.initializer.extend(
        [
            _constant(f"{prefix}_divisor", preprocessing.divisor),
            _constant(f"{prefix}_mean", np.reshape(preprocessing.mean, (1, 3, 1, 1))),
            _constant(f"{prefix}_std", np.reshape(preprocessing.std, (1, 3, 1, 1))),
        ]
    )
    front = [
        helper.make_node("Cast", [input_name], [f"{prefix}_cast"], to=TensorProto.FLOAT),
        helper.make_node("Div", [f"{prefix}_cast", f"{prefix}_divisor"], [f"{prefix}_scaled"]),
        helper.make_node("Sub", [f"{prefix}_scaled", f"{prefix}_mean"], [f"{prefix}_centred"]),
        helper.make_node("Div", [f"{prefix}_centred", f"{prefix}_std"], [inner]),
    ]
    nodes = [*front, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    entry.type.tensor_type.elem_type = TensorProto.UINT8
    return model
