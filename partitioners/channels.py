"""Sharing one layer's channels out among branches.

Channels are handed out in units of ``multiple`` (8 by default; 16 matches VTA's GEMM block)
by the largest-remainder method, so every layer's branch widths add up to the original width
exactly and the merge head can reuse the reference dense weights unchanged. Branch ``i``
takes a contiguous run of channels, in branch order; the allocation depends only on the
layer's width, so layers joined by a residual add always agree.
"""

from __future__ import annotations

import numpy as np

from ..framework.errors import SplitnetError
from ..framework.shares import DEFAULT_MULTIPLE, MAX_BRANCHES, check_multiple, normalise_shares

__all__ = ["DEFAULT_MULTIPLE", "MAX_BRANCHES", "allocate", "normalise_shares"]


def allocate(channels: int, shares: tuple[float, ...], multiple: int, layer: str = "") -> list[np.ndarray]:
    """Channel indices of each branch for a layer of ``channels`` channels."""
    check_multiple(multiple)
    n = len(shares)
    units, rest = divmod(channels, multiple)
    if units < n:
        raise SplitnetError(
            f"{n} branches need at least {n * multiple} channels in every layer at multiple {multiple}, "
            f"but layer {layer or '?'} has {channels}",
            f"use fewer branches or a smaller --multiple (at most {max(channels // n, 1)})",
        )
    exact = np.array(shares) * units
    counts = np.maximum(np.floor(exact).astype(int), 1)
    while counts.sum() > units:  # the max(.,1) floor may overshoot: take from the most over its share
        over = np.where(counts > 1, counts - exact, -np.inf)  # never below one unit
        counts[int(np.argmax(over))] -= 1
    remainders = exact - counts
    for index in np.argsort(-remainders, kind="stable")[: units - counts.sum()]:
        counts[index] += 1
    widths = counts * multiple
    widths[int(np.argmax(widths))] += rest  # channels beyond the last whole unit
    bounds = np.concatenate([[0], np.cumsum(widths)])
    return [np.arange(bounds[i], bounds[i + 1]) for i in range(n)]
