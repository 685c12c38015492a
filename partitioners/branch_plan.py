"""The generic half of branch splitting: from a body/head decision to a full SplitPlan.

A partitioner decides *where* the body ends (the feature tensor); this module works out,
op by op (see :mod:`op_rules`), which channels each branch owns, and does the accounting.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..framework.errors import SplitnetError
from ..framework.plan import BranchSpec, HeadSpec, SplitPlan
from .channels import DEFAULT_MULTIPLE, normalise_shares
from .graph import DATA, ModelGraph
from .op_rules import Assignment, conv_flops, rule_for


def ancestors_ops(graph: ModelGraph, tensor: str) -> list[str]:
    """Ops that ``tensor`` depends on (itself included), in topological order."""
    needed = nx.ancestors(graph.graph, tensor) | {tensor}
    return [op for op in graph.ops() if op in needed]


# ops whose output keeps its input's channels one to one (a convolution can be traced through them)
_CHANNELWISE = {"BatchNorm", "Activation", "relu", "sigmoid", "clip", "LeakyReLU", "Dropout", "Pooling"}
_ADDS = {"elemwise_add", "broadcast_add", "_Plus", "_plus"}


def _free_convolution(graph: ModelGraph, tensor: str, fixed: dict[str, Assignment]) -> str | None:
    """The convolution that chose ``tensor``'s channels, when that choice may still change."""
    while graph.op(tensor) in _CHANNELWISE:
        tensor = graph.data_inputs(tensor)[0]
    if graph.op(tensor) != "Convolution" or tensor in fixed or graph.attrs(tensor).get("num_group", "1") != "1":
        return None
    return tensor


def _disagreeing_add(graph, node, ins, fixed) -> tuple[str, Assignment] | None:
    """(convolution, channels it must take) when an add's inputs disagree and one side can give way.

    A convolution shares its output channels out contiguously by default, but any other
    split of them is as exact; a concat's split is not free (it interleaves its inputs'). So
    when a concat meets a convolution at an add, the convolution takes the concat's split.
    """
    if graph.op(node) not in _ADDS or any(a is None for a in ins):
        return None
    first = ins[0]
    if all(all(np.array_equal(x, y) for x, y in zip(first, other, strict=True)) for other in ins[1:]):
        return None
    sources = graph.data_inputs(node)
    for i, src in enumerate(sources):
        conv = _free_convolution(graph, src, fixed)
        if conv is not None:
            return conv, next(a for j, a in enumerate(ins) if j != i)
    return None


def assign_channels(
    graph: ModelGraph, body_ops: list[str], shares: tuple[float, ...], multiple: int
) -> dict[str, Assignment]:
    """Each body tensor's branch channels, op by op; adds that disagree re-align a convolution."""
    fixed: dict[str, Assignment] = {}
    while True:
        assignment: dict[str, Assignment] = {DATA: None}
        for node in body_ops:
            ins = [assignment[src] for src in graph.data_inputs(node)]
            realign = _disagreeing_add(graph, node, ins, fixed)
            if realign is not None:
                fixed[realign[0]] = realign[1]
                break  # start again with that convolution's channels fixed
            rule = rule_for(graph, node)
            assignment[node] = fixed[node] if node in fixed else rule.propagate(graph, node, ins, shares, multiple)
        else:
            return assignment


def _size(assign: Assignment, branch: int, full: int) -> int:
    return full if assign is None else len(assign[branch])


def _feature_size(graph: ModelGraph, tensor: str, assign: Assignment, branch: int) -> int:
    """Length of branch ``branch``'s flattened share of ``tensor`` (channels x spatial for a map)."""
    shape = graph.shape(tensor)
    spatial = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(np.prod(shape[1:])) if assign is None else len(assign[branch]) * spatial


def _fc_flops(graph: ModelGraph, node: str, in_features: int) -> int:
    return 2 * in_features * int(graph.attrs(node)["num_hidden"])


def _param_count(graph: ModelGraph, ops: list[str]) -> int:
    return sum(graph.params[p].size for op in ops for p in graph.inputs(op) if graph.is_param(p))


def _full_flops(graph: ModelGraph, ops: list[str]) -> int:
    total = 0
    for op in ops:
        if graph.op(op) == "Convolution":
            c_in = graph.shape(graph.data_inputs(op)[0])[1]
            total += conv_flops(graph, op, c_in, graph.shape(op)[1])
        elif graph.op(op) == "FullyConnected":
            total += _fc_flops(graph, op, int(np.prod(graph.shape(graph.data_inputs(op)[0])[1:])))
    return total


def build_plan(
    graph: ModelGraph,
    *,
    model: str,
    partitioner: str,
    feature_tensor: str,
    head_ops: list[str],
    n: int,
    widths: tuple[float, ...] | None = None,
    multiple: int = DEFAULT_MULTIPLE,
) -> SplitPlan:
    """Channel assignment and accounting for a body ending at ``feature_tensor``."""
    shares = normalise_shares(n, widths)
    body_ops = ancestors_ops(graph, feature_tensor)
    for op in head_ops:
        for src in graph.data_inputs(op):
            if src not in head_ops and src != feature_tensor:
                raise SplitnetError(
                    f"head layer {op} reads {src}, which is inside the body",
                    "the head may only read the body's final features",
                )
    assignment = assign_channels(graph, body_ops, shares, multiple)
    branches = []
    for b, share in enumerate(shares):
        flops, params, conv_channels = 0, 0, {}
        for op in body_ops:
            assign_in = assignment[graph.data_inputs(op)[0]]
            _, narrowed = rule_for(graph, op).narrow(graph, op, assign_in, assignment[op], b)
            params += sum(value.size for value in narrowed.values())
            if graph.op(op) == "Convolution":
                c_in = _size(assign_in, b, graph.shape(graph.data_inputs(op)[0])[1])
                c_out = len(assignment[op][b])
                conv_channels[op] = c_out
                flops += conv_flops(graph, op, c_in, c_out)
        branches.append(
            BranchSpec(
                index=b,
                share=share,
                feature_size=_feature_size(graph, feature_tensor, assignment[feature_tensor], b),
                params=int(params),
                flops=int(flops),
                conv_channels=conv_channels,
            )
        )
    head = HeadSpec(
        feature_sizes=tuple(br.feature_size for br in branches),
        outputs=int(np.prod(graph.shape(graph.output)[1:])),
        params=int(_param_count(graph, head_ops)),
        flops=int(_full_flops(graph, head_ops)),
        ops=tuple(head_ops),
    )
    encoded = {
        name: None if value is None else tuple(tuple(int(i) for i in idx) for idx in value)
        for name, value in assignment.items()
    }
    return SplitPlan(
        model=model,
        partitioner=partitioner,
        input_shape=tuple(graph.input_shape),
        n=n,
        shares=shares,
        multiple=multiple,
        body_ops=tuple(body_ops),
        feature_tensor=feature_tensor,
        head_ops=tuple(head_ops),
        assignment=encoded,
        branches=tuple(branches),
        head=head,
        reference_params=int(_param_count(graph, graph.ops())),
        reference_flops=int(_full_flops(graph, graph.ops())),
        reference_body_flops=int(_full_flops(graph, body_ops)),
    )
