"""One tile of a fused layer range as a compilable Part (fused tile partitioning, DeepThings).

The early layers of a CNN, from the model input to a cut point, are *fused*: a tile computes
all of them for its region of the last one's output, starting from the input region that
region needs (its halo included), with no exchange between tiles on the way. Every tensor
in the range gets the region its consumers need (the union, when a shortcut and a
convolution read the same tensor); each op then reads exactly what it needs:

* the input tensor's computed region is sliced down to the part the op reads, and
* where the op's window reaches past the map's real border, the tile pads explicitly (zeros
  for convolution and average pooling, the lowest float for max pooling, which MXNet's own
  max pooling ignores), and the op itself runs with no padding.

So each tile's output equals the same region of the unsplit model's, and the host stitches
the tiles into the full map.
"""

from __future__ import annotations

from dataclasses import dataclass

import mxnet as mx
import numpy as np

from ..framework.errors import SplitnetError
from ..framework.split_model import Part
from ..partitioners.graph import DATA, ModelGraph, parse_int_tuple
from .cuts import PIECE_INPUT, cut_points, make_part, op_flops, ops_between, tensor_shape
from .tiles import Region, Window, area, clip, length, padding, union_region

WINDOWED = {"Convolution", "Pooling"}
POINTWISE = {"BatchNorm", "Activation", "relu", "LeakyReLU", "sigmoid", "clip", "Dropout", "_copy", "identity"}
JOINS = {"elemwise_add", "_Plus", "_plus", "broadcast_add", "elemwise_mul", "broadcast_mul", "Concat"}
MAX_POOL_PAD = float(np.finfo(np.float32).min)  # never the max of a window holding a real value


def _pair(attrs: dict[str, str], key: str, default: int) -> tuple[int, int]:
    values = parse_int_tuple(attrs[key]) if key in attrs else ()
    return (values[0], values[1]) if len(values) == 2 else (default, default)


def windows(graph: ModelGraph, op: str) -> tuple[Window, Window]:
    """The (rows, cols) sliding windows of a convolution or pooling layer."""
    attrs = graph.attrs(op)
    kernel = _pair(attrs, "kernel", 1)
    stride = _pair(attrs, "stride", 1)
    pad = _pair(attrs, "pad", 0)
    dilation = _pair(attrs, "dilate", 1)
    return tuple(Window(kernel[a], stride[a], pad[a], dilation[a]) for a in (0, 1))  # type: ignore[return-value]


def why_not_spatial(graph: ModelGraph, op: str) -> str | None:
    """Why ``op`` cannot be computed tile by tile (None when it can)."""
    kind = graph.op(op)
    attrs = graph.attrs(op)
    shape = graph.shape(op)
    if len(shape) != 4:
        return f"{kind} gives a {len(shape)}-d tensor"
    if kind in POINTWISE:
        return None
    if kind in JOINS:
        if kind == "Concat" and int(attrs.get("dim", "1")) != 1:
            return "concat not along channels"
        if any(tuple(graph.shape(u)[2:]) != tuple(shape[2:]) for u in graph.data_inputs(op)):
            return "inputs of different spatial sizes"
        return None
    if kind == "Convolution":
        return None
    if kind == "Pooling":
        if attrs.get("global_pool", "False") in ("True", "true", "1"):
            return "global pooling"
        pool_type = attrs.get("pool_type", "max")
        convention = attrs.get("pooling_convention", "valid")
        if convention not in ("valid", "full"):
            return f"pooling convention {convention}"
        if pool_type == "avg":
            excludes_pad = attrs.get("count_include_pad", "True") in ("False", "false", "0")
            if excludes_pad and any(w.pad for w in windows(graph, op)):
                return "average pooling that excludes padding"
            if convention == "full":
                return "average pooling with the full convention"
        elif pool_type != "max":
            return f"{pool_type} pooling"
        return None
    return f"operator {kind}"


def fusable_cuts(graph: ModelGraph) -> list[str]:
    """Cut points reachable from the input through spatially local ops only (candidate fused ends)."""
    found = []
    ops = graph.ops()
    bad = next((i for i, op in enumerate(ops) if why_not_spatial(graph, op) is not None), len(ops))
    for cut in cut_points(graph):
        if ops.index(cut) < bad:
            found.append(cut)
    return found


@dataclass(frozen=True)
class TileGraph:
    """The regions one tile computes: per tensor (clipped) and per (op, input) read (unclipped)."""

    end: str
    output: Region
    regions: dict[str, Region]
    reads: dict[tuple[str, str], Region]
    ops: tuple[str, ...]

    @property
    def input_region(self) -> Region:
        return self.regions[DATA]

    def flops(self, graph: ModelGraph) -> int:
        return sum(op_flops(graph, op, area(self.regions[op])) for op in self.ops)


