"""Inventories on real local trackers and RPC servers: `splitrun boards`, remote boards that
must already be registered, missing boards, more or fewer branches than boards, and a board
slowed down by a real CPU quota."""

from __future__ import annotations

import json
import socket
import subprocess
import textwrap

import pytest
from conftest import rpc_processes, splitrun

from splitnet.framework.errors import SplitnetError
from splitnet.runtime import Board, LocalCluster, free_port
from splitnet.runtime.cpu_quota import CpuQuota

pytestmark = pytest.mark.boards
TINY = ["--model", "resnet_tiny", "--runs", "3", "--warmup", "1"]


def write(tmp_path, text: str):
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def errors(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_boards_lists_the_default_inventory_with_probe_speeds(tmp_path, no_leaked_boards):
    out = tmp_path / "boards.json"
    result = splitrun("boards", "--json", str(out))
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert [r["board"] for r in rows] == ["pynq0", "pynq1"]
    for row in rows:
        assert row["registered"] and row["key"] == "pynq" and row["emulated"]
        assert row["address"].startswith("127.0.0.1:") and row["free_under_key"] == 2
        assert row["probe_gflops"] > 0 and 0 < row["relative_speed"] <= 1.0
    assert max(r["relative_speed"] for r in rows) == 1.0
    assert "pynq-z1 (emulated on this host)" in result.stdout


def test_boards_shows_a_missing_board_and_exits_non_zero(tmp_path, no_leaked_boards):
    inventory = write(
        tmp_path,
        """
        tracker: {local: true}
        boards:
          - {name: here, target: x86, local: true}
          - {name: ghost, target: x86, key: ghost}
        """,
    )
    result = splitrun("boards", "--inventory", inventory, "--wait", "1")
    assert result.returncode == 1, result.stderr
    assert "missing" in result.stdout and "yes" in result.stdout
    line = errors(result)[-1]
    assert "ghost" in line and "python -m tvm.exec.query_rpc_tracker --host 127.0.0.1 --port" in line


def test_run_waits_a_bounded_time_then_names_the_missing_keys(tmp_path, no_leaked_boards):
    inventory = write(
        tmp_path,
        """
        tracker: {local: true}
        boards:
          - {name: here, target: x86, local: true}
          - {name: ghost, target: rpi4}
        """,
    )
    result = splitrun(*TINY, "--inventory", inventory, "--wait", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = errors(result)
    assert "not registered with the tracker" in line and "after 1 s" in line and "key 'rpi4': ghost" in line
    assert "query_rpc_tracker --host 127.0.0.1 --port" in line


def test_boards_already_registered_with_a_tracker_are_used(tmp_path, no_leaked_boards):
    """Remote boards (not local): someone else runs the tracker and servers; the tracker
    address comes from TVM_TRACKER_HOST / TVM_TRACKER_PORT."""
    lab = (
        Board(name="lab0", key="lab", target={"kind": "llvm"}, local=True),
        Board(name="lab1", key="lab", target={"kind": "llvm"}, local=True),
    )
    inventory = write(
        tmp_path,
        """
        boards:
          - {name: r0, target: x86, key: lab}
          - {name: r1, target: x86, key: lab}
        """,
    )
    report = tmp_path / "r.json"
    with LocalCluster(lab) as cluster:
        env = {"TVM_TRACKER_HOST": cluster.host, "TVM_TRACKER_PORT": str(cluster.tracker_port)}
        result = splitrun(*TINY, "--inventory", inventory, "--json", str(report), env=env)
        assert result.returncode == 0, result.stderr
        data = json.loads(report.read_text())
        assert data["ok"] and [b["board"] for b in data["branches"]] == ["r0", "r1"]
        lab_addresses = {f"{host}:{port}" for host, port in cluster.address_of()}
        assert {b["address"] for b in data["branches"]} == lab_addresses
        assert not data["emulated"]
        assert len(rpc_processes() & set(cluster.pids)) == 3  # splitrun left the lab's boards running


def test_unreachable_tracker(tmp_path, no_leaked_boards):
    port = free_port()
    inventory = write(
        tmp_path, f"tracker: {{host: 127.0.0.1, port: {port}, local: false}}\nboards:\n  - {{name: r, target: x86}}\n"
    )
    result = splitrun(*TINY, "--inventory", inventory)
    assert result.returncode == 2
    (line,) = errors(result)
    assert f"cannot reach the RPC tracker at 127.0.0.1:{port}" in line and "tvm.exec.rpc_tracker" in line


def test_tracker_port_in_use(tmp_path, no_leaked_boards):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        inventory = write(
            tmp_path, f"tracker: {{local: true, port: {port}}}\nboards:\n  - {{name: a, target: x86, local: true}}\n"
        )
        result = splitrun(*TINY, "--inventory", inventory)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = errors(result)
    assert f"did not start on 127.0.0.1:{port}" in line and "free the port" in line


def test_more_branches_than_boards_share_them_and_fewer_leave_spares(tmp_path, no_leaked_boards):
    report = tmp_path / "four.json"
    result = splitrun(*TINY, "--branches", "4", "--multiple", "4", "--json", str(report))
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert [b["board"] for b in data["branches"]] == ["pynq0", "pynq1", "pynq0", "pynq1"] and data["ok"]
    report = tmp_path / "one.json"
    result = splitrun(*TINY, "--branches", "1", "--inventory", "local", "--json", str(report))
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert [b["board"] for b in data["branches"]] == ["cpu0"] and data["spares"] == ["cpu1"]
    assert "spare" in result.stdout


def _can_limit_cpu() -> bool:
    try:
        CpuQuota("probe-check", 0.5).remove()
    except SplitnetError:
        return False
    return True


@pytest.mark.skipif(not _can_limit_cpu(), reason="no writable cgroup cpu controller (needs root) for cpu_quota")
def test_profile_measures_a_quota_limited_board_and_gives_it_the_narrower_branch(tmp_path, no_leaked_boards):
    report = tmp_path / "r.json"
    result = splitrun(*TINY, "--inventory", "heterogeneous", "--placement", "profile", "--json", str(report))
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["placement"] == "profile" and data["ok"]
    gflops = data["probe_gflops"]
    assert gflops["slow"] < 0.75 * gflops["fast"], gflops  # the cgroup quota really slows it
    shares = {b["board"]: b["share"] for b in data["branches"]}
    assert shares["fast"] > shares["slow"]
