"""Answers that are wrong, not missing: a board answering with a wrong shape, non-finite values
or (found by --audit) wrong values is failed, named and recovered, and its answer never reaches
the merge head. The corruptions are real: --chaos corrupt loads another branch's library on
the board, and overwrites the coded head's weights held on the board with NaN."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import ATOL_FP32, splitrun_json

from splitnet.runtime.answers import Audit, check_answer, checker
from splitnet.runtime.executor import _checked_call
from splitnet.runtime.guard import Skipped, WrongAnswer, first_success, submit

FRAMES = ["--model", "resnet_tiny", "--runs", "100", "--warmup", "0", "--depth", "1"]


def run(tmp_path, *args: str) -> tuple[int, dict, str]:
    data, result = splitrun_json(tmp_path, *FRAMES, *args, expect=None)
    return result.returncode, data, result.stderr


@pytest.mark.boards
def test_a_wrongly_shaped_branch_and_a_nan_head_block_are_failed_and_recovered(tmp_path, no_leaked_boards):
    # Unequal widths: branch 0 sends 40 features, branch 1 24, so branch 0's library on pynq1 is the wrong shape.
    # pynq2 holds only a coded head block: NaN weights there give NaN block answers.
    rc, data, err = run(
        tmp_path,
        "--inventory",
        "pynq-with-spare",
        "--policy",
        "coded",
        "--widths",
        "0.625,0.375",
        "--chaos",
        "corrupt:2@20",
        "--chaos",
        "corrupt:1@50",
    )
    assert rc == 0, err
    assert data["ok"] and data["frames"] == 108 and data["frames_degraded"] == 0
    assert data["fidelity_max_abs_diff"] <= ATOL_FP32  # no wrong answer was passed on
    sizes = [b["feature_size"] for b in data["branches"]]
    assert sizes[0] != sizes[1]
    nan = [f for f in data["faults"] if f["board"] == "pynq2"]
    # pynq2 holds the parity block: when the data blocks answered first, its NaN answer is
    # checked as it arrives, and counted at the next frame
    assert nan and nan[0]["frame"] in (20, 21) and nan[0]["kind"] == "wrong" and nan[0]["part"] == "head block"
    assert "non-finite" in nan[0]["detail"] and nan[0]["action"] == "decoded from the parity block"
    shape = [f for f in data["faults"] if f["board"] == "pynq1"]
    assert shape and shape[0]["frame"] == 50 and shape[0]["kind"] == "wrong" and shape[0]["part"] == "branch 1"
    assert f"where (1, {sizes[1]}) was expected" in shape[0]["detail"]
    assert shape[0]["action"] == "branch 1 re-placed on pynq0, frame re-run"
    assert sorted(data["dead_boards"]) == ["pynq1", "pynq2"] and data["rejoins"] == []  # wrong boards stay out


@pytest.mark.boards
def test_the_audit_catches_a_board_that_answers_wrong_values(tmp_path, no_leaked_boards):
    """Equal widths: branch 0's library on pynq1 answers the right shape with the wrong values;
    only the audit can tell. Audited every 5 frames, it is caught at frame 25."""
    rc, data, _ = run(tmp_path, "--inventory", "pynq-with-spare", "--audit", "5", "--chaos", "corrupt:1@22")
    (event,) = [f for f in data["faults"] if f["board"] == "pynq1"]
    assert event["frame"] == 25 and event["kind"] == "wrong" and event["detail"].startswith("audit: branch 1")
    assert event["action"] == "branch 1 re-placed on pynq2, frame re-run"
    audit = data["audit"]
    assert audit["every"] == 5 and audit["frames"] == 22 and audit["mismatches"] == 1  # frames 0, 5, .., 105
    assert audit["max_abs_diff"] <= ATOL_FP32
    # frames 22 to 24 were answered before the audit came round: the end-of-run check names them
    assert rc == 1 and not data["ok"]
    assert next(c for c in data["checks"] if c["name"].startswith("distributed"))["status"] == "FAIL"
    assert data["frames"] == 108 and data["frames_degraded"] == 0


def test_answers_are_checked_for_shape_and_finiteness():
    good = np.ones((1, 4), dtype=np.float32)
    check_answer(good, (1, 4), finite=True)
    with pytest.raises(WrongAnswer, match=r"answered a \(1, 3\) array where \(1, 4\) was expected"):
        check_answer(good[:, :3], (1, 4), finite=True)
    bad = good.copy()
    bad[0, 1] = np.nan
    bad[0, 2] = np.inf
    with pytest.raises(WrongAnswer, match="answered 2 non-finite values"):
        check_answer(bad, (1, 4), finite=True)
    check_answer(bad, (1, 4), finite=False)  # a frame that was not finite itself: not the board's fault


class _Board:
    """The executor's view of a branch module (``call_unless``), answering what it is told to."""

    def __init__(self, board: str, out: np.ndarray, delay: float = 0.0) -> None:
        self.board, self.out, self.delay = board, out, delay

    def call_unless(self, answered, x):
        time.sleep(self.delay)
        if answered.is_set():
            raise Skipped(self.board)
        answered.set()
        return self.out


def test_a_wrong_answer_never_wins_a_replica_race():
    answered = threading.Event()
    fast_wrong = _Board("a", np.full((1, 4), np.nan, dtype=np.float32))
    slow_right = _Board("b", np.ones((1, 4), dtype=np.float32), delay=0.2)
    check = checker((1, 4), finite=True)
    started = time.perf_counter()
    futures = [submit(_checked_call, m, check, answered, None) for m in (fast_wrong, slow_right)]
    outcome = first_success(futures, started + 5.0, started)
    assert outcome.winner == 1 and outcome.value.tolist() == [[1.0] * 4]
    assert [(f[0], f[1]) for f in outcome.failures] == [(0, "wrong")]


def test_the_audit_compares_with_the_in_process_answer():
    expected = [np.zeros((1, 3), dtype=np.float32)]
    audit = Audit(every=4, features=lambda x: expected)
    assert [f for f in range(10) if audit.due(f)] == [0, 4, 8]
    assert Audit.expected(audit.start(None))[0] is expected[0]
    assert audit.compare(np.full((1, 3), 5e-5, dtype=np.float32), expected[0]) is None
    assert audit.compare(np.full((1, 3), 1e-2, dtype=np.float32), expected[0]) == pytest.approx(1e-2)
    assert audit.compare(np.zeros((1, 2), dtype=np.float32), expected[0]) == float("inf")
    assert audit.summary() == {"every": 4, "frames": 0, "mismatches": 2, "max_abs_diff": pytest.approx(5e-5)}
