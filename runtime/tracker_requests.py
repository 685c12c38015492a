"""Sessions requested through the TVM RPC tracker, each tied to the board that answered.

``TrackerSession.request`` hides which server answered; placement needs to know, so
:func:`request_session` speaks the same tracker protocol and keeps the server's address,
and :func:`acquire` keeps requesting until it holds exactly the boards it was asked for.
"""

from __future__ import annotations

import gc
import socket
import struct

from tvm import rpc
from tvm.rpc import base

from ..framework.errors import SplitnetError
from .board_session import BoardSession
from .inventory import Board

SESSION_TIMEOUT_S = 0  # the server keeps a session while we hold it; the runtime closes it
REQUEST_TIMEOUT_S = 60.0


def query_hint(host: str, port: int) -> str:
    return f"run python -m tvm.exec.query_rpc_tracker --host {host} --port {port}"


def _tracker_socket(host: str, port: int, timeout: float) -> socket.socket:
    """A connected socket that has passed the tracker handshake (so it is a TVM tracker)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise SplitnetError(
            f"cannot reach the RPC tracker at {host}:{port} ({exc.strerror or exc})", query_hint(host, port)
        ) from None
    try:
        sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
        if struct.unpack("<i", base.recvall(sock, 4))[0] != base.RPC_TRACKER_MAGIC:
            raise SplitnetError(f"{host}:{port} is not a TVM RPC tracker", "check the tracker host and port")
    except (OSError, RuntimeError):  # a timeout, a reset, or a peer that closed mid-handshake
        sock.close()
        raise SplitnetError(
            f"{host}:{port} did not answer as a TVM RPC tracker within {timeout:.0f} s", query_hint(host, port)
        ) from None
    except BaseException:
        sock.close()
        raise
    return sock


def tracker_summary(host: str, port: int, timeout: float = 5.0) -> dict:
    """The tracker's summary (``queue_info``, ``server_info``); never blocks past ``timeout``."""
    sock = _tracker_socket(host, port, timeout)
    try:
        base.sendjson(sock, [base.TrackerCode.SUMMARY])
        value = base.recvjson(sock)
    except (OSError, RuntimeError):
        raise SplitnetError(f"the RPC tracker at {host}:{port} did not answer", query_hint(host, port)) from None
    finally:
        sock.close()
    if value[0] != base.TrackerCode.SUCCESS:
        raise SplitnetError(f"the RPC tracker at {host}:{port} refused a summary: {value}", query_hint(host, port))
    return value[1]


def request_session(
    host: str, port: int, key: str, timeout: float = REQUEST_TIMEOUT_S
) -> tuple[tuple[str, int], rpc.RPCSession]:
    """One session on any free server under ``key``; returns (server address, session)."""
    sock = _tracker_socket(host, port, timeout)
    try:
        base.sendjson(sock, [base.TrackerCode.REQUEST, key, "", 1])
        value = base.recvjson(sock)
    except TimeoutError:
        raise SplitnetError(
            f"no free board with key {key!r} at the tracker {host}:{port} after {timeout:.0f} s", query_hint(host, port)
        ) from None
    finally:
        sock.close()
    if value[0] != base.TrackerCode.SUCCESS:
        raise SplitnetError(f"the tracker refused a session for key {key!r}: {value}", query_hint(host, port))
    url, server_port, matchkey = value[1]
    return (url, int(server_port)), rpc.connect(url, server_port, matchkey, SESSION_TIMEOUT_S)


def acquire(
    host: str,
    port: int,
    wanted: list[Board],
    names_by_address: dict[tuple[str, int], str],
    timeout: float = REQUEST_TIMEOUT_S,
) -> dict[str, BoardSession]:
    """Sessions on exactly the ``wanted`` boards (by name), matched by server address.

    Boards under one key are interchangeable to the tracker, so we keep requesting while
    holding what we got: every request then lands on a different server. Sessions on boards
    we did not want are dropped at the end. Boards with no known address take any server.
    """
    held: dict[str, BoardSession] = {}
    extras: list[rpc.RPCSession] = []
    try:
        for key in dict.fromkeys(b.key for b in wanted):
            want = [b for b in wanted if b.key == key]
            by_name = {b.name: b for b in want}
            attempts = 0
            while any(b.name not in held for b in want):
                attempts += 1
                if attempts > 4 * len(names_by_address) + 2 * len(want):
                    missing = [b.name for b in want if b.name not in held]
                    raise SplitnetError(
                        f"boards {', '.join(missing)} never answered a session request", query_hint(host, port)
                    )
                address, session = request_session(host, port, key, timeout)
                name = names_by_address.get(address)
                if name is None:
                    name = next(
                        (b.name for b in want if b.name not in held and b.name not in names_by_address.values()), None
                    )
                if name in by_name and name not in held:
                    held[name] = BoardSession(board=by_name[name], address=address, session=session)
                else:
                    extras.append(session)
    except BaseException:
        for board_session in held.values():
            board_session.close()
        raise
    finally:
        extras.clear()
        gc.collect()
    return held
