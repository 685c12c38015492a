"""Children die with their parent: a splitrun killed by any signal, SIGKILL included, leaves no
tracker, RPC server or popen_worker behind (runtime/lifeline.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
from conftest import rpc_processes, splitrun_popen

from splitnet.runtime.lifeline import OWNER_ENV, forget, spawn

GONE_WITHIN_S = 5.0  # the bound; the measured time is printed (seen: tens of ms)


def _wait_gone(owner: int, within: float) -> tuple[float | None, set[int]]:
    """Seconds until no process carries ``owner``'s marker (None if some still do after ``within``)."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        left = rpc_processes(owner=owner)
        if not left:
            return time.monotonic() - start, set()
        time.sleep(0.05)
    return None, rpc_processes(owner=owner)


def _kill_leftovers(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _cpu_s(pids: set[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def _status(pid: int) -> str:
    try:
        return psutil.Process(pid).status()
    except psutil.Error:
        return ""


def _frames_running(proc: subprocess.Popen, timeout: float = 240.0) -> None:
    """Wait until the boards are answering frames: their processes keep burning CPU.

    (Compiling happens in splitrun itself; once the frames run, the boards compute without
    a pause, so their CPU time grows by a good part of a second every second.)
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        pids = rpc_processes(owner=proc.pid)
        before = _cpu_s(pids)
        time.sleep(1.0)
        if len(pids) >= 6 and _cpu_s(pids) - before > 0.3:
            return
    raise AssertionError(f"the boards never got to answering frames (splitrun rc {proc.poll()})")


@pytest.mark.boards
@pytest.mark.parametrize("chaos", [[], ["--chaos", "stall:0@20:60s"]], ids=["running", "a-board-stalled"])
def test_sigkill_of_splitrun_mid_run_leaves_no_process_behind(chaos):
    """The issue's test: SIGKILL splitrun mid-run, then no process with its owner marker after 5 s.

    Also with one board stopped (SIGSTOP) at that moment: a stalled server must die too.
    """
    with splitrun_popen("--model", "resnet_tiny", "--runs", "1000000", "--depth", "1", *chaos) as proc:
        try:
            _frames_running(proc)
            if chaos:  # until the board is stopped
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not any(
                    _status(pid) == psutil.STATUS_STOPPED for pid in rpc_processes(owner=proc.pid)
                ):
                    time.sleep(0.1)
            before = rpc_processes(owner=proc.pid)
            # a tracker and two servers, each with its popen_worker, plus the servers' session processes
            assert len(before) >= 6, before
        finally:
            proc.kill()
            proc.wait()
    gone_after, left = _wait_gone(proc.pid, GONE_WITHIN_S)
    _kill_leftovers(left)
    assert gone_after is not None, f"still running {GONE_WITHIN_S} s after SIGKILL: {sorted(left)}"
    print(f"{len(before)} processes, all gone {gone_after * 1000:.0f} ms after SIGKILL of splitrun")


_CHILD = """
import sys, time
from splitnet.runtime.lifeline import OWNER_ENV, spawn
import os
env = {**os.environ, OWNER_ENV: str(os.getpid())}
# a child that starts a grandchild of its own, as an rpc_server starts its popen_worker
spawn(["sh", "-c", "sleep 300 & sleep 300"], env=env)
print("started", flush=True)
time.sleep(300)
"""


def test_a_killed_parent_takes_its_children_and_their_children_with_it():
    with subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, text=True) as parent:
        try:
            assert parent.stdout.readline().strip() == "started"
            deadline = time.monotonic() + 10
            while len(rpc_processes(owner=parent.pid)) < 3 and time.monotonic() < deadline:  # sh and two sleeps
                time.sleep(0.05)
            assert len(rpc_processes(owner=parent.pid)) >= 3
        finally:
            parent.kill()
            parent.wait()
    gone_after, left = _wait_gone(parent.pid, GONE_WITHIN_S)
    _kill_leftovers(left)
    assert gone_after is not None, f"left behind: {sorted(left)}"


def test_a_child_started_from_a_thread_outlives_the_thread():
    """The kernel's parent-death signal follows the thread that forked: spawn forks from one that lasts."""
    env = {**os.environ, OWNER_ENV: str(os.getpid())}
    started: list[subprocess.Popen] = []
    thread = threading.Thread(target=lambda: started.append(spawn(["sleep", "30"], env=env)))
    thread.start()
    thread.join()
    (child,) = started
    try:
        time.sleep(0.5)
        assert child.poll() is None, "the child died with the thread that asked for it"
        assert psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE
        assert os.getpgid(child.pid) == child.pid  # its own process group: stopped as a whole
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        forget(child.pid)