def check_fusable(graph: ModelGraph, end: str) -> tuple[str, ...]:
    ops = ops_between(graph, DATA, end)
    for op in ops:
        reason = why_not_spatial(graph, op)
        if reason is not None:
            raise SplitnetError(
                f"layer {op} cannot be tiled ({reason}), so the fused range cannot reach {end}",
                f"fuse up to an earlier cut point: {', '.join(fusable_cuts(graph)) or '(none)'}",
            )
    return ops


def tile_graph(graph: ModelGraph, end: str, output: Region) -> TileGraph:
    """Walk the fused range backwards from ``output`` (a region of ``end``) to the model input."""
    ops = check_fusable(graph, end)
    regions: dict[str, Region] = {end: output}
    reads: dict[tuple[str, str], Region] = {}
    for op in reversed(ops):
        if op not in regions:  # feeds nothing this tile needs
            continue
        out = regions[op]
        for src in graph.data_inputs(op):
            if graph.op(op) in WINDOWED:
                rows, cols = windows(graph, op)
                need = (rows.input_interval(out[0]), cols.input_interval(out[1]))
            else:
                need = out
            reads[(op, src)] = need
            shape = tensor_shape(graph, src)
            try:
                clipped = (clip(need[0], shape[2]), clip(need[1], shape[3]))
            except ValueError as exc:
                raise SplitnetError(
                    f"a tile of {end} reads only padding of {src} ({exc})", "use fewer tiles (--branches)"
                ) from None
            regions[src] = union_region(regions[src], clipped) if src in regions else clipped
    return TileGraph(end=end, output=output, regions=regions, reads=reads, ops=tuple(o for o in ops if o in regions))


def _read(x: mx.sym.Symbol, have: Region, need: Region, shape, pad_value: float, name: str) -> mx.sym.Symbol:
    """Slice the computed region ``have`` of a tensor to ``need``, padding where ``need`` leaves the map."""
    inside = (clip(need[0], shape[2]), clip(need[1], shape[3]))
    for axis, (got, want) in ((2, (have[0], inside[0])), (3, (have[1], inside[1]))):
        if got != want:
            x = mx.sym.slice_axis(x, axis=axis, begin=want[0] - got[0], end=want[1] - got[0], name=f"{name}_s{axis}")
    top, bottom = padding(need[0], shape[2])
    left, right = padding(need[1], shape[3])
    if top or bottom or left or right:
        widths = (0, 0, 0, 0, top, bottom, left, right)
        x = mx.sym.pad(x, mode="constant", pad_width=widths, constant_value=pad_value, name=f"{name}_pad")
    return x


def tile_part(graph: ModelGraph, tile: TileGraph, name: str) -> Part:
    """The tile as a Part: input the tile's input region of the model input, output its region of ``end``."""
    built: dict[str, mx.sym.Symbol] = {DATA: mx.sym.var(PIECE_INPUT)}
    used: set[str] = set()
    for op in tile.ops:
        kind = graph.op(op)
        attrs = dict(graph.attrs(op))
        pad_value = 0.0
        if kind in WINDOWED:
            attrs["pad"] = "(0, 0)"
            if kind == "Pooling":
                attrs["pooling_convention"] = "valid"
                if attrs.get("pool_type", "max") == "max":
                    pad_value = MAX_POOL_PAD
        inputs = []
        for slot, src in enumerate(graph.inputs(op)):
            if graph.is_param(src):
                inputs.append(mx.sym.var(src))
                used.add(src)
                continue
            need = tile.reads[(op, src)]
            shape = tensor_shape(graph, src)
            inputs.append(_read(built[src], tile.regions[src], need, shape, pad_value, f"{name}_{op}_{slot}"))
        built[op] = getattr(mx.sym, kind)(*inputs, name=op, **attrs)
    channels = tensor_shape(graph, tile.end)[1]
    batch, c_in = graph.input_shape[0], graph.input_shape[1]
    rows, cols = tile.input_region
    out_rows, out_cols = tile.output
    # A named identity at the end, so tiles with equal graphs (interior tiles) still hash apart
    # (see range_part).
    output = mx.sym.identity(built[tile.end], name=f"{name}_out")
    return make_part(
        graph,
        name,
        output,
        used,
        (batch, c_in, length(rows), length(cols)),
        (batch, channels, length(out_rows), length(out_cols)),
    )
