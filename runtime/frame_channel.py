"""The host's end of the frame channel: frames travel to a board while it computes.

Through TVM RPC a frame costs the host and the board about 10 ns of CPU a byte each, and it
can only move when the board's session is free, so every frame waits for the one before
(:mod:`board_server` says how the channel avoids both). Here each board session gets one TCP
connection and one sender thread: :meth:`FrameChannel.send` returns a frame's sequence
number at once, and the frame reaches the board while it still computes. Where the kernel
takes the whole message at once (its socket buffer has room: the usual case), ``send``
writes it itself, without waking the sender; else the sender writes what is left with
``sendall``, blocking until the board reads, which it does only when a call asks for the
frame: the caller must not wait for that itself. :meth:`FrameChannel.recv` is then one
short RPC call that puts the frame in the board's input tensor. Where the board's server
has ``splitnet.channel.call`` (:attr:`FrameChannel.call`), taking the frame in, running the
part and sending its output back are one RPC round trip instead of four (:mod:`board_server`
says why that matters).

A board whose server has no channel (an older ``tvm_rpc``, a Python server started by hand)
is sent frames through RPC as before: :func:`open_channel` returns None. ``SPLITNET_CHANNEL``
compares the paths: ``off`` sends every board its frames through RPC, ``frames`` sends them
on the channel but makes the call, the output's copy and its free separate round trips (as
before ``splitnet.channel.call``), and ``on``, the default, does both. When the connection breaks, the
sender closes it: the board's ``recv`` then fails at once, and the board fails as it would
when its session breaks (the recovery policy takes it from there).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import socket
import threading

import numpy as np

from ..framework.errors import SplitnetError
from .board_server import ACCEPT, CALL, HEADER, MAGIC, OPEN, RECV

ENV = "SPLITNET_CHANNEL"
MODES = ("on", "frames", "off")  # frames and one call per visit; frames only; every frame through RPC
CONNECT_TIMEOUT_S = 10.0


def mode() -> str:
    """``SPLITNET_CHANNEL``: one of :data:`MODES` (``0``, ``no`` and ``false`` read as ``off``)."""
    value = os.environ.get(ENV, "on").strip().lower()
    value = "off" if value in ("0", "no", "false") else "on" if value in ("1", "yes", "true", "") else value
    if value not in MODES:
        raise SplitnetError(f"{ENV}={value!r} is not a frame path", f"set it to one of {', '.join(MODES)}")
    return value


def enabled() -> bool:
    return mode() != "off"


class FrameChannel:
    """One board session's channel: frames queued here reach the board in order."""

    def __init__(self, sock: socket.socket, recv, call=None) -> None:
        self._sock = sock
        self._recv = recv  # the board's splitnet.channel.recv, looked up once
        self.call = call  # its splitnet.channel.call, or None: calls and outputs are separate round trips
        self._seq = itertools.count()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._order = threading.Lock()  # a number and its place in the queue are taken together
        self.broken: str | None = None  # why the connection failed, once it has
        self._pending = 0  # messages queued or being written
        self._sender = threading.Thread(target=self._send_loop, name="splitnet-frames", daemon=True)
        self._sender.start()

    def send(self, array: np.ndarray) -> int:
        """Send ``array`` (the caller must not change it afterwards); its sequence number.

        Written here when nothing is queued before it and the kernel takes all of it without
        blocking; what the kernel does not take is queued for the sender (in order)."""
        array = np.ascontiguousarray(array)
        with self._order:
            seq = next(self._seq)
            sent = 0
            if self._pending == 0 and self.broken is None:
                sent = self._send_now(seq, array)
                if sent < 0:
                    return seq
            self._pending += 1
            self._queue.put((seq, array, sent))
        return seq

    def _send_now(self, seq: int, array: np.ndarray) -> int:
        """As much of the message as the kernel takes without blocking: -1 when all of it was
        (or the connection broke), else the bytes written (the caller holds ``_order``)."""
        parts = _parts(seq, array, 0)
        try:
            sent = self._sock.sendmsg(parts, (), socket.MSG_DONTWAIT)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self._break(exc)
            return -1
        return -1 if sent == sum(len(p) for p in parts) else sent

    @property
    def pending(self) -> int:
        """Messages not yet handed to the kernel (those still queued or being written)."""
        return self._pending

    def recv(self, tensor, seq: int) -> None:
        """Fill the board's ``tensor`` with message ``seq`` (the caller holds the session)."""
        self._recv(tensor, seq)

    def _send_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            seq, array, sent = item
            try:
                if self.broken:
                    continue  # the board's recv fails on the closed socket; nothing to send to
                for part in _parts(seq, array, sent):
                    self._sock.sendall(part)
            except OSError as exc:
                self._break(exc)
            finally:
                with self._order:
                    self._pending -= 1

    def _break(self, exc: OSError) -> None:
        self.broken = str(exc) or type(exc).__name__
        self._shut()

    def _shut(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def close(self) -> None:
        """Stop the sender and close the connection (the board's session may be gone already)."""
        self._queue.put(None)
        if self.broken is None:
            self.broken = "closed"
            self._shut()


def _parts(seq: int, array: np.ndarray, skip: int) -> list[memoryview]:
    """Message ``seq`` (its header, then the array's bytes) less its first ``skip`` bytes."""
    header = memoryview(HEADER.pack(seq, array.nbytes))
    body = memoryview(array).cast("B")
    if skip < len(header):
        return [header[skip:], body]
    return [body[skip - len(header) :]]


def open_channel(session, host: str) -> FrameChannel | None:
    """A channel to the board behind ``session`` (reached at ``host``), or None when its server
    has no channel or the channel is off. The caller holds the session."""
    if not enabled():
        return None
    try:
        listen = session.get_function(OPEN)
    except AttributeError:  # a server without the channel: frames go through RPC
        return None
    port = int(listen(host))
    sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)  # the sender blocks while the board computes; its session has deadlines
        sock.sendall(MAGIC)
        session.get_function(ACCEPT)()
        call = None
        if mode() == "on":
            try:
                call = session.get_function(CALL)
            except AttributeError:  # a server from before the call: the frames still use the channel
                call = None
        return FrameChannel(sock, session.get_function(RECV), call)
    except BaseException:
        sock.close()
        raise
