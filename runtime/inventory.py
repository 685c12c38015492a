"""Boards and the tracker they register with, as frozen dataclasses.

Inventories come from YAML (:mod:`inventory_file`); the built-in default is the classic
configuration, two PYNQ-Z1 boards under key ``pynq``, emulated by local RPC servers. A local
board whose target cannot run on this host (ARM on x86, say) is *emulated*: its branch is
built for this host's CPU with the board's core count, and every report says so, because
nothing here can execute ARM code. Once ``splitrun setup arm`` has run, a local ARM board
runs *under qemu* instead (``emulation: auto``, the default): a real ARM RPC server, and its
branch built for the board's own target (:mod:`arm`). ``emulation: host`` keeps the stand-in;
``SPLITNET_EMULATION`` (``host`` or ``qemu``) decides for every board left at ``auto``.

A local board that runs on this host's CPU (a stand-in, or a native board) runs TVM's Python
``rpc_server`` unless it says ``server: cpp`` (or ``SPLITNET_SERVER=cpp`` says it for every
board that does not say): then it runs the C++ ``tvm_rpc`` a PYNQ runs, built for this host
with the copy fix of :mod:`arm.rpc_patch` (``splitrun setup arm --cpp x86_64``).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field

from ..framework.targets import describe, host_target, runs_here
from .arm.paths import ArmPaths, arch_of, host_cpp_arch

DEFAULT_KEY = "pynq"
LOOPBACK = "127.0.0.1"
DEFAULT_TRACKER_PORT = 9190  # TVM's usual tracker port, used when only a host is given
EMULATIONS = ("auto", "qemu", "host")
EMULATION_ENV = "SPLITNET_EMULATION"
SERVERS = ("python", "cpp")
SERVER_ENV = "SPLITNET_SERVER"


@dataclass(frozen=True)
class Link:
    """The network path between the host and a board, as declared (or shaped in tests)."""

    bandwidth_mbit: float
    rtt_ms: float

    def transfer_ms(self, nbytes: int) -> float:
        """Predicted time to move ``nbytes`` one way plus one round trip of latency."""
        return self.rtt_ms + nbytes * 8 / (self.bandwidth_mbit * 1e6) * 1000.0


@dataclass(frozen=True)
class Board:
    """One RPC server: a name, the tracker key it registers under, and its TVM target."""

    name: str
    key: str
    target: dict
    cores: int = 1
    speed: float | None = None  # relative; None: measured by `profile` or taken as `cores`
    memory_mb: int | None = None
    link: Link | None = None
    export_format: str = "so"
    local: bool = False  # splitrun starts an RPC server for it on this machine
    cpu_quota: float | None = None  # local boards: fraction of a core (a real cgroup CPU limit)
    host: str = LOOPBACK  # local boards: the address its server listens on
    netns: str | None = None  # local boards: the network namespace its server runs in
    preset: str | None = None
    emulation: str = "auto"  # local ARM boards: auto (qemu when set up), qemu, host (stand-in)
    server: str | None = None  # local boards on this host's CPU: python or cpp (None: SPLITNET_SERVER, else python)

    @property
    def foreign(self) -> bool:
        """A local board whose code cannot run natively on this host."""
        return self.local and not runs_here(self.target)

    @property
    def wanted_emulation(self) -> str:
        if self.emulation == "auto" and os.environ.get(EMULATION_ENV) in ("host", "qemu"):
            return os.environ[EMULATION_ENV]
        return self.emulation

    @property
    def qemu_server(self) -> str | None:
        """The ARM server this board runs under qemu (``cpp-armhf``, ``python-aarch64``), or None."""
        if not self.foreign or self.wanted_emulation == "host" or arch_of(self.target) is None:
            return None
        return ArmPaths.default().server_for(self.target)

    @property
    def wanted_server(self) -> str:
        env = os.environ.get(SERVER_ENV)
        return self.server or (env if env in SERVERS else "python")

    @property
    def host_server(self) -> str | None:
        """``cpp-x86_64`` when this local board runs the C++ server natively, else None (Python)."""
        if not self.local or self.under_qemu or self.wanted_emulation == "qemu" or self.wanted_server != "cpp":
            return None
        return f"cpp-{host_cpp_arch() or platform.machine()}"

    @property
    def server_kind(self) -> str:
        """What the reports say a local board's server is: ``python``, ``cpp-x86_64``, ``cpp-armhf``, ..."""
        return self.qemu_server or self.host_server or "python"

    @property
    def under_qemu(self) -> bool:
        return self.qemu_server is not None

    @property
    def emulated(self) -> bool:
        """A local board standing in for hardware whose code cannot run here (the host stand-in)."""
        return self.foreign and not self.under_qemu

    @property
    def emulation_mode(self) -> str:
        """What the reports say: ``qemu``, ``host`` (stand-in) or ``native``."""
        return "qemu" if self.under_qemu else "host" if self.foreign else "native"

    @property
    def build_target(self) -> dict:
        """The target branches placed here are compiled for."""
        return host_target(self.cores) if self.emulated else self.target

    @property
    def build_format(self) -> str:
        return "so" if self.emulated else self.export_format

    @property
    def relative_speed(self) -> float:
        """Declared speed, else cores times CPU quota (the same per-core speed assumed)."""
        if self.speed is not None:
            return float(self.speed)
        return self.cores * (self.cpu_quota or 1.0)

    def describe(self) -> str:
        what = self.preset or describe(self.target)
        if self.under_qemu:
            return f"{what} ({arch_of(self.target)} under qemu)"
        cpp = ", C++ server" if self.host_server else ""
        if self.emulated:
            return f"{what} (emulated on this host{cpp})"
        return f"{what} (C++ server)" if cpp else what


@dataclass(frozen=True)
class Tracker:
    host: str = LOOPBACK
    port: int | None = None  # None with local: a free port is picked
    local: bool = True  # splitrun starts the tracker itself


@dataclass(frozen=True)
class Inventory:
    tracker: Tracker
    boards: tuple[Board, ...] = field(default_factory=tuple)
    description: str = ""
    source: str = "built-in"
    placement: str | None = None  # the strategy this inventory asks for, if any
    trusted_network: bool = False  # the user's statement that non-loopback RPC peers are trusted
    policy: str | None = None  # the recovery policy this inventory asks for, if any

    def board(self, name: str) -> Board:
        for board in self.boards:
            if board.name == name:
                return board
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.boards)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(b.key for b in self.boards))

    @property
    def local_boards(self) -> tuple[Board, ...]:
        return tuple(b for b in self.boards if b.local)

    @property
    def remote_boards(self) -> tuple[Board, ...]:
        return tuple(b for b in self.boards if not b.local)

    @property
    def emulated(self) -> bool:
        return any(b.emulated for b in self.boards)

    @property
    def under_qemu(self) -> bool:
        return any(b.under_qemu for b in self.boards)
