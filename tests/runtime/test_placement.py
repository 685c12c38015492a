"""Placement is pure analysis: fake inventories in, exact dicts out, every problem listed."""

from __future__ import annotations

import math

import pytest

from splitnet.framework.errors import SplitnetError
from splitnet.partitioners import get_partitioner
from splitnet.partitioners.cost import BranchCost, branch_cost_model
from splitnet.runtime import Board, Inventory, Tracker, check_placement, place, validated
from splitnet.runtime.placement import Placement, balanced_shares

QUADRATIC = BranchCost(1.0, 0.0)


def inventory(*boards: tuple[str, float | None], memory_mb: int | None = None) -> Inventory:
    return Inventory(
        tracker=Tracker(),
        boards=tuple(
            Board(name=name, key="k", target={"kind": "llvm"}, speed=speed, memory_mb=memory_mb)
            for name, speed in boards
        ),
    )


def test_round_robin_exact():
    two = inventory(("a", None), ("b", None))
    assert place("round-robin", 2, two).as_dict() == {0: "a", 1: "b"}
    four = place("round-robin", 4, two)
    assert four.as_dict() == {0: "a", 1: "b", 2: "a", 3: "b"} and four.spares == ()
    assert four.shares == (0.25, 0.25, 0.25, 0.25)
    assert four.branches_on("a") == [0, 2]
    one = place("round-robin", 1, inventory(("a", None), ("b", None), ("c", None)))
    assert one.as_dict() == {0: "a"} and one.spares == ("b", "c")
    uneven = place("round-robin", 2, two, widths=(3.0, 1.0))
    assert uneven.shares == (0.75, 0.25)


def test_balanced_gives_faster_boards_wider_branches():
    # cost ~ share**2: equal finish times need share ~ sqrt(speed)
    placement = place("balanced", 2, inventory(("fast", 1.0), ("slow", 0.5)), cost=QUADRATIC)
    assert placement.as_dict() == {0: "fast", 1: "slow"} and placement.spares == ()
    expected = (1 / (1 + math.sqrt(0.5)), math.sqrt(0.5) / (1 + math.sqrt(0.5)))
    assert placement.shares == pytest.approx(expected, abs=1e-9)
    assert placement.speeds == {"fast": 1.0, "slow": 0.5}
    # with a linear cost the shares are the speeds themselves
    linear = place("balanced", 2, inventory(("fast", 3.0), ("slow", 1.0)), cost=BranchCost(0.0, 1.0))
    assert linear.shares == pytest.approx((0.75, 0.25), abs=1e-9)


def test_balanced_more_branches_than_boards_shares_out_by_speed():
    placement = place("balanced", 3, inventory(("fast", 2.0), ("slow", 1.0)), cost=QUADRATIC)
    assert placement.as_dict() == {0: "fast", 1: "slow", 2: "fast"}
    # two branches of w on a 2x board take as long as one of w on the 1x board
    assert placement.shares == pytest.approx((1 / 3, 1 / 3, 1 / 3), abs=1e-9)


def test_balanced_uses_every_board_before_doubling_up():
    # one board at half speed still beats a second branch on the fast one (cost ~ share**2)
    placement = place("balanced", 2, inventory(("fast", 1.0), ("slow", 0.1)), cost=QUADRATIC)
    assert placement.as_dict() == {0: "fast", 1: "slow"}
    four = place("balanced", 4, inventory(("a", 1.0), ("b", 1.0)), cost=QUADRATIC)
    assert four.as_dict() == {0: "a", 1: "b", 2: "a", 3: "b"} and four.shares == pytest.approx((0.25,) * 4)


def test_balanced_fewer_branches_than_boards_keeps_the_slowest_as_spares():
    placement = place("balanced", 1, inventory(("a", 1.0), ("b", 3.0), ("c", 2.0)), cost=QUADRATIC)
    assert placement.as_dict() == {0: "b"} and placement.spares == ("a", "c") and placement.shares == (1.0,)


