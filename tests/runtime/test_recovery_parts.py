"""The pieces under the recovery of issue 17, without boards: chaos specs, seeded draws, repairs."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import splitrun

from splitnet.framework.errors import SplitnetError
from splitnet.runtime.chaos import ChaosEvent, RandomChaos, parse_chaos
from splitnet.runtime.chaos_random import GAP_FRAMES, RandomDraw
from splitnet.runtime.inventory_file import builtin_inventory
from splitnet.runtime.repair import Repairs


def test_chaos_specs_for_restart_corrupt_the_tracker_and_random():
    assert parse_chaos("restart:1@20:2s") == ChaosEvent("restart", "1", 20, 2.0)
    assert parse_chaos("corrupt:pynq1@5") == ChaosEvent("corrupt", "pynq1", 5, 0.0)
    assert parse_chaos("kill:tracker@30") == ChaosEvent("kill", "tracker", 30, 0.0)
    assert parse_chaos("random:7") == RandomChaos(7)
    for text, expected in (
        ("restart:1@20", "does not say how long to restart"),
        ("corrupt:1@20:2s", "a corrupt has no duration"),
        ("stall:tracker@3:1s", "the tracker can only be killed"),
        ("random:x", "cannot read --chaos"),
    ):
        with pytest.raises(SplitnetError, match=expected):
            parse_chaos(text)


class _Chaos:
    def __init__(self) -> None:
        self.applied: list[str] = []
        self.hits: list[tuple[str, str, float]] = []

    def apply(self, action, name, seconds, runner, describe):
        self.hits.append((action, name, seconds))
        self.applied.append(describe(name))


class _Runner:
    """What the draw reads of the runner: which boards hold what, and which are dead."""

    def __init__(self, holding: list[str]) -> None:
        self._lock = threading.Lock()
        self.dead: set[str] = set()
        self.branches = [[type("M", (), {"board": b})()] for b in holding]
        self.coded_head = None


def _draws(seed: int, frames: int = 1000) -> list[tuple[int, str, str, float]]:
    chaos, runner = _Chaos(), _Runner(["pynq0", "pynq1"])
    draw = RandomDraw(seed, builtin_inventory("four-pynq"), chaos)
    out = []
    for frame in range(frames):
        before = len(chaos.hits)
        draw.before_frame(frame, runner)
        if len(chaos.hits) > before:
            out.append((frame, *chaos.hits[-1]))
            draw._left_alone_until.clear()  # as if the board were back at once
    return out


def test_seeded_chaos_draws_the_same_events_from_the_same_seed():
    first, again, other = _draws(3), _draws(3), _draws(4)
    assert first == again and first != other
    frames = [f for f, *_ in first]
    assert all(GAP_FRAMES[0] <= b - a <= GAP_FRAMES[1] for a, b in zip(frames, frames[1:], strict=False))
    assert 1000 // GAP_FRAMES[1] <= len(first) <= 1000 // GAP_FRAMES[0] + 1
    # only busy boards are hit (the two holding branches), never a spare
    assert {name for _, _, name, _ in first} <= {"pynq0", "pynq1"}
    assert {action for _, action, _, _ in first} == {"restart", "stall"}


def test_seeded_chaos_skips_a_draw_when_no_spare_is_free():
    chaos, runner = _Chaos(), _Runner(["pynq0", "pynq1", "pynq2", "pynq3"])  # every board busy
    draw = RandomDraw(1, builtin_inventory("four-pynq"), chaos)
    for frame in range(200):
        draw.before_frame(frame, runner)
    assert not chaos.hits and chaos.applied and all("skipped: no spare free" in a for a in chaos.applied)


def test_repairs_run_one_at_a_time_in_the_background_and_a_repeated_request_runs_once():
    repairs = Repairs(lambda: 7)
    gate, ran = threading.Event(), []

    def slow() -> str:
        gate.wait(5)
        ran.append("slow")
        return "did it"

    repairs.schedule("a", slow)
    repairs.schedule("b", lambda: ran.append("b") or "b done")
    repairs.schedule("b", lambda: ran.append("b again") or "b done")  # still waiting: the same repair
    assert not repairs.wait(0.2)  # blocked behind "a"
    gate.set()
    assert repairs.wait(5)
    assert ran == ["slow", "b"]
    done = [(e.what, e.done, e.ok, e.frame) for e in repairs.events]
    assert done == [("a", "did it", True, 7), ("b", "b done", True, 7)]

    def broken() -> str:
        raise RuntimeError("board went away")

    repairs.schedule("c", broken)
    repairs.schedule("d", lambda: None)  # nothing was needed: not recorded
    assert repairs.wait(5)
    assert repairs.events[-1].ok is False and repairs.events[-1].done == "board went away"
    assert len(repairs.events) == 3
    repairs.stop()
    repairs.schedule("e", lambda: "too late")
    time.sleep(0.1)
    assert len(repairs.events) == 3


def test_bad_audit_and_chaos_options_are_one_line_errors(tmp_path):
    remote = tmp_path / "remote.yaml"
    remote.write_text(
        "tracker: {host: 127.0.0.1, port: 9, local: false}\nboards:\n  - {name: b0, target: x86, local: true}\n"
    )
    for args, expected in (
        (["--audit", "-1"], "--audit must not be negative"),
        (["--chaos", "restart:1@3"], "does not say how long to restart"),
        (["--inventory", str(remote), "--chaos", "kill:tracker@3"], "the tracker is not one splitrun started"),
        (["--strategy", "pipeline", "--audit", "5"], "--audit applies to --strategy branch only"),
    ):
        result = splitrun("--model", "resnet_tiny", *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
        assert expected in line and "fix:" in line, line
