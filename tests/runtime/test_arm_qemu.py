"""Real ARM boards under qemu: the cross-built C++ server (PYNQ, armhf) and the Python server
from the aarch64 wheels (rpi4), started by splitrun itself and checked end to end.

These need ``splitrun setup arm``. They skip when it has not run, unless SPLITNET_REQUIRE_ARM
is set (CI sets it after running the set-up), when a missing set-up fails them instead.
"""

from __future__ import annotations

import json
import os

import pytest
from conftest import ATOL_FP32, splitrun, splitrun_json

from splitnet.runtime.arm.paths import ArmPaths

pytestmark = [pytest.mark.arm, pytest.mark.boards]
PATHS = ArmPaths.default()


def need(ready: bool, what: str) -> None:
    if ready:
        return
    message = f"{what} is not set up in {PATHS.root} (run: splitrun setup arm)"
    if os.environ.get("SPLITNET_REQUIRE_ARM"):
        pytest.fail(message)
    pytest.skip(message)


def run_json(tmp_path, *args: str) -> tuple[object, dict]:
    report, proc = splitrun_json(tmp_path, "--model", "resnet_tiny", "--runs", "4", "--warmup", "1", *args, timeout=600)
    return proc, report


def check_fidelity(report: dict) -> None:
    assert report["fidelity_max_abs_diff"] <= ATOL_FP32
    answered = next(c for c in report["checks"] if c["name"] == "frames answered")
    assert answered["status"] == "PASS", answered


def test_two_pynq_under_qemu(tmp_path, no_leaked_boards):
    need(PATHS.cpp_ready("armhf"), "the armhf C++ RPC server")
    proc, report = run_json(tmp_path, "--inventory", "two-pynq-qemu", "--branches", "2")
    assert report["emulation"] == {"pynq0": "qemu", "pynq1": "qemu"}
    assert not report["emulated"]  # no host stand-in: the branches ran as ARM code
    assert {b["target"] for b in report["branches"]} == {"pynq-z1 (armhf under qemu)"}
    assert "their times are the emulator's" in proc.stdout
    check_fidelity(report)


def test_pynq_and_rpi4_under_qemu(tmp_path, no_leaked_boards):
    need(PATHS.cpp_ready("armhf"), "the armhf C++ RPC server")
    need(PATHS.python_ready(), "the rpi4 arm64 user space")
    _, report = run_json(tmp_path, "--inventory", "pynq-rpi4-qemu", "--branches", "2")
    assert report["emulation"] == {"pynq0": "qemu", "rpi4": "qemu"}
    assert {b["target"] for b in report["branches"]} == {"pynq-z1 (armhf under qemu)", "rpi4 (aarch64 under qemu)"}
    check_fidelity(report)


