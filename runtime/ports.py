"""Free ports for local trackers and servers: on this host, or inside a board's network namespace."""

from __future__ import annotations

import socket
import subprocess
import sys

from ..framework.errors import SplitnetError
from .inventory import LOOPBACK


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port_free(host: str, port: int) -> None:
    """A fixed tracker port must be free: otherwise servers would register with a stranger."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise SplitnetError(
                f"the local RPC tracker did not start on {host}:{port}: the port is in use ({exc.strerror or exc})",
                "free the port, or remove tracker.port to let splitrun pick a free one",
            ) from None


def free_port_in(netns: str, host: str) -> int:
    """A free port on ``host`` inside network namespace ``netns`` (asked from inside it)."""
    code = f"import socket; s = socket.socket(); s.bind(({host!r}, 0)); print(s.getsockname()[1])"
    try:
        out = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise SplitnetError(
            f"cannot use network namespace {netns!r} with address {host} ({' '.join(detail.split())[:160]})",
            f"create it first (ip netns add {netns}) and give it that address, or drop netns from the board",
        ) from None
    return int(out.stdout.strip())
