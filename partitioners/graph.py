"""A model's graph: the exported Gluon symbol as a networkx DiGraph with inferred shapes.

Partitioners read this, never the Gluon block: the symbol is what every Gluon model exports,
so a rule written against it works for any HybridBlock. Nodes are keyed by the symbol's node
name; edge ``u -> v`` carries ``slot`` (the position of ``u`` among ``v``'s inputs).
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import mxnet as mx
import networkx as nx
import numpy as np

DATA = "data"


@dataclass(frozen=True)
class ModelGraph:
    """The exported reference: graph, weights (arg and aux, no prefixes) and input shape."""

    graph: nx.DiGraph
    params: dict[str, np.ndarray]
    aux_names: frozenset[str]
    input_shape: tuple[int, ...]

    def op(self, name: str) -> str:
        return self.graph.nodes[name]["op"]

    def attrs(self, name: str) -> dict[str, str]:
        return self.graph.nodes[name]["attrs"]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.graph.nodes[name]["shape"]

    def inputs(self, name: str) -> list[str]:
        """Inputs of ``name`` in slot order (data first, then weights)."""
        preds = self.graph.in_edges(name, data="slot")
        return [u for u, _, _ in sorted(preds, key=lambda edge: edge[2])]

    def data_inputs(self, name: str) -> list[str]:
        """Inputs that are tensors computed by the graph (or the model input), not weights."""
        return [u for u in self.inputs(name) if not self.is_param(u)]

    def is_param(self, name: str) -> bool:
        return self.graph.nodes[name]["op"] == "null" and name != DATA

    def ops(self) -> list[str]:
        """Operator nodes in topological order (the symbol's own order)."""
        return [n for n in self.graph.graph["order"] if self.graph.nodes[n]["op"] != "null"]

    @property
    def output(self) -> str:
        return self.graph.graph["output"]


def parse_int_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.strip("()[] ").split(",") if v.strip())


def graph_from_symbol(
    symbol: mx.sym.Symbol, params: dict[str, np.ndarray], aux_names: frozenset[str], input_shape
) -> ModelGraph:
    spec = json.loads(symbol.tojson())
    internals = symbol.get_internals()
    _, out_shapes, _ = internals.infer_shape(**{DATA: tuple(input_shape)})
    shapes = dict(zip(internals.list_outputs(), out_shapes, strict=True))
    g = nx.DiGraph()
    names = [node["name"] for node in spec["nodes"]]
    for node in spec["nodes"]:
        name = node["name"]
        shape = shapes.get(f"{name}_output", shapes.get(name))
        if shape is None and name in params:
            shape = params[name].shape
        g.add_node(name, op=node["op"], attrs=dict(node.get("attrs", {})), shape=tuple(shape or ()))
        for slot, (src, _, _) in enumerate(node["inputs"]):
            g.add_edge(names[src], name, slot=slot)
    g.graph["order"] = names
    g.graph["output"] = names[spec["heads"][0][0]]
    return ModelGraph(graph=g, params=params, aux_names=aux_names, input_shape=tuple(input_shape))


def graph_from_block(block: mx.gluon.HybridBlock, input_shape) -> ModelGraph:
    """Export a hybridized Gluon block and read it back as a :class:`ModelGraph`."""
    with tempfile.TemporaryDirectory(prefix="splitnet-export-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block.hybridize()
        block(mx.nd.zeros(tuple(input_shape)))  # builds the cached graph export needs
        prefix = str(Path(tmp) / "model")
        block.export(prefix)
        symbol = mx.sym.load(f"{prefix}-symbol.json")
        saved = mx.nd.load(f"{prefix}-0000.params")
    params = {key.split(":", 1)[1]: value.asnumpy() for key, value in saved.items()}
    aux = frozenset(key.split(":", 1)[1] for key in saved if key.startswith("aux:"))
    return graph_from_symbol(symbol, params, aux, input_shape)


def graph_from_architecture(block: mx.gluon.HybridBlock, input_shape) -> ModelGraph:
    """The graph of an *uninitialised* block: shapes from the symbol, weights all zeros.

    Planning needs only shapes, so this plans a 138M-weight VGG16 without initialising,
    exporting or even allocating its weights: each parameter is a read-only zero view
    (``np.broadcast_to``) of its inferred shape. Accounting (params, FLOPs, channel
    assignment) is the same as on the weighted graph; the weights are not, so build split
    models from :func:`graph_from_block`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        symbol = block(mx.sym.var(DATA))
    if isinstance(symbol, list | tuple):
        symbol = symbol[0]
    arg_shapes, _, aux_shapes = symbol.infer_shape(**{DATA: tuple(input_shape)})
    zero = np.zeros((), dtype=np.float32)
    params = {
        name: np.broadcast_to(zero, shape)
        for name, shape in [
            *zip(symbol.list_arguments(), arg_shapes, strict=True),
            *zip(symbol.list_auxiliary_states(), aux_shapes, strict=True),
        ]
        if name != DATA
    }
    aux = frozenset(symbol.list_auxiliary_states())
    return graph_from_symbol(symbol, params, aux, input_shape)
