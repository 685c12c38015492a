"""A real CPU limit for a local board: a cgroup with a CFS quota (v1 ``cpu`` or v2 ``cpu.max``).

Used to make an emulated board slower the way a slower board is slower: the kernel gives
its processes only ``fraction`` of a core per period, whatever they do, so a half-speed
board takes about twice as long for the same branch. A short period (10 ms) keeps the
throttling smooth at the scale of one branch call. Needs write access to the cgroup
filesystem (root, in practice); without it the board cannot be started and the error
says so.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from ..framework.errors import SplitnetError

PERIOD_US = 10_000
_V1 = Path("/sys/fs/cgroup/cpu")
_V2 = Path("/sys/fs/cgroup")


def _layout() -> tuple[Path, str] | None:
    if (_V1 / "cpu.cfs_quota_us").exists():
        return _V1, "v1"
    if (_V2 / "cgroup.controllers").exists() and "cpu" in (_V2 / "cgroup.controllers").read_text().split():
        return _V2, "v2"
    return None


class CpuQuota:
    """``CpuQuota(name, 0.5)``: create the group; ``add(pid)``; ``remove()`` when done."""

    def __init__(self, name: str, fraction: float) -> None:
        layout = _layout()
        fix = f"run splitrun as root, or remove cpu_quota from board {name}"
        if layout is None:
            raise SplitnetError(f"board {name} has a cpu_quota but this system has no cgroup cpu controller", fix)
        root, self.version = layout
        self.path = root / f"splitnet-{os.getpid()}-{name}"
        quota = max(int(fraction * PERIOD_US), 1000)
        try:
            self.path.mkdir(exist_ok=True)
            if self.version == "v1":
                (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota))
            else:
                (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        except OSError as exc:
            self.remove()
            raise SplitnetError(
                f"cannot set a CPU quota for board {name} in {self.path.parent} ({exc.strerror or exc})", fix
            ) from None

    def add(self, pid: int) -> None:
        """Move ``pid`` into the group (its future children follow)."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        """Delete the group once its processes are gone (waits briefly for them to exit)."""
        deadline = time.monotonic() + 3.0
        while self.path.exists():
            with contextlib.suppress(OSError):
                self.path.rmdir()
                return
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
