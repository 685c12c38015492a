"""Children die with their parent: no tracker, RPC server or worker outlives the process that started it.

``splitrun`` stops its boards on exit, on error, on Ctrl-C and on SIGTERM, but a SIGKILL, an
OOM kill or a closed terminal gives it no chance to: the tracker, the servers and their
``popen_worker`` children (../shared/STACK.md) went on running, holding ports and pinned
cores. Two mechanisms close that hole, one for each generation:

* **Children** (what :func:`spawn` starts: trackers, servers, qemu boards) get
  ``PR_SET_PDEATHSIG`` = SIGKILL before they exec, so the kernel kills them the moment their
  parent goes, whatever killed it. The kernel ties that signal to the *thread* that forked,
  not the process, so every child is forked from one thread that lives as long as the
  process (a child started from a recovery thread that then ends would die with it).
* **Grandchildren** (TVM's ``popen_worker`` and the session processes it forks) are not
  covered by that: the signal is not inherited across fork. A *keeper* watches for them: one
  small process per parent, started with the first child, in its own session (a terminal's
  SIGHUP or Ctrl-C does not reach it), reading a pipe that only the parent can write to. When
  the parent dies, by any signal, the kernel closes the pipe; the keeper then SIGKILLs every
  process group the parent registered (each child leads its own, and its descendants stay in
  it) and every process that carries the parent's owner marker (``SPLITNET_OWNER``, inherited
  by every descendant), and exits. On a clean exit it finds nothing left and exits too.

The keeper is this file run as a script (``python lifeline.py --watch PID``): it imports only
the standard library, so it starts in milliseconds and holds no TVM state.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

OWNER_ENV = "SPLITNET_OWNER"  # set on every process splitrun starts; its descendants inherit it
PR_SET_PDEATHSIG = 1
POLL_S = 0.5  # the keeper's check of its parent, besides the pipe

_libc = None
with contextlib.suppress(OSError):  # loaded here, in the parent: a child between fork and exec must not dlopen
    _libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(parent: int) -> None:
    """In a child between fork and exec: ask the kernel for SIGKILL when the forking thread ends.

    ``parent`` is the pid the child was forked from; if it is gone already (it died between
    the fork and here), the signal would never come, so the child ends itself.
    """
    if _libc is None:
        return
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


class _Spawner:
    """One long-lived thread that forks every child, so their parent-death signal means the process."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="splitnet-lifeline", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            fn, future = self._tasks.get()
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 (handed back to the caller)
                future.set_exception(exc)

    def run(self, fn: Callable[[], subprocess.Popen]) -> subprocess.Popen:
        if threading.current_thread() is self._thread:
            return fn()
        future: Future = Future()
        self._tasks.put((fn, future))
        return future.result()


class _Keeper:
    """The parent side of the keeper process: tells it which process groups to kill if we die."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen | None:
        env = {k: v for k, v in os.environ.items() if k != OWNER_ENV}  # it is not one of the boards
        try:
            return subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), "--watch", str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        except OSError:  # no keeper: children still die with us (PDEATHSIG), grandchildren may not
            return None

    def tell(self, line: str) -> None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            if self._proc is None:
                return
            with contextlib.suppress(OSError, ValueError):
                self._proc.stdin.write(f"{line}\n".encode())
                self._proc.stdin.flush()


_SPAWNER: _Spawner | None = None
_KEEPER = _Keeper()
_SETUP_LOCK = threading.Lock()


def spawn(args: list[str], preexec_fn: Callable[[], None] | None = None, **popen_kwargs) -> subprocess.Popen:
    """``subprocess.Popen(args, ...)`` for a child that must not outlive this process.

    The child leads a new session (its process group holds its descendants), gets the
    parent-death signal, and its group is registered with the keeper; ``preexec_fn`` runs in
    the child first. Call :func:`forget` once the group has been stopped.
    """
    global _SPAWNER
    with _SETUP_LOCK:
        if _SPAWNER is None:
            _SPAWNER = _Spawner()
    parent = os.getpid()

    def setup() -> None:
        if preexec_fn is not None:
            preexec_fn()
        die_with_parent(parent)

    proc = _SPAWNER.run(lambda: subprocess.Popen(args, preexec_fn=setup, start_new_session=True, **popen_kwargs))
    _KEEPER.tell(f"+{proc.pid}")
    return proc


def forget(pgid: int) -> None:
    """The group ``pgid`` was stopped: the keeper must not signal it (the id may be reused)."""
    _KEEPER.tell(f"-{pgid}")


# -- the keeper process (standard library only) -----------------------------------------------
def _marked(owner: int) -> list[int]:
    """Pids whose environment carries ``OWNER_ENV=owner`` (read from /proc)."""
    needle = f"{OWNER_ENV}={owner}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry}/environ", "rb") as f:
            if needle in f.read().split(b"\0"):
                found.append(int(entry))
    return found


def _kill_all(owner: int, groups: set[int]) -> None:
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    for _ in range(3):  # a process forked while we swept is caught the next time round
        pids = [pid for pid in _marked(owner) if pid != os.getpid()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _watch(owner: int) -> None:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)  # only the parent's death ends the keeper
    import select

    groups: set[int] = set()
    stdin = sys.stdin.buffer.raw
    pending = b""
    while True:
        ready, _, _ = select.select([stdin], [], [], POLL_S)
        if not ready:
            if os.getppid() != owner:  # reparented: the parent is gone even if the pipe is not closed
                break
            continue
        chunk = os.read(stdin.fileno(), 4096)
        if not chunk:  # the parent closed the pipe: it exited or was killed
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                pgid = int(line[1:])
                (groups.add if line.startswith(b"+") else groups.discard)(pgid)
    _kill_all(owner, groups)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--watch":
        _watch(int(sys.argv[2]))
