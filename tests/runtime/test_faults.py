"""Fault tolerance for real: boards killed (SIGKILL) or stalled (SIGSTOP) mid-run by --chaos,
on real local RPC servers, under every recovery policy; and the pieces underneath."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from conftest import ATOL_FP32, rpc_processes, splitrun, splitrun_json, splitrun_popen

from splitnet.framework.errors import SplitnetError
from splitnet.runtime.chaos import parse_chaos
from splitnet.runtime.coded import decode, head_layers, row_blocks
from splitnet.runtime.guard import MIN_TIMEOUT_S, derived_timeout, first_success, submit

# One frame in flight, so frame numbers are exact: 8 verify frames + 100 = 108 sent.
FRAMES = ["--model", "resnet_tiny", "--runs", "100", "--warmup", "0", "--depth", "1"]


def run_json(tmp_path, *args: str) -> dict:
    return splitrun_json(tmp_path, *FRAMES, *args)[0]


def check(data: dict, name: str) -> dict:
    return next(c for c in data["checks"] if c["name"].startswith(name))


@pytest.mark.boards
@pytest.mark.parametrize("policy", ["spare", "replicate", "coded"])
def test_killed_board_loses_no_frame_and_every_answer_is_exact(policy, tmp_path, no_leaked_boards):
    data = run_json(tmp_path, "--inventory", "pynq-with-spare", "--policy", policy, "--chaos", "kill:1@20")
    assert data["policy"] == policy and data["ok"]
    assert data["frames"] == 108 and check(data, "frames answered")["value"] == "108/108"
    assert data["frames_degraded"] == 0
    assert data["fidelity_max_abs_diff"] <= ATOL_FP32  # every answered frame, the ones after the kill too
    assert data["chaos"] == ["kill pynq1 at frame 20"] and data["dead_boards"] == ["pynq1"]
    events = [f for f in data["faults"] if f["board"] == "pynq1"]
    assert events and all(f["frame"] >= 20 for f in events)
    # noticed at once; under replicate a dead copy is only noticed when it is called before
    # its twin answers (a copy queued behind the twin's answer is skipped), so a few frames on
    assert events[0]["frame"] <= (25 if policy == "replicate" else 21), "the kill must be noticed"
    assert all(f["kind"] == "error" and f["detected_ms"] >= 0 and f["action"] for f in events)
    assert events[0]["recovered_ms"] is not None
    assert "pynq1" not in [b["board"] for b in data["branches"]]
    if policy == "coded":
        assert data["parity_decodes"] > 50  # pynq1's head block, rebuilt from parity on every later frame


@pytest.mark.boards
def test_stalled_board_is_timed_out_and_its_branch_moves(tmp_path, no_leaked_boards):
    data = run_json(
        tmp_path, "--inventory", "pynq-with-spare", "--policy", "spare", "--timeout", "1", "--chaos", "stall:0@12:3s"
    )
    assert data["ok"] and check(data, "frames answered")["value"] == "108/108"
    (event,) = [f for f in data["faults"] if f["board"] == "pynq0"]
    assert event["kind"] == "timeout" and event["frame"] == 12
    assert 1000 <= event["detected_ms"] < 2000 and event["recovered_ms"] is not None
    assert "re-placed on pynq2" in event["action"]
    assert data["timeout_s"] == 1.0 and data["worst_frame_ms"] >= 1000


@pytest.mark.boards
def test_degrade_answers_from_the_surviving_branch_and_flags_it(tmp_path, no_leaked_boards):
    data = run_json(tmp_path, "--policy", "degrade", "--chaos", "kill:1@20")
    assert data["ok"] and data["frames"] == 108
    assert data["frames_degraded"] == 108 - 20  # every frame from the kill on
    degraded = check(data, "degraded frames")
    assert degraded["status"] == "PASS" and degraded["value"].startswith("88 frames")
    assert data["branches"][1]["address"] == "(lost)"


@pytest.mark.boards
def test_policy_none_stops_with_one_line_naming_the_board(tmp_path):
    proc = splitrun_popen(*FRAMES, "--policy", "none", "--chaos", "kill:1@20")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert "branch 1 failed on pynq1 at frame 20" in line and "--policy spare" in line
    time.sleep(0.5)
    assert not rpc_processes(owner=proc.pid)


def test_bad_chaos_and_timeout_options_are_one_line_errors():
    for args, expected in (
        (["--chaos", "explode:1@3"], "cannot read --chaos 'explode:1@3'"),
        (["--chaos", "stall:0@3"], "does not say how long to stall"),
        (["--chaos", "kill:7@3", "--model", "resnet_tiny"], "the inventory has 2 boards"),
        (["--timeout", "0"], "--timeout must be positive"),
        (["--policy", "pray"], "invalid choice: 'pray'"),
    ):
        result = splitrun(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
        assert expected in line and "fix:" in line, line


def test_chaos_specs():
    assert parse_chaos("kill:1@20").action == "kill"
    stall = parse_chaos("stall:pynq0@10:2.5s")
    assert (stall.action, stall.board, stall.frame, stall.seconds) == ("stall", "pynq0", 10, 2.5)
    with pytest.raises(SplitnetError, match="a kill has no duration"):
        parse_chaos("kill:1@20:2s")


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_any_one_lost_block_is_decoded_exactly_from_parity(k):
    rng = np.random.RandomState(k)
    weight = rng.standard_normal((37, 16)).astype(np.float32)
    x = rng.standard_normal((1, 16)).astype(np.float32)
    blocks, parity, heights = row_blocks(weight, k)
    assert sum(heights) == 37
    answers = {j: x @ b.T for j, b in enumerate(blocks)} | {k: x @ parity.T}
    uncoded = x @ weight.T
    for lost in range(k + 1):
        y, recovered = decode({j: a for j, a in answers.items() if j != lost}, k, heights)
        assert recovered == (lost if lost < k else None)
        assert np.abs(y - uncoded).max() <= ATOL_FP32
    if k > 1:
        with pytest.raises(ValueError, match="cannot all be recovered"):
            decode({j: a for j, a in answers.items() if j not in (0, 1)}, k, heights)


def test_the_resnet_head_is_one_dense_layer(tiny_reference, tiny_graph):
    from splitnet.partitioners import apply_plan, get_partitioner

    plan = get_partitioner("resnet_v1").plan(tiny_graph, model="resnet_tiny", n=2, widths=None, multiple=8)
    head = apply_plan(tiny_graph, plan).head
    (layer,) = head_layers(head)
    assert layer.kind == "dense" and layer.weight.shape == (10, sum(plan.head.feature_sizes))


def test_a_call_that_never_returns_is_a_timeout_not_a_hang():
    never = threading.Event()
    started = time.perf_counter()
    futures = [submit(never.wait), submit(lambda: 1 / 0)]
    outcome = first_success(futures, started + 0.3, started)
    assert outcome.winner is None and 0.3 <= time.perf_counter() - started < 2.0
    kinds = sorted(failure[1] for failure in outcome.failures)
    assert kinds == ["error", "timeout"]
    never.set()


def test_call_threads_are_reused_and_a_stuck_call_holds_none_up():
    stuck = threading.Event()
    blocked = submit(stuck.wait)  # keeps its thread until set
    try:
        for f in [submit(time.sleep, 0.01) for _ in range(8)]:
            f.result(timeout=5)
        time.sleep(0.05)  # their threads go back to waiting
        waiting = set(threading.enumerate())
        ran_on = set()
        for _ in range(20):  # one at a time: each finds an idle thread, none starts
            ran_on.add(submit(threading.current_thread).result(timeout=5))
            time.sleep(0.005)
        assert ran_on <= waiting
        assert not blocked.done()
        many = [submit(time.sleep, 0.2) for _ in range(24)]  # more than are idle: threads start
        started = time.perf_counter()
        for f in many:
            f.result(timeout=5)
        assert time.perf_counter() - started < 1.0  # all at once, none waited for another
    finally:
        stuck.set()
    assert blocked.result(timeout=5) is True


def test_timeouts_follow_measured_latency():
    assert derived_timeout([0.01, 0.02]) == MIN_TIMEOUT_S
    assert derived_timeout([0.5, 0.6]) == pytest.approx(2.4)


@pytest.mark.boards
def test_a_branch_lost_on_the_first_frame_degrades_every_frame(tmp_path, no_leaked_boards):
    report = tmp_path / "r.json"
    result = splitrun(
        "--model",
        "resnet_tiny",
        "--runs",
        "5",
        "--warmup",
        "0",
        "--depth",
        "1",
        "--policy",
        "degrade",
        "--chaos",
        "kill:1@0",
        "--json",
        str(report),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["frames"] == data["frames_degraded"] == 13
    assert check(data, "distributed vs in-process")["status"] == "INFO"  # nothing exact to compare
    assert check(data, "degraded frames")["status"] == "PASS"


@pytest.mark.boards
def test_a_board_killed_with_frames_in_flight_loses_none(tmp_path, no_leaked_boards):
    """Killed during the pipelined phase (frames 108..207, four in flight): every frame still answered."""
    report = tmp_path / "r.json"
    args = [*FRAMES[:-1], "4", "--inventory", "pynq-with-spare", "--chaos", "kill:1@150", "--json", str(report)]
    result = splitrun(*args)
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["ok"] and data["frames"] == 208 and check(data, "frames answered")["value"] == "208/208"
    assert data["fidelity_max_abs_diff"] <= ATOL_FP32 and data["steady_fps"] > 0
    assert data["dead_boards"] == ["pynq1"] and all(f["recovered_ms"] is not None for f in data["faults"])


class _Module:
    """A stand-in for a branch on a board (the executor's interface), failing when told to."""

    def __init__(self, board: str, fails: bool = False) -> None:
        self.board, self.fails = board, fails

    def call_unless(self, answered, x):
        if self.fails:
            raise ConnectionError(f"{self.board} went away")
        answered.set()
        return np.ones((1, 4), dtype=np.float32)


def test_recovery_policies_are_a_registry_the_executor_asks():
    """A new policy is one registered class: the executor calls its decision, knows no names."""
    from splitnet.runtime.executor import DistributedSplit
    from splitnet.runtime.inventory_file import parse_text
    from splitnet.runtime.policies import _POLICIES, RecoveryPolicy, get_policy, list_policies, register_policy

    assert list_policies()[:5] == ["spare", "replicate", "coded", "degrade", "none"]
    assert get_policy("replicate").copies == 2 and get_policy("coded").coded_head
    assert not get_policy("degrade").replaces and not get_policy("none").replaces
    with pytest.raises(SplitnetError, match="unknown recovery policy .typo."):
        DistributedSplit([_Module("a")], head=lambda *f: f[0], policy="typo")

    decisions = []

    @register_policy
    class Halve(RecoveryPolicy):
        name = "halve-for-test"
        summary = "answer with half-strength features"
        replaces = False

        def lost_branch(self, runner, frame, branch, x, events, start):
            decisions.append((frame, branch, [e.board for e in events]))
            return np.full((1, 4), 0.5, dtype=np.float32), 0.0

    try:
        runner = DistributedSplit(
            [_Module("a"), _Module("b", fails=True)], head=lambda *f: np.concatenate(f, 1), policy=Halve.name
        )
        result = runner(np.zeros((1, 3), dtype=np.float32))
        assert decisions == [(0, 1, ["b"])]
        assert result.logits.tolist() == [[1.0] * 4 + [0.5] * 4] and runner.dead == {"b"}
        assert "halve-for-test" in list_policies()
        inventory = parse_text("boards: [{name: x, target: x86}]\npolicy: halve-for-test\n", "t.yaml")
        assert inventory.policy == "halve-for-test"  # inventories accept what is registered
    finally:
        _POLICIES._items.pop(Halve.name)
