"""Partitioners: a registered rule makes a SplitPlan; one generic step makes the SplitModel."""

from __future__ import annotations

from splitnet.partitioners import cnn as _cnn  # noqa: F401  (registers it)
from splitnet.partitioners import resnet_v1 as _resnet_v1  # noqa: F401  (registers it)
from splitnet.partitioners.apply import apply_plan
from splitnet.partitioners.channels import DEFAULT_MULTIPLE, MAX_BRANCHES, allocate, normalise_shares
from splitnet.partitioners.graph import ModelGraph, graph_from_architecture, graph_from_block
from splitnet.partitioners.plan import BranchSpec, HeadSpec, SplitPlan
from splitnet.partitioners.registry import (
    Partitioner,
    get_partitioner,
    list_partitioners,
    partitioner_for,
    register_partitioner,
)
from splitnet.partitioners.split_model import Part, SplitModel


def partition(
    reference,
    n: int,
    widths: tuple[float, ...] | None = None,
    multiple: int = DEFAULT_MULTIPLE,
    partitioner: str | None = None,
    graph: ModelGraph | None = None,
) -> SplitModel:
    """Plan and apply in one call for a :class:`splitnet.zoo.Reference`."""
    rule = get_partitioner(partitioner) if partitioner else partitioner_for(reference.spec.family)
    graph = graph or graph_from_block(reference.block, reference.spec.input_shape)
    plan = rule.plan(graph, model=reference.spec.name, n=n, widths=widths, multiple=multiple)
    return apply_plan(graph, plan)


__all__ = [
    "DEFAULT_MULTIPLE",
    "MAX_BRANCHES",
    "BranchSpec",
    "HeadSpec",
    "ModelGraph",
    "Part",
    "Partitioner",
    "SplitModel",
    "SplitPlan",
    "allocate",
    "apply_plan",
    "get_partitioner",
    "graph_from_architecture",
    "graph_from_block",
    "list_partitioners",
    "normalise_shares",
    "partition",
    "partitioner_for",
    "register_partitioner",
]
