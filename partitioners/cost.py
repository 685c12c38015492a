"""How a branch's compute grows with its width share: the model balanced placement solves.

A convolution whose input and output are both split costs ``share**2`` of the original
(in x out channels); one that reads the unsplit model input, or a depthwise one, costs
``share``. Summed over the graph this gives ``cost(w) = quadratic * w**2 + linear * w``
(FLOPs), so placement can pick widths that make unequal boards finish together without
building a plan per guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from splitnet.partitioners.graph import DATA, ModelGraph
from splitnet.partitioners.op_rules import _is_depthwise, conv_flops

# Ops that pass the model input's channels through unchanged (and unsplit).
_PASS_THROUGH = {"BatchNorm", "Activation", "relu", "LeakyReLU", "Pooling", "Dropout", "_copy", "identity"}


@dataclass(frozen=True)
class BranchCost:
    quadratic: float = 1.0
    linear: float = 0.0

    def __call__(self, share: float) -> float:
        return self.quadratic * share * share + self.linear * share

    def inverse(self, cost: float) -> float:
        """The share whose cost is ``cost`` (the positive root)."""
        a, b = self.quadratic, self.linear
        if a <= 0:
            return cost / b
        return (-b + math.sqrt(b * b + 4 * a * cost)) / (2 * a)


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
