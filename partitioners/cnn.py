"""The generic CNN partitioner: body = everything before the first dense layer, head = the rest.

It reads the graph, never the Python class, so it covers VGG, MobileNet and any user
HybridBlock built from the ops :mod:`op_rules` knows (convolution, depthwise convolution,
batch norm, activations, pooling, add, concat, flatten) followed by dense layers. The first
FullyConnected op starts the head; its data input is the feature tensor, and the body is
everything that feeds it:

* after global pooling (ResNet, MobileNet) each branch sends its channels;
* after a spatial map (VGG: 512 x 7 x 7, flattened by the dense layer) each branch sends its
  channels' maps, and the head's first dense layer takes the matching weight columns;
* after an explicit Flatten the same holds, index by index.

Every body op must have a channel rule: one that has none (a LayerNorm, a transpose, a
grouped convolution) is reported by op and layer before anything is built.
"""

from __future__ import annotations

import networkx as nx

from ..framework.errors import SplitnetError
from ..framework.plan import SplitPlan
from .branch_plan import build_plan
from .graph import DATA, ModelGraph
from .op_rules import rule_for
from .registry import register_partitioner


def find_dense_head(graph: ModelGraph) -> tuple[str, list[str]]:
    """(feature tensor, head ops): the head starts at the first dense layer in graph order."""
    dense = [op for op in graph.ops() if graph.op(op) == "FullyConnected"]
    if not dense:
        raise SplitnetError(
            "the model has no dense (FullyConnected) layer to use as the merge head",
            "branch splitting needs a classifier head: end the model with a Dense layer",
        )
    first = dense[0]
    feature = graph.data_inputs(first)[0]
    if feature == DATA or not any(graph.op(op) == "Convolution" for op in nx.ancestors(graph.graph, feature)):
        raise SplitnetError(
            f"the first dense layer {first} has no convolutions before it, so there is nothing to split into branches",
            "branch splitting needs a convolutional body before the dense head",
        )
    if len(graph.shape(feature)) > 2 and graph.attrs(first).get("flatten", "True") != "True":
        raise SplitnetError(
            f"the dense layer {first} reads the {len(graph.shape(feature))}-D tensor {feature} without flattening it",
            "use Dense(..., flatten=True) or put a Flatten before the head",
        )
    body = nx.ancestors(graph.graph, feature) | {feature}
    for op in graph.ops():  # an op without a channel rule is named before any work is done
        if op in body:
            rule_for(graph, op)
    return feature, [op for op in graph.ops() if op not in body]


@register_partitioner
class CNNPartitioner:
    """Branch splitting for any CNN with a dense head (VGG, MobileNet, user HybridBlocks)."""

    name = "cnn"
    families = ("cnn", "vgg", "mobilenet")

    def plan(self, graph: ModelGraph, *, model: str, n: int, widths, multiple: int) -> SplitPlan:
        feature, head = find_dense_head(graph)
        return build_plan(
            graph,
            model=model,
            partitioner=self.name,
            feature_tensor=feature,
            head_ops=head,
            n=n,
            widths=widths,
            multiple=multiple,
        )
