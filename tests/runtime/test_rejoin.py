"""Boards that come back, and a tracker that dies, on real local boards and trackers.

A stalled board that resumes answers again on its old session; a killed board whose server
is restarted under the same key comes back through the tracker; both go back to the pool
as spares, and a later failure uses them. A local tracker killed mid-run is restarted by
splitrun (held sessions keep serving meanwhile), and boards register with the new one. A
tracker splitrun did not start, once gone, is named in one line with the command that
restarts it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ATOL_FP32, rpc_processes, splitrun_json

from splitnet.runtime.local_cluster import free_port
from splitnet.runtime.tracker_requests import tracker_summary

# Long enough (in frames of the tiny model, 5-15 ms each) for a restarted server to start,
# register and be found: 5-15 s on this 2-core machine.
LONG = ["--model", "resnet_tiny", "--warmup", "0", "--depth", "1", "--runs", "3000"]
KILL_AT = 1000


def run_json(tmp_path, *args: str, expect: int = 0) -> tuple[dict, str]:
    data, result = splitrun_json(tmp_path, *args, expect=expect, timeout=600)
    return data, result.stderr


@pytest.mark.boards
def test_a_stall_that_ends_and_a_restarted_server_both_come_back_as_spares(tmp_path, no_leaked_boards):
    # The kill comes at frame 1000, at least 5 s into the run (frames take >= 5 ms), so the
    # 2 s stall has surely ended by then however fast this machine runs the tiny model (at
    # frame 400 it once had not); 3000 frames after it leave >= 15 s for pynq1's server.
    data, _ = run_json(
        tmp_path,
        *LONG,
        "--runs",
        "4000",
        "--inventory",
        "pynq-with-spare",
        "--timeout",
        "0.5",
        "--chaos",
        "stall:0@12:2s",
        "--chaos",
        f"restart:1@{KILL_AT}:1s",
    )
    assert data["ok"] and data["frames"] == 4008 and data["frames_degraded"] == 0
    assert data["fidelity_max_abs_diff"] <= ATOL_FP32
    back = {r["board"]: r for r in data["rejoins"]}
    assert set(back) == {"pynq0", "pynq1"}, data["rejoins"]
    # the stall ended after 2 s: pynq0 answered on its old session, well before the kill
    assert back["pynq0"]["how"] == "answered again on its session" and back["pynq0"]["frame"] < KILL_AT
    assert 1000 <= back["pynq0"]["down_ms"] < 10000
    # pynq1's server was killed and started again 1 s later: a new address, a new session
    assert back["pynq1"]["how"].startswith("its server came back at 127.0.0.1:") and back["pynq1"]["frame"] > KILL_AT
    # at the kill the board that had come back was free, so the lost branch went there
    (kill,) = [f for f in data["faults"] if f["board"] == "pynq1"]
    assert kill["frame"] == KILL_AT and kill["action"] == "branch 1 re-placed on pynq0, frame re-run"
    assert data["dead_boards"] == []  # everyone is back at the end


@pytest.mark.boards
def test_a_local_tracker_killed_mid_run_is_restarted_and_boards_register_again(tmp_path, no_leaked_boards):
    data, _ = run_json(
        tmp_path, *LONG, "--inventory", "pynq-with-spare", "--chaos", "kill:tracker@20", "--chaos", "restart:1@60:1s"
    )
    assert data["ok"] and data["frames"] == 3008  # the held sessions kept serving: nothing lost
    assert data["fidelity_max_abs_diff"] <= ATOL_FP32
    (restart,) = data["tracker"]
    assert restart["event"] == "restarted" and restart["down_ms"] < 30000
    # pynq1, restarted after the tracker was, registered with the new tracker and came back through it
    (back,) = data["rejoins"]
    assert back["board"] == "pynq1" and "a new session" in back["how"]


_TRACKER = [sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1"]


@pytest.mark.boards
def test_a_tracker_that_splitrun_did_not_start_is_named_when_it_is_gone(tmp_path):
    """Killed before the frames: held sessions serve them; a board that needs a new session
    cannot get one, and that is said once, with the command that restarts the tracker; when
    no board is left at all, the error says so too."""
    port = free_port()
    inventory = tmp_path / "remote-tracker.yaml"
    inventory.write_text(
        f"tracker: {{host: 127.0.0.1, port: {port}, local: false}}\n"
        "boards:\n"
        "  - {name: pynq0, target: pynq-z1, local: true, cores: 1}\n"
        "  - {name: pynq1, target: pynq-z1, local: true, cores: 1}\n"
    )
    with subprocess.Popen(
        [*_TRACKER, "--port", str(port), "--port-end", str(port + 1)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    ) as tracker:
        try:
            _wait_tracker(port)
            run = subprocess.Popen(
                [sys.executable, "-m", "splitnet", "--model", "resnet_tiny", "--warmup", "0", "--depth", "1"]
                + ["--runs", "400", "--inventory", str(inventory), "--chaos", "kill:1@100", "--chaos", "kill:0@300"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "COLUMNS": "200"},
            )
            _wait_all_held(port, boards=2)
            os.killpg(tracker.pid, signal.SIGKILL)  # the tracker goes before the first frame
            out, err = run.communicate(timeout=600)
        finally:
            if tracker.poll() is None:
                os.killpg(tracker.pid, signal.SIGKILL)
    assert run.returncode == 2 and "Traceback" not in err, err
    gone = f"the RPC tracker at 127.0.0.1:{port} is gone"
    restart = f"restart it: python -m tvm.exec.rpc_tracker --host 127.0.0.1 --port {port}"
    notes = [line for line in err.splitlines() if "cannot come back" in line]
    assert notes and gone in notes[0] and restart in notes[0], err
    (error,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert "branch" in error and "at frame 300" in error and "no board is left" in error
    assert gone in error and restart in error, error
    time.sleep(0.5)
    assert not rpc_processes(owner=run.pid)


def _wait_tracker(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            tracker_summary("127.0.0.1", port, timeout=2.0)
            return
        except Exception:  # noqa: BLE001 (not up yet)
            time.sleep(0.2)
    raise AssertionError("the test's tracker did not start")


def _wait_all_held(port: int, boards: int, timeout: float = 240.0) -> None:
    """Until the run holds a session on every board (none free at the tracker): its frames come next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            summary = tracker_summary("127.0.0.1", port, timeout=2.0)
        except Exception:  # noqa: BLE001 (not up yet)
            time.sleep(0.2)
            continue
        servers = summary.get("server_info", [])
        free = summary.get("queue_info", {}).get("pynq", {}).get("free", 1)
        if len(servers) >= boards and free == 0:
            return
        time.sleep(0.2)
    raise AssertionError("the run never held its boards")
