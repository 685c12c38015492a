"""Shared fixtures: one compile cache per test session, the tiny model, leak checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import psutil
import pytest

from splitnet.runtime.local_cluster import OWNER_ENV

ATOL_FP32 = 1e-4  # compiled or remote vs MXNet (the product's own fidelity tolerance)
ATOL_N1 = 1e-5  # N=1 split vs the unsplit reference


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/splitnet."""
    path = tmp_path_factory.mktemp("splitnet-cache")
    os.environ["SPLITNET_CACHE"] = str(path)
    yield path


@pytest.fixture(autouse=True)
def _host_stand_ins(request, monkeypatch):
    """Local ARM boards stay host stand-ins outside tests marked ``arm``.

    Once ``splitrun setup arm`` has run, ``emulation: auto`` boards run real ARM servers under
    qemu (12-16x slower, one session at a time for the C++ server); every other test was
    written for, and is timed against, the host stand-in.
    """
    if request.node.get_closest_marker("arm") is None and "SPLITNET_EMULATION" not in os.environ:
        monkeypatch.setenv("SPLITNET_EMULATION", "host")


@pytest.fixture(scope="session")
def tiny_reference():
    from splitnet.zoo import load_reference

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_reference("resnet_tiny")


@pytest.fixture(scope="session")
def tiny_graph(tiny_reference):
    from splitnet.partitioners import graph_from_block

    return graph_from_block(tiny_reference.block, tiny_reference.spec.input_shape)


def splitrun_popen(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """``splitrun ARGS`` as a user runs it, in a subprocess with piped text output."""
    return subprocess.Popen(
        [sys.executable, "-m", "splitnet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        **kwargs,
    )


def splitrun(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``splitrun ARGS`` run to completion (killed after ``timeout`` s)."""
    with splitrun_popen(*args, env=env) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def splitrun_json(
    tmp_path, *args: str, expect: int | None = 0, timeout: float = 300
) -> tuple[dict, subprocess.CompletedProcess]:
    """``splitrun ARGS --json FILE``: the report it wrote, and the finished process.

    Checks the exit code (unless ``expect`` is None) and that nothing printed a traceback:
    every run in these tests, failing or not, must end in a one-line error at worst.
    """
    report = tmp_path / "r.json"
    result = splitrun(*args, "--json", str(report), timeout=timeout)
    if expect is not None:
        assert result.returncode == expect, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(report.read_text()), result


def inventory_board(line: str):
    """The board of a one-board inventory whose fields are ``line`` (``target: pynq-z1, local: true``)."""
    from splitnet.runtime.inventory_file import parse_text

    return parse_text(f"boards:\n  - {{name: b0, {line}}}\n", "inv.yaml").boards[0]


def random_input(shape, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).uniform(-1, 1, size=shape).astype(np.float32)


def rpc_processes(owner: int | None = None) -> set[int]:
    """PIDs of RPC trackers, servers and workers started by process ``owner`` (default: us).

    LocalCluster marks what it starts with SPLITNET_OWNER, and children inherit it, so this
    finds orphaned popen_workers too, and ignores boards other programs run on this machine.
    """
    owner = os.getpid() if owner is None else owner
    found = set()
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get(OWNER_ENV) == str(owner):
                found.add(proc.info["pid"])
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


@pytest.fixture
def no_leaked_boards():
    """Fails the test if it leaves any RPC process of ours behind."""
    yield
    leaked = rpc_processes()
    assert not leaked, f"RPC processes left running: {sorted(leaked)}"


def need_cpp() -> None:
    """Skip (fail under SPLITNET_REQUIRE_ARM) unless the C++ RPC server for this host is built."""
    from splitnet.runtime.arm.paths import ArmPaths

    if ArmPaths.default().host_cpp_ready():
        return
    message = f"the x86_64 C++ RPC server is not built in {ArmPaths.default().root} (splitrun setup arm --cpp x86_64)"
    if os.environ.get("SPLITNET_REQUIRE_ARM"):
        pytest.fail(message)
    pytest.skip(message)