def test_soft_float_build_is_refused(tmp_path, no_leaked_boards):
    need(PATHS.cpp_ready("armhf"), "the armhf C++ RPC server")
    inventory = tmp_path / "soft.yaml"
    inventory.write_text(
        "boards:\n  - name: soft0\n    key: pynq\n    local: true\n    emulation: qemu\n    export: tar\n"
        "    target: {kind: llvm, mtriple: armv7a-linux-gnueabihf, mcpu: cortex-a9, num-cores: 1}\n"
    )
    proc = splitrun("--inventory", str(inventory), "--model", "resnet_tiny", "--branches", "1", timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "mfloat-abi" in errors[0] and "soft0" in errors[0], errors
    assert "Traceback" not in proc.stderr


def test_x86_library_on_an_arm_board_is_refused(no_leaked_boards):
    need(PATHS.cpp_ready("armhf"), "the armhf C++ RPC server")
    from splitnet.framework.errors import SplitnetError
    from splitnet.framework.kernels import compile_probe
    from splitnet.framework.targets import host_target
    from splitnet.runtime.inventory_file import resolve_inventory
    from splitnet.runtime.local_cluster import LocalCluster
    from splitnet.runtime.tracker_requests import acquire

    board = resolve_inventory("two-pynq-qemu").boards[0]
    assert board.under_qemu
    x86 = compile_probe(host_target(1), "so")
    with LocalCluster((board,)) as cluster:
        sessions = acquire(cluster.host, cluster.tracker_port, [board], cluster.address_of())
        try:
            with pytest.raises(SplitnetError, match="not built for its CPU") as err:
                sessions[board.name].load(x86)
            assert "pynq0" in str(err.value) and "\n" not in str(err.value)
        finally:
            for session in sessions.values():
                session.close()


def test_killed_qemu_board_is_replaced_by_a_spare(tmp_path, no_leaked_boards):
    need(PATHS.cpp_ready("armhf"), "the armhf C++ RPC server")
    inventory = tmp_path / "spare.yaml"
    board = "  - {{name: pynq{i}, target: pynq-z1, local: true, cores: 1, emulation: qemu}}\n"
    inventory.write_text("policy: spare\nboards:\n" + "".join(board.format(i=i) for i in range(3)))
    _, report = run_json(tmp_path, "--inventory", str(inventory), "--branches", "2", "--chaos", "kill:0@5")
    assert [f["board"] for f in report["faults"]] == ["pynq0"], report["faults"]
    assert report["frames_degraded"] == 0
    check_fidelity(report)


def test_tune_on_qemu_boards_and_the_run_applies_it(tmp_path, no_leaked_boards):
    need(PATHS.cpp_ready("armhf"), "the armhf C++ RPC server")
    out = tmp_path / "tuning"
    proc = splitrun(
        "tune", "--inventory", "two-pynq-qemu", "--model", "resnet_tiny", "--branches", "2",
        "--trials", "4", "--batch", "2", "--out", str(out), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    said = proc.stdout + proc.stderr
    assert "candidates are timed on the boards" in said and "under qemu" in said
    (folder,) = [p for p in out.iterdir() if p.name.endswith("cortex-a9_1core_nhwc")]  # NHWC: the default layout
    assert json.loads((folder / "key.json").read_text())["records"] >= 1
    runs = tmp_path / "run.json"
    proc = splitrun(
        "--inventory", "two-pynq-qemu", "--model", "resnet_tiny", "--branches", "2", "--runs", "2", "--warmup", "1",
        "--json", str(runs), env={"SPLITNET_TUNING_DIR": str(out)}, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(runs.read_text())
    assert report["tuning"][0].startswith("branch0, branch1: tuned: database resnet_tiny"), report["tuning"]
    check_fidelity(report)


def _cmdline(pid: int) -> str:
    import psutil

    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def test_qemu_boards_die_with_a_killed_splitrun():
    """SIGKILL splitrun once its qemu boards are up: qemu, tvm_rpc and the Python
    server's popen_worker (started under qemu through the wrapper) are all gone within 5 s."""
    need(PATHS.cpp_ready("armhf"), "the armhf C++ RPC server")
    need(PATHS.python_ready(), "the rpi4 arm64 user space")
    import time

    from conftest import rpc_processes, splitrun_popen

    args = ("--inventory", "pynq-rpi4-qemu", "--model", "resnet_tiny", "--runs", "100000", "--depth", "1")
    with splitrun_popen(*args) as proc:
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and proc.poll() is None:
                if sum("qemu" in _cmdline(p) for p in rpc_processes(owner=proc.pid)) >= 3:  # servers + a worker
                    break
                time.sleep(0.5)
            time.sleep(2.0)  # frames under way
            before = rpc_processes(owner=proc.pid)
            seen = [_cmdline(p) for p in before]
            assert len(before) >= 4 and proc.poll() is None, (seen, proc.poll())
        finally:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 5.0
    while rpc_processes(owner=proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = rpc_processes(owner=proc.pid)
    for pid in left:
        os.kill(pid, 9)
    assert not left, f"still running 5 s after SIGKILL of splitrun: {sorted(left)}"
    print(f"{len(before)} processes ({sum('qemu' in c for c in seen)} under qemu), all gone after SIGKILL")
