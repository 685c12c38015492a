"""Placement: which board runs which branch, and how wide each branch is.

Computed by pure analysis (no hardware), as accelerate computes device maps, and checked by
:func:`check_placement`, which lists every problem at once. Strategies register by name:

* ``round-robin``: branch ``i`` on board ``i mod boards``, widths as given (equal by default).
* ``balanced``: widths chosen so that every board finishes at the same time, from each
  board's relative speed and the model's branch cost curve (``cost(w)``, see
  :mod:`splitnet.framework.cost`); faster boards get wider branches.
* ``profile``: ``balanced`` with speeds measured by probing each board first.

More branches than boards: boards take several branches, run one after another (balanced
uses every board once, then gives each extra branch to the board where it lowers the common
finish time most). Fewer branches than boards: the unused boards (the slowest, for
balanced) are listed as spares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..framework.cost import BranchCost
from ..framework.errors import SplitnetError
from ..framework.registry import Registry
from ..framework.shares import normalise_shares
from .inventory import Inventory

SHARE_TOLERANCE = 1e-6
BYTES_PER_PARAM = 4  # fp32 weights


@dataclass(frozen=True)
class Placement:
    """``branches[i]`` is the board of branch ``i``, ``shares[i]`` its width share."""

    branches: tuple[str, ...]
    shares: tuple[float, ...]
    spares: tuple[str, ...] = ()
    strategy: str = "round-robin"
    speeds: Mapping[str, float] = field(default_factory=dict)  # the speeds a strategy used

    def as_dict(self) -> dict[int, str]:
        return dict(enumerate(self.branches))

    def boards_used(self) -> list[str]:
        return list(dict.fromkeys(self.branches))

    def branches_on(self, board: str) -> list[int]:
        return [i for i, name in enumerate(self.branches) if name == board]


Strategy = Callable[..., Placement]
_STRATEGIES: Registry[Strategy] = Registry("placement strategy")


def register_strategy(name: str) -> Callable[[Strategy], Strategy]:
    def add(fn: Strategy) -> Strategy:
        return _STRATEGIES.add(name, fn)

    return add


def list_strategies() -> list[str]:
    return _STRATEGIES.names()


def needs_probe(strategy: str) -> bool:
    return strategy == "profile"


def check_strategy(strategy: str, widths: tuple[float, ...] | None) -> str:
    """``strategy`` if it exists and can honour ``widths``; else a user error."""
    _STRATEGIES.get(strategy)  # unknown: lists the known ones
    if strategy != "round-robin" and widths is not None:
        raise SplitnetError(
            f"placement {strategy!r} chooses the branch widths itself", "drop --widths, or use --placement round-robin"
        )
    return strategy


def _require_boards(inventory: Inventory) -> list[str]:
    if not inventory.boards:
        raise SplitnetError("the inventory has no boards", "declare at least one board")
    return list(inventory.names)


@register_strategy("round-robin")
def place_round_robin(
    n: int, inventory: Inventory, *, widths: tuple[float, ...] | None = None, **_: object
) -> Placement:
    names = _require_boards(inventory)
    branches = tuple(names[i % len(names)] for i in range(n))
    return Placement(
        branches=branches,
        shares=normalise_shares(n, widths),
        spares=tuple(name for name in names if name not in branches),
        strategy="round-robin",
    )


def balanced_shares(counts: Mapping[str, int], speeds: Mapping[str, float], cost: BranchCost) -> dict[str, float]:
    """Share per branch on each board so that ``count * cost(share) / speed`` is equal everywhere.

    Bisection on the common finish time ``t``: at ``t`` board ``b`` affords branches of share
    ``cost.inverse(t * speed_b / count_b)``; the total share grows with ``t`` and must be 1.
    """
    used = [b for b, k in counts.items() if k > 0]

    def total(t: float) -> float:
        return sum(counts[b] * cost.inverse(t * speeds[b] / counts[b]) for b in used)

    lo, hi = 0.0, 1.0
    while total(hi) < 1.0:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if total(mid) < 1.0 else (lo, mid)
    shares = {b: cost.inverse(hi * speeds[b] / counts[b]) for b in used}
    scale = sum(counts[b] * shares[b] for b in used)
    return {b: s / scale for b, s in shares.items()}


def _finish_time(counts: Mapping[str, int], speeds: Mapping[str, float], cost: BranchCost) -> float:
    shares = balanced_shares(counts, speeds, cost)
    return max(counts[b] * cost(shares[b]) / speeds[b] for b in counts)


def _interleave(counts: Mapping[str, int]) -> list[str]:
    """Board names repeated by count, round-robin order: a, b, a, b, a."""
    left = dict(counts)
    order = []
    while any(left.values()):
        for board in counts:
            if left[board]:
                order.append(board)
                left[board] -= 1
    return order


@register_strategy("balanced")
def place_balanced(
    n: int,
    inventory: Inventory,
    *,
    widths: tuple[float, ...] | None = None,
    speeds: Mapping[str, float] | None = None,
    cost: BranchCost | None = None,
    strategy: str = "balanced",
    **_: object,
) -> Placement:
    check_strategy(strategy, widths)
    names = _require_boards(inventory)
    speeds = {b.name: b.relative_speed for b in inventory.boards} | dict(speeds or {})
    for name in names:
        if not speeds[name] > 0:
            raise SplitnetError(f"board {name} has speed {speeds[name]}", "give every board a positive speed")
    cost = cost or BranchCost()
    fastest_first = sorted(names, key=lambda b: (-speeds[b], names.index(b)))
    counts = dict.fromkeys(fastest_first[: min(n, len(names))], 1)
    for _ in range(n - len(counts)):  # extra branches: where the common finish time grows least
        best = min(counts, key=lambda b: (_finish_time(counts | {b: counts[b] + 1}, speeds, cost), names.index(b)))
        counts[best] += 1
    per_board = balanced_shares(counts, speeds, cost)
    branches = _interleave({b: counts[b] for b in names if b in counts})
    return Placement(
        branches=tuple(branches),
        shares=tuple(per_board[b] for b in branches),
        spares=tuple(name for name in names if name not in counts),
        strategy=strategy,
        speeds={name: float(speeds[name]) for name in names},
    )


@register_strategy("profile")
def place_profile(n: int, inventory: Inventory, *, speeds: Mapping[str, float] | None = None, **kwargs) -> Placement:
    if not speeds:
        raise SplitnetError("placement 'profile' needs measured board speeds", "probe the boards first (splitrun does)")
    return place_balanced(n, inventory, speeds=speeds, strategy="profile", **kwargs)


def place(strategy: str, n: int, inventory: Inventory, **kwargs) -> Placement:
    """Run the named strategy (``round-robin``, ``balanced``, ``profile`` or a registered one).

    What it returns is checked here, once, whichever strategy made it (a plug-in's too);
    whether the branches' weights fit the boards is checked by :func:`fits` once the plan
    says how many weights each branch has.
    """
    return validated(_STRATEGIES.get(strategy)(n, inventory, **kwargs), n, inventory)


def _structure_problems(placement: Placement, n_branches: int, inventory: Inventory) -> list[str]:
    problems = []
    known = set(inventory.names)
    if len(placement.branches) != n_branches:
        problems.append(f"placement has {len(placement.branches)} branches, the plan has {n_branches}")
    if len(placement.shares) != len(placement.branches):
        problems.append(f"{len(placement.shares)} width shares for {len(placement.branches)} branches")
    if any(s <= 0 for s in placement.shares):
        problems.append(f"width shares must be positive, got {placement.shares}")
    if placement.shares and abs(sum(placement.shares) - 1.0) > SHARE_TOLERANCE:
        problems.append(f"width shares sum to {sum(placement.shares):.6f}, not 1")
    for i, name in enumerate(placement.branches):
        if name not in known:
            problems.append(f"branch {i} is placed on unknown board {name!r}")
    for name in placement.spares:
        if name not in known:
            problems.append(f"spare {name!r} is not in the inventory")
        if name in placement.branches:
            problems.append(f"board {name!r} is both a spare and in use")
    return problems


def _memory_problems(placement: Placement, inventory: Inventory, branch_params: tuple[int, ...]) -> list[str]:
    problems = []
    for board in inventory.boards:
        on_board = placement.branches_on(board.name)
        need_mb = sum(branch_params[i] for i in on_board if i < len(branch_params)) * BYTES_PER_PARAM / 2**20
        if board.memory_mb is not None and need_mb > board.memory_mb:
            problems.append(
                f"board {board.name} has {board.memory_mb} MB but branches {on_board} need {need_mb:.0f} MB of weights"
            )
    return problems


def check_placement(
    placement: Placement, n_branches: int, inventory: Inventory, branch_params: tuple[int, ...] | None = None
) -> list[str]:
    """Every problem with ``placement`` (empty when it is usable).

    ``branch_params`` (weights per branch, from the plan) adds a memory check against each
    board's declared memory.
    """
    problems = _structure_problems(placement, n_branches, inventory)
    if branch_params is not None:
        problems += _memory_problems(placement, inventory, branch_params)
    return problems


def _raise(problems: list[str]) -> None:
    if problems:
        raise SplitnetError(
            "bad placement: " + "; ".join(problems), "add boards, use more branches, or fix the inventory"
        )


def validated(
    placement: Placement, n_branches: int, inventory: Inventory, branch_params: tuple[int, ...] | None = None
) -> Placement:
    _raise(check_placement(placement, n_branches, inventory, branch_params))
    return placement


def fits(placement: Placement, inventory: Inventory, branch_params: tuple[int, ...]) -> Placement:
    """``placement`` when every board's declared memory holds the weights of its branches."""
    _raise(_memory_problems(placement, inventory, branch_params))
    return placement
