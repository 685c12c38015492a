"""A real local TVM RPC tracker and RPC servers, as subprocesses on 127.0.0.1.

A local board may run inside a network namespace (``netns``: its server binds the board's
``host`` there and reaches the tracker through the namespace's link) and under a real CPU
quota (``cpu_quota``, a cgroup). The tracker is either started here or an existing one.

Each process starts in its own session (process group), because killing an rpc_server
leaves its ``popen_worker`` children holding the port and the tracker registration
(../shared/STACK.md): :meth:`LocalCluster.stop` signals the whole group. Every process is
started through :func:`lifeline.spawn`, so it also dies with this process when that is
killed outright (SIGKILL, an OOM kill), with no chance to run ``stop``. Servers are pinned
to one core each where the OS allows and run ``TVM_NUM_THREADS`` = their core count, so an
emulated single-core board behaves like one. ``stop`` runs on exit, on error, on Ctrl-C and
(through the CLI's handler) on SIGTERM; an ``atexit`` hook catches anything else.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..framework.errors import SplitnetError
from . import board_server
from .arm.launch import server_launch
from .arm.paths import ArmPaths, host_cpp_arch
from .cpu_quota import CpuQuota
from .inventory import LOOPBACK, Board
from .lifeline import OWNER_ENV, forget, spawn
from .ports import check_port_free, free_port, free_port_in
from .tracker_requests import tracker_summary

START_TIMEOUT_S = 60.0
QEMU_START_TIMEOUT_S = 180.0  # the Python server under qemu imports TVM in ~10 s when idle
STOP_GRACE_S = 3.0
_LIVE: set[LocalCluster] = set()


@dataclass(frozen=True)
class LocalServer:
    board: Board
    port: int
    core: int | None
    pid: int


def _cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: no pinning
        return []


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


class LocalCluster:
    """``with LocalCluster(boards) as cluster:`` a tracker and one RPC server per board.

    ``host``/``tracker_port`` are the tracker's address; with ``start_tracker=False`` the
    servers register with that existing tracker instead of one started here.
    """

    def __init__(
        self,
        boards: tuple[Board, ...],
        host: str = LOOPBACK,
        tracker_port: int | None = None,
        start_tracker: bool = True,
    ) -> None:
        self.boards = boards
        self.host = host
        self.tracker_port = tracker_port
        self.start_tracker = start_tracker
        self.servers: list[LocalServer] = []
        self._procs: list[subprocess.Popen] = []
        self._server_procs: list[subprocess.Popen] = []
        self._quotas: list[CpuQuota] = []
        self._quota_of: dict[str, CpuQuota] = {}
        self._log_dir = Path(tempfile.mkdtemp(prefix="splitnet-boards-"))
        self._tracker_proc: subprocess.Popen | None = None
        self._stopping = False  # set by stop: nothing is restarted from then on
        self._restart_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> LocalCluster:
        if not self._procs:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        _LIVE.add(self)
        self._stopping = False
        try:
            if self.start_tracker:
                self._start_tracker()
            elif self.tracker_port is None:
                raise ValueError("an existing tracker needs its port")
            cores = _cores()
            for i, board in enumerate(self.boards):
                core = cores[i % len(cores)] if cores else None
                server, proc = self._start_server(board, core)
                self.servers.append(server)
                self._server_procs.append(proc)
            self._wait_registered()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        with self._restart_lock:  # a restart under way finishes first; none starts after
            self._stopping = True
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.05))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group: popen_worker children too
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STOP_GRACE_S)
            forget(proc.pid)
        self._procs.clear()
        self._server_procs.clear()
        for quota in self._quotas:
            quota.remove()
        self._quotas.clear()
        self._quota_of.clear()
        _LIVE.discard(self)
        shutil.rmtree(self._log_dir, ignore_errors=True)

    def server_of(self, board: str) -> LocalServer:
        for server in self.servers:
            if server.board.name == board:
                return server
        raise KeyError(board)

    def kill_board(self, board: str) -> None:
        """SIGKILL a board's server and its workers (chaos testing: a board that dies)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.server_of(board).pid, signal.SIGKILL)

    def pause_board(self, board: str, seconds: float) -> None:
        """SIGSTOP a board's server for ``seconds`` (chaos testing: a board that stalls)."""
        pid = self.server_of(board).pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGSTOP)
        # Resumed by a detached shell, not a thread of this process: a remote object freed while
        # its board is stopped blocks in TVM's decref with the GIL held, so a Python timer here
        # would never run and the stall would last for ever (seen in the chaos soak).
        script = 'sleep "$1"; kill -s CONT -- "-$2" 2>/dev/null'
        subprocess.run(
            ["/bin/sh", "-c", f"({script}) </dev/null >/dev/null 2>&1 &", "stall", f"{seconds:g}", str(pid)],
            check=False,
        )

    # -- the tracker and boards that fail for real (chaos, and getting them back) --------------
    def kill_tracker(self) -> None:
        """SIGKILL the local tracker and its worker (chaos testing: the tracker dies)."""
        if self._tracker_proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._tracker_proc.pid, signal.SIGKILL)

    def tracker_exited(self) -> bool:
        """Whether the tracker started here has died."""
        return self._tracker_proc is not None and self._tracker_proc.poll() is not None and not self._stopping

    def restart_tracker(self) -> bool:
        """Start the local tracker again on its port (servers reconnect to it by themselves)."""
        with self._restart_lock:
            if self._stopping or self._tracker_proc is None or self._tracker_proc.poll() is None:
                return False
            self._end(self._tracker_proc)  # its popen_worker may still hold the port
            self._start_tracker(check_port=False)
            return True

    def restart_board(self, board: str) -> LocalServer | None:
        """Kill a board's server (if it still runs) and start a new one under the same key.

        It takes a free port, so it is a new address: :meth:`address_of` says whose it is.
        """
        with self._restart_lock:
            index = next((i for i, s in enumerate(self.servers) if s.board.name == board), None)
            if self._stopping or index is None:
                return None
            old = self.servers[index]
            self._end(self._server_procs[index])
            server, proc = self._start_server(old.board, old.core)
            self.servers[index], self._server_procs[index] = server, proc
            return server

    def _end(self, proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_GRACE_S)
        forget(proc.pid)
        with contextlib.suppress(ValueError):
            self._procs.remove(proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    # -- processes -------------------------------------------------------------------------
    def _spawn(
        self,
        args: list[str],
        log_name: str,
        env: dict | None = None,
        core: int | None = None,
        netns: str | None = None,
        quota: CpuQuota | None = None,
        command: list[str] | None = None,
        cwd: Path | None = None,
    ):
        """``python -m ARGS`` (or ``command`` as it is), in its own session, logged."""
        log = open(self._log_dir / log_name, "wb")  # noqa: SIM115 (the child owns it)

        def setup() -> None:  # runs in the child before exec: its children inherit all of it
            if core is not None:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(0, {core})
            if quota is not None:
                quota.add(os.getpid())

        prefix = ["ip", "netns", "exec", netns] if netns else []
        proc = spawn(  # its own session, and it dies with this process whatever kills it (lifeline)
            [*prefix, *(command or [sys.executable, "-m", *args])],
            stdout=log,
            cwd=cwd,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {}), OWNER_ENV: str(os.getpid())},
            preexec_fn=setup,
        )
        log.close()
        self._procs.append(proc)
        return proc

    def _start_tracker(self, check_port: bool = True) -> None:
        if self.tracker_port is not None and check_port:
            check_port_free(self.host, self.tracker_port)
        port = self.tracker_port or free_port(self.host)
        proc = self._spawn(
            ["tvm.exec.rpc_tracker", "--host", self.host, "--port", str(port), "--port-end", str(port + 1)],
            "tracker.log",
        )
        self._tracker_proc = proc
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SplitnetError(
                    f"the local RPC tracker did not start on {self.host}:{port} "
                    f"({_log_tail(self._log_dir / 'tracker.log')})",
                    "free the port or let splitrun pick one (no fixed tracker port)",
                )
            with contextlib.suppress(OSError), socket.create_connection((self.host, port), timeout=0.5):
                self.tracker_port = port
                return
            time.sleep(0.1)
        raise SplitnetError(
            f"the local RPC tracker on port {port} did not answer in {START_TIMEOUT_S:.0f} s",
            "check that python -m tvm.exec.rpc_tracker runs on this machine",
        )

    def _start_server(self, board: Board, core: int | None) -> tuple[LocalServer, subprocess.Popen]:
        port = free_port(board.host) if board.netns is None else free_port_in(board.netns, board.host)
        quota = self._quota_of.get(board.name)  # a restarted board keeps its own
        if quota is None and board.cpu_quota is not None:
            quota = self._quota_of[board.name] = CpuQuota(board.name, board.cpu_quota)
            self._quotas.append(quota)
        kind = self._server_kind(board)
        if kind is not None:
            workdir = self._log_dir / f"{board.name}-work-{port}"  # its own: tvm_rpc keeps uploads there
            workdir.mkdir(parents=True, exist_ok=True)
            tracker = f"{self.host}:{self.tracker_port}"
            launch = server_launch(kind, ArmPaths.default(), board.host, port, tracker, board.key, board.cores, workdir)
            proc = self._spawn(
                [],
                f"{board.name}.log",
                env=launch.env,
                core=core,
                netns=board.netns,
                quota=quota,
                command=launch.argv,
                cwd=launch.cwd,
            )
            return LocalServer(board=board, port=port, core=core, pid=proc.pid), proc
        args = [  # TVM's Python server, with the board's end of the frame channel (board_server)
            "--host",
            board.host,
            "--port",
            str(port),
            "--port-end",
            str(port + 1),
            "--tracker",
            f"{self.host}:{self.tracker_port}",
            "--key",
            board.key,
        ]
        env = {"TVM_NUM_THREADS": str(board.cores), "OMP_NUM_THREADS": str(board.cores)}
        # -P: the script's folder (splitnet/runtime) stays off sys.path, so none of its files shadow a module
        command = [sys.executable, "-P", str(Path(board_server.__file__)), *args]
        proc = self._spawn([], f"{board.name}.log", env=env, core=core, netns=board.netns, quota=quota, command=command)
        return LocalServer(board=board, port=port, core=core, pid=proc.pid), proc

    def _server_kind(self, board: Board) -> str | None:
        """The built server this board runs (:mod:`arm.launch`), or None for TVM's Python one.

        ``emulation: qemu`` or ``server: cpp`` without the set-up for it is one line saying
        which ``splitrun setup arm`` builds it.
        """
        paths = ArmPaths.default()
        if board.under_qemu or board.wanted_emulation == "qemu":
            if board.qemu_server is None:
                raise SplitnetError(
                    f"board {board.name} asks for emulation: qemu, but the ARM set-up for its target is absent "
                    f"(looked in {paths.root})",
                    "run splitrun setup arm (as root), or set emulation: auto",
                )
            return board.qemu_server
        if board.host_server is None:
            return None
        arch = board.host_server.removeprefix("cpp-")
        if arch != host_cpp_arch() or not paths.cpp_ready(arch):
            raise SplitnetError(
                f"board {board.name} asks for server: cpp, but no C++ RPC server for this host ({arch}) "
                f"is built (looked in {paths.root})",
                f"run splitrun setup arm --cpp {arch}, or set server: python"
                if arch == host_cpp_arch()
                else "set server: python (the C++ server is built for x86_64 hosts only)",
            )
        return board.host_server

    def _wait_registered(self) -> None:
        expected = {(s.board.host, s.port) for s in self.servers}
        qemu = any(s.board.under_qemu for s in self.servers)
        timeout = QEMU_START_TIMEOUT_S if qemu else START_TIMEOUT_S
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for server, proc in zip(self.servers, self._server_procs, strict=True):
                if proc.poll() is not None:
                    raise SplitnetError(
                        f"local board {server.board.name} (RPC server on port {server.port}) exited: "
                        f"{_log_tail(self._log_dir / (server.board.name + '.log'))}",
                        f"read its log, {self._log_dir / (server.board.name + '.log')}, for why its server exited",
                    )
            if expected <= self.registered():
                return
            time.sleep(0.2)
        raise SplitnetError(
            f"local boards did not register with the tracker in {timeout:.0f} s",
            f"run python -m tvm.exec.query_rpc_tracker --host {self.host} --port {self.tracker_port}",
        )

    def registered(self) -> set[tuple[str, int]]:
        """(host, port) of every server the tracker knows."""
        try:
            summary = tracker_summary(self.host, self.tracker_port)
        except SplitnetError:
            return set()
        return {(info["addr"][0], int(info["addr"][1])) for info in summary.get("server_info", [])}

    def address_of(self) -> dict[tuple[str, int], str]:
        """Board name by server address, so sessions can be matched to placed boards."""
        return {(s.board.host, s.port): s.board.name for s in self.servers}


@atexit.register
def _stop_all() -> None:
    for cluster in list(_LIVE):
        cluster.stop()
