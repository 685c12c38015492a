"""The Gluon ResNet v1 partitioner: body = stem + stages + global pooling, head = dense.

It reads the graph, not the Python class: the head starts at the first FullyConnected op,
whose data input must come from a global pooling (possibly through a Flatten); everything
that feeds it is the body. Channel sharing and weight slicing are the generic steps in
:mod:`branch_plan` and :mod:`apply`.
"""

from __future__ import annotations

from ..framework.errors import SplitnetError
from ..framework.plan import SplitPlan
from .branch_plan import build_plan
from .graph import ModelGraph
from .registry import register_partitioner


def find_head(graph: ModelGraph) -> tuple[str, list[str]]:
    """(feature tensor, head ops) for a CNN whose head is global pooling then dense layers."""
    dense = [op for op in graph.ops() if graph.op(op) == "FullyConnected"]
    if not dense:
        raise SplitnetError(
            "the model has no dense (FullyConnected) layer to use as the merge head",
            "branch splitting needs a classifier head",
        )
    first = dense[0]
    feature = graph.data_inputs(first)[0]
    pooled = feature
    while graph.op(pooled) == "Flatten":
        pooled = graph.data_inputs(pooled)[0]
    if graph.op(pooled) != "Pooling" or graph.attrs(pooled).get("global_pool") != "True":
        raise SplitnetError(
            f"the dense layer {first} does not follow a global pooling (found {graph.op(pooled)} {pooled})",
            "use a partitioner for models without global pooling",
        )
    order = graph.ops()
    head = order[order.index(first) :]
    return feature, head


@register_partitioner
class ResNetV1Partitioner:
    name = "resnet_v1"
    families = ("resnet_v1",)

    def plan(self, graph: ModelGraph, *, model: str, n: int, widths, multiple: int) -> SplitPlan:
        feature, head = find_head(graph)
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
