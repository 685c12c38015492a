"""The generic half of branch splitting: from a body/head decision to a full SplitPlan.

A partitioner decides *where* the body ends (the feature tensor); this module works out,
op by op (see :mod:`op_rules`), which channels each branch owns, and does the accounting.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from splitnet.framework.errors import SplitnetError
from splitnet.partitioners.channels import DEFAULT_MULTIPLE, normalise_shares
from splitnet.partitioners.graph import DATA, ModelGraph
from splitnet.partitioners.op_rules import Assignment, conv_flops, rule_for
from splitnet.partitioners.plan import BranchSpec, HeadSpec, SplitPlan


def ancestors_ops(graph: ModelGraph, tensor: str) -> list[str]:
    """Ops that ``tensor`` depends on (itself included), in topological order."""
    needed = nx.ancestors(graph.graph, tensor) | {tensor}
    return [op for op in graph.ops() if op in needed]


def assign_channels(
    graph: ModelGraph, body_ops: list[str], shares: tuple[float, ...], multiple: int
) -> dict[str, Assignment]:
    assignment: dict[str, Assignment] = {DATA: None}
    for node in body_ops:
        ins = [assignment[src] for src in graph.data_inputs(node)]
        assignment[node] = rule_for(graph, node).propagate(graph, node, ins, shares, multiple)
    return assignment


def _size(assign: Assignment, branch: int, full: int) -> int:
    return full if assign is None else len(assign[branch])


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
    feature_full = int(np.prod(graph.shape(feature_tensor)[1:]))
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
                feature_size=_size(assignment[feature_tensor], b, feature_full),
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
