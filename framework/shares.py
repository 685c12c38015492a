"""How many branches, and how wide: the bounds and the width-share arithmetic every layer shares.

``normalise_shares`` turns the user's ``--widths`` (any positive numbers) into shares that sum
to 1. The request (:class:`splitnet.strategies.request.SplitRequest`) calls it once; the
partitioner, placement and tuning key then read the shares it produced.
"""

from __future__ import annotations

import numpy as np

from .errors import SplitnetError

MAX_BRANCHES = 8
DEFAULT_MULTIPLE = 8


def normalise_shares(n: int, widths: tuple[float, ...] | None) -> tuple[float, ...]:
    """Width shares summing to 1: equal when ``widths`` is None, else ``widths`` rescaled."""
    if not 1 <= n <= MAX_BRANCHES:
        raise SplitnetError(
            f"--branches must be between 1 and {MAX_BRANCHES}, got {n}",
            f"pass --branches 1..{MAX_BRANCHES}",
        )
    if widths is None:
        return tuple(1.0 / n for _ in range(n))
    if len(widths) != n:
        raise SplitnetError(
            f"{len(widths)} width shares given for {n} branches",
            f"give exactly {n} comma-separated shares, e.g. --widths {','.join(['1'] * n)}",
        )
    if any(not np.isfinite(w) or w <= 0 for w in widths):
        raise SplitnetError(f"width shares must be positive numbers, got {widths}", "e.g. --widths 0.75,0.25")
    scale = max(widths)  # divide first: a sum of huge widths would overflow to inf
    total = float(sum(w / scale for w in widths))
    return tuple(float(w) / scale / total for w in widths)


def check_multiple(multiple: int) -> int:
    """``multiple`` when it can round channel counts (at least 1), else a user error."""
    if multiple < 1:
        raise SplitnetError(f"channel multiple must be >= 1, got {multiple}", "pass --multiple 8 (or 1, 4, 16)")
    return multiple
