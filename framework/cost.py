"""How a branch's compute grows with its width share: the model balanced placement solves.

A convolution whose input and output are both split costs ``share**2`` of the original
(in x out channels); one that reads the unsplit model input, or a depthwise one, costs
``share``. Summed over the graph this gives ``cost(w) = quadratic * w**2 + linear * w``
(FLOPs). The partitioner measures the two coefficients from the model's graph
(:func:`splitnet.partitioners.cost.branch_cost_model`); placement only evaluates and inverts
the curve, so it lives here, between the two, and neither imports the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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
