"""Layer ranges of a Gluon CNN graph: single-tensor cut points, FLOPs, and ranges as Parts.

A *cut point* is a tensor that, at its place in the graph's topological order, is the only
value later ops still need (besides weights). Cutting there hands exactly one tensor from
one piece to the next, which is what lets the pipeline and spatial strategies run
consecutive pieces on different boards. In a ResNet the cut points are the block outputs
(inside a block the shortcut keeps a second tensor alive).

Pieces are rebuilt from the reference symbol's own ops and weights, so a chain of pieces
computes exactly what the unsplit model does; nothing here is specific to ResNet.
"""

from __future__ import annotations

from dataclasses import dataclass

import mxnet as mx
import numpy as np

from ..framework.errors import SplitnetError
from ..framework.split_model import Part
from ..partitioners.graph import DATA, ModelGraph, parse_int_tuple

PIECE_INPUT = "data"  # every piece takes one input under this name


def op_flops(graph: ModelGraph, op: str, out_area: int | None = None) -> int:
    """Multiply-adds x 2 of a convolution or dense layer (0 for other ops).

    ``out_area`` replaces the output's H*W (a tile computes only part of the map).
    """
    kind = graph.op(op)
    if kind == "Convolution":
        c_in = graph.shape(graph.data_inputs(op)[0])[1]
        c_out = int(graph.attrs(op)["num_filter"])
        groups = int(graph.attrs(op).get("num_group", "1"))
        kernel = int(np.prod(parse_int_tuple(graph.attrs(op)["kernel"])))
        area = int(np.prod(graph.shape(op)[2:])) if out_area is None else out_area
        return 2 * area * c_out * (c_in // groups) * kernel
    if kind == "FullyConnected":
        weight = graph.params[graph.inputs(op)[1]]
        return 2 * int(weight.shape[0]) * int(weight.shape[1])
    return 0


def tensor_shape(graph: ModelGraph, tensor: str) -> tuple[int, ...]:
    return tuple(graph.input_shape) if tensor == DATA else tuple(graph.shape(tensor))


def tensor_bytes(graph: ModelGraph, tensor: str) -> int:
    return int(np.prod(tensor_shape(graph, tensor))) * 4


def cut_points(graph: ModelGraph) -> list[str]:
    """Tensors (op names, in order) after which only that tensor is alive; the output is last."""
    ops = graph.ops()
    position = {DATA: -1, **{op: i for i, op in enumerate(ops)}}
    last_use = {DATA: -1, **{op: i for i, op in enumerate(ops)}}
    for i, op in enumerate(ops):
        for src in graph.data_inputs(op):
            last_use[src] = max(last_use[src], i)
    last_use[graph.output] = len(ops)
    cuts = []
    for i, op in enumerate(ops):
        alive = [t for t, p in position.items() if p <= i and last_use[t] > i]
        if alive == [op]:
            cuts.append(op)
    return cuts


def ops_between(graph: ModelGraph, start: str, end: str) -> tuple[str, ...]:
    """The ops after cut ``start`` (or the model input) up to and including ``end``."""
    ops = graph.ops()
    first = 0 if start == DATA else ops.index(start) + 1
    return tuple(ops[first : ops.index(end) + 1])


@dataclass(frozen=True)
class LayerRange:
    """Consecutive ops from one cut point (or the input) to the next, and what they cost."""

    start: str  # input tensor: DATA or a cut point
    end: str  # output tensor: a cut point
    ops: tuple[str, ...]
    flops: int
    in_bytes: int
    out_bytes: int


def layer_range(graph: ModelGraph, start: str, end: str) -> LayerRange:
    ops = ops_between(graph, start, end)
    return LayerRange(
        start=start,
        end=end,
        ops=ops,
        flops=sum(op_flops(graph, op) for op in ops),
        in_bytes=tensor_bytes(graph, start),
        out_bytes=tensor_bytes(graph, end),
    )


def range_part(graph: ModelGraph, start: str, end: str, name: str) -> Part:
    """The ops between two cut points as a compilable Part (input ``data``, the reference's weights)."""
    ops = ops_between(graph, start, end)
    built: dict[str, mx.sym.Symbol] = {start: mx.sym.var(PIECE_INPUT)}
    for node in ops:
        inputs = [mx.sym.var(src) if graph.is_param(src) else built[src] for src in graph.inputs(node)]
        built[node] = getattr(mx.sym, graph.op(node))(*inputs, name=node, **graph.attrs(node))
    used = {p for op in ops for p in graph.inputs(op) if graph.is_param(p)}
    # A named identity at the end puts the piece's name in its content hash: the compile cache
    # keys a library by content and stores it under the part's name, so two pieces with equal
    # ops but different names (a pipeline stage and spatial's rest) must not share an entry.
    output = mx.sym.identity(built[end], name=f"{name}_out")
    return make_part(graph, name, output, used, tensor_shape(graph, start), tensor_shape(graph, end))


def make_part(graph: ModelGraph, name: str, symbol: mx.sym.Symbol, params: set[str], in_shape, out_shape) -> Part:
    return Part(
        name=name,
        symbol_json=symbol.tojson(),
        params={p: np.ascontiguousarray(graph.params[p], dtype=np.float32) for p in sorted(params)},
        aux_names=frozenset(p for p in params if p in graph.aux_names),
        input_names=(PIECE_INPUT,),
        input_shapes=(tuple(in_shape),),
        output_shape=tuple(out_shape),
    )


def balanced_cuts(graph: ModelGraph, stages: int) -> list[LayerRange]:
    """``stages`` consecutive ranges covering the model, cut at cut points, minimising the largest FLOPs.

    An exact dynamic programme over the cut points (a few dozen in a CNN), so the answer
    is the best balance the graph allows, not a greedy guess.
    """
    cuts = cut_points(graph)  # the last one is the output
    if stages < 1:
        raise SplitnetError(f"the pipeline needs at least 1 stage, got {stages}", "pass --branches 2")
    if stages > len(cuts):
        raise SplitnetError(
            f"{graph.output} has only {len(cuts) - 1} single-tensor cut points, so at most {len(cuts)} "
            f"pipeline stages, not {stages}",
            f"pass --branches {len(cuts)} or fewer",
        )
    ops = graph.ops()
    prefix = np.cumsum([0] + [op_flops(graph, op) for op in ops])
    pos = [ops.index(c) + 1 for c in cuts]  # prefix index just after each cut
    points = [0, *pos]  # 0 is the model input

    def cost(a: int, b: int) -> int:  # flops of ops between points[a] and points[b]
        return int(prefix[points[b]] - prefix[points[a]])

    inf = float("inf")
    m = len(points)
    best = [[inf] * m for _ in range(stages + 1)]
    choice = [[-1] * m for _ in range(stages + 1)]
    best[0][0] = 0
    for k in range(1, stages + 1):
        for j in range(1, m):
            for i in range(j):
                value = max(best[k - 1][i], cost(i, j))
                if value < best[k][j]:
                    best[k][j], choice[k][j] = value, i
    ends, j = [], m - 1
    for k in range(stages, 0, -1):
        ends.append(j)
        j = choice[k][j]
    ends.reverse()
    names = [DATA, *cuts]
    bounds = [0, *ends]
    return [layer_range(graph, names[bounds[s]], names[bounds[s + 1]]) for s in range(stages)]
