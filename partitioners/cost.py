"""The branch cost curve of one model, measured from its graph (see :mod:`splitnet.framework.cost`).

``branch_cost_model(graph)`` sums the FLOPs of every convolution into the curve's two
coefficients, so placement can pick widths that make unequal boards finish together without
building a plan per guess.
"""

from __future__ import annotations

from ..framework.cost import BranchCost
from .graph import DATA, ModelGraph
from .op_rules import _is_depthwise, conv_flops

# Ops that pass the model input's channels through unchanged (and unsplit).
_PASS_THROUGH = {"BatchNorm", "Activation", "relu", "LeakyReLU", "Pooling", "Dropout", "_copy", "identity"}

__all__ = ["BranchCost", "branch_cost_model"]


def branch_cost_model(graph: ModelGraph) -> BranchCost:
    """FLOPs of a branch of share ``w`` as ``quadratic * w**2 + linear * w``."""
    unsplit = {DATA}
    quadratic = linear = 0.0
    for op in graph.ops():
        kind = graph.op(op)
        sources = graph.data_inputs(op)
        if kind in _PASS_THROUGH and sources and all(s in unsplit for s in sources):
            unsplit.add(op)
        if kind != "Convolution":
            continue
        c_in = graph.shape(sources[0])[1]
        flops = conv_flops(graph, op, c_in, graph.shape(op)[1])
        if sources[0] in unsplit or _is_depthwise(graph, op):
            linear += flops
        else:
            quadratic += flops
    if quadratic == 0 and linear == 0:
        return BranchCost()
    return BranchCost(quadratic=quadratic, linear=linear)
