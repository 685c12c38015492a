"""Placement: which board runs which branch, as a plain dict checked before anything runs.

Computed by pure analysis (no hardware), as in accelerate's device maps; ``check_placement``
lists every problem at once. The inventory issue adds balanced and profiled strategies.
"""

from __future__ import annotations

from dataclasses import dataclass

from splitnet.framework.errors import SplitnetError
from splitnet.runtime.inventory import Inventory


@dataclass(frozen=True)
class Placement:
    """``branches[i]`` is the board name of branch ``i``; ``spares`` are unused boards."""

    branches: tuple[str, ...]
    spares: tuple[str, ...] = ()
    strategy: str = "round-robin"

    def as_dict(self) -> dict[int, str]:
        return dict(enumerate(self.branches))

    def boards_used(self) -> list[str]:
        return list(dict.fromkeys(self.branches))


def place_round_robin(n_branches: int, inventory: Inventory) -> Placement:
    names = [b.name for b in inventory.boards]
    if not names:
        raise SplitnetError("the inventory has no boards", "declare at least one board")
    branches = tuple(names[i % len(names)] for i in range(n_branches))
    spares = tuple(n for n in names if n not in branches)
    return Placement(branches=branches, spares=spares, strategy="round-robin")


def check_placement(placement: Placement, n_branches: int, inventory: Inventory) -> list[str]:
    """Every problem with ``placement`` (empty when it is usable)."""
    problems = []
    known = {b.name for b in inventory.boards}
    if len(placement.branches) != n_branches:
        problems.append(f"placement has {len(placement.branches)} branches, the plan has {n_branches}")
    for i, name in enumerate(placement.branches):
        if name not in known:
            problems.append(f"branch {i} is placed on unknown board {name!r}")
    for name in placement.spares:
        if name not in known:
            problems.append(f"spare {name!r} is not in the inventory")
        if name in placement.branches:
            problems.append(f"board {name!r} is both a spare and in use")
    return problems


def validated(placement: Placement, n_branches: int, inventory: Inventory) -> Placement:
    problems = check_placement(placement, n_branches, inventory)
    if problems:
        raise SplitnetError("bad placement: " + "; ".join(problems), "fix the inventory or the placement")
    return placement