def test_balanced_falls_back_to_cores_when_no_speed_is_declared():
    boards = (
        Board(name="one", key="k", target={"kind": "llvm"}, cores=1),
        Board(name="four", key="k", target={"kind": "llvm"}, cores=4),
    )
    placement = place("balanced", 2, Inventory(tracker=Tracker(), boards=boards), cost=QUADRATIC)
    assert placement.shares == pytest.approx((1 / 3, 2 / 3), abs=1e-9)


def test_balanced_finish_times_are_equal_for_a_real_cost_curve():
    cost = BranchCost(quadratic=3.0e9, linear=0.2e9)
    counts, speeds = {"a": 2, "b": 1, "c": 3}, {"a": 1.0, "b": 0.3, "c": 2.2}
    shares = balanced_shares(counts, speeds, cost)
    times = [counts[b] * cost(shares[b]) / speeds[b] for b in counts]
    assert max(times) == pytest.approx(min(times), rel=1e-9)
    assert sum(counts[b] * shares[b] for b in counts) == pytest.approx(1.0, abs=1e-12)


def test_profile_uses_measured_speeds_and_needs_them():
    boards = inventory(("a", 1.0), ("b", 1.0))
    with pytest.raises(SplitnetError, match="needs measured board speeds"):
        place("profile", 2, boards)
    placement = place("profile", 2, boards, speeds={"a": 1.0, "b": 0.25}, cost=QUADRATIC)
    assert placement.strategy == "profile" and placement.shares == pytest.approx((2 / 3, 1 / 3), abs=1e-9)


def test_strategies_that_choose_widths_refuse_given_widths():
    with pytest.raises(SplitnetError, match="chooses the branch widths itself"):
        place("balanced", 2, inventory(("a", 1.0), ("b", 1.0)), widths=(1.0, 1.0))


def test_unknown_strategy_lists_the_known_ones():
    with pytest.raises(SplitnetError, match="balanced, profile, round-robin"):
        place("fastest", 2, inventory(("a", 1.0)))


def test_check_lists_every_problem_at_once():
    boards = inventory(("a", 1.0), ("b", 1.0), memory_mb=1)
    bad = Placement(branches=("a", "zz", "a"), shares=(0.5, 0.4, 0.3), spares=("a", "ghost"))
    problems = check_placement(bad, 2, boards, branch_params=(300_000, 10, 10))
    assert problems == [
        "placement has 3 branches, the plan has 2",
        "width shares sum to 1.200000, not 1",
        "branch 1 is placed on unknown board 'zz'",
        "board 'a' is both a spare and in use",
        "spare 'ghost' is not in the inventory",
        "board a has 1 MB but branches [0, 2] need 1 MB of weights",
    ]
    with pytest.raises(SplitnetError, match="bad placement: placement has 3 branches"):
        validated(bad, 2, boards)
    good = place("round-robin", 2, boards)
    assert check_placement(good, 2, boards, branch_params=(1000, 1000)) == []


def test_cost_model_matches_the_plans_flop_accounting(tiny_graph):
    """cost(w) from the graph alone agrees with the FLOPs a real plan counts per branch."""
    cost = branch_cost_model(tiny_graph)
    rule = get_partitioner("resnet_v1")
    full = rule.plan(tiny_graph, model="resnet_tiny", n=1, widths=None, multiple=1)
    assert cost(1.0) == pytest.approx(full.branches[0].flops, rel=1e-9)
    halves = rule.plan(tiny_graph, model="resnet_tiny", n=2, widths=None, multiple=1)
    for branch in halves.branches:
        assert cost(0.5) == pytest.approx(branch.flops, rel=1e-9)
    assert cost.linear > 0 and cost.quadratic > 0  # the stem reads the unsplit image
    assert cost.inverse(cost(0.3)) == pytest.approx(0.3)
