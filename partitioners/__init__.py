"""Partitioners: a registered rule makes a SplitPlan; one generic step makes the SplitModel."""

from __future__ import annotations

from ..framework.plan import BranchSpec, HeadSpec, SplitPlan
from ..framework.split_model import Part, SplitModel
from . import cnn as _cnn  # noqa: F401  (registers it)
from . import resnet_v1 as _resnet_v1  # noqa: F401  (registers it)
from .apply import apply_plan
from .channels import DEFAULT_MULTIPLE, MAX_BRANCHES, allocate, normalise_shares
from .graph import ModelGraph, graph_from_architecture, graph_from_block
from .registry import (
    Partitioner,
    get_partitioner,
    list_partitioners,
    partitioner_for,
    register_partitioner,
)


def partition(
    reference,
    n: int,
    widths: tuple[float, ...] | None = None,
    multiple: int = DEFAULT_MULTIPLE,
    partitioner: str | Partitioner | None = None,
    graph: ModelGraph | None = None,
) -> SplitModel:
    """Plan and apply in one call for a :class:`splitnet.zoo.Reference`.

    ``partitioner``: a registered name or a partitioner (default: the one that claims the
    model's family); ``graph``: the reference's graph when the caller has it already.
    """
    if isinstance(partitioner, str):
        partitioner = get_partitioner(partitioner)
    rule = partitioner or partitioner_for(reference.spec.family)
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
