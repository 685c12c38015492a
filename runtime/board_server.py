"""TVM's Python RPC server, plus the board's end of the frame channel.

A frame sent through TVM 0.27's RPC costs both ends about 10 ns of CPU a byte (its stream
moves arrays one byte, one virtual call, at a time: :mod:`arm.rpc_patch`), and a board's
session does one thing at a time, so a frame can only travel while its board waits. The
frame channel is a plain TCP connection beside the session: the host writes each frame to
it as soon as the frame exists (one ``sendall``, the kernel's copy), while the board is
still computing the frame before, and the board's ``recv`` call then takes it from its
socket with one copy. The RPC session still carries every call, so a board that dies or
stalls is noticed as before.

The board's side is four functions (the C++ server gets the same four from
:mod:`arm.rpc_patch`); a server without them is sent frames through RPC as before:

* ``splitnet.channel.open(host) -> port``: listen on ``host`` (the board's address as the
  host reaches it), on a free port;
* ``splitnet.channel.accept() -> version``: take the host's connection and its hello;
* ``splitnet.channel.recv(tensor, seq) -> nbytes``: fill ``tensor`` with message ``seq``;
* ``splitnet.channel.call(module, name, n, tensor_0, seq_0, ..., rest) -> bytes``: fill each
  of the ``n`` tensors with its message (``seq`` -1: it holds its input already), call the
  module's function ``name`` on the tensors and ``rest``, and return the output's bytes after
  a header (``CALL_HEADER``: the nanoseconds the messages took to take in, then the
  nanoseconds the function ran: the part's compute, timed on the board in the very call the
  host times, so the two are never taken at different moments). That is a frame's
  whole visit to the board in one RPC round trip, where recv, the call, the output's copy and
  its free would be four: each costs the host CPU, which the boards' compute shares when the
  host shares their cores, and each adds to the frame's latency.

A message is a header (sequence number, byte count) and the bytes. Sequence numbers rise in
the order the host sends, but calls may take them in another order (two frames in flight
wait on one board), so messages read past on the way to the one wanted are kept, the last
``STASH`` of them. Each session runs in its own process (the server forks one per
session), so this module's state is one session's.

This file runs on the board as ``python board_server.py ARGS`` (the arguments of ``python -m
tvm.exec.rpc_server``): it imports nothing of splitnet, so it starts as fast as TVM's own.
"""

from __future__ import annotations

import argparse
import socket
import struct
import time

MAGIC = b"SPLTCHN1"  # the host's hello: which protocol it speaks
VERSION = 1
HEADER = struct.Struct("<QQ")  # sequence number, payload bytes
STASH = 64  # messages kept that were read past, by sequence number
ACCEPT_TIMEOUT_S = 30.0
CALL_HEADER = struct.Struct("<QQ")  # before a call's output: ns its messages took to take in, ns the part ran
TOOK_HEADER = struct.Struct("<Q")  # the header of a server from before the part's time was added
OPEN, ACCEPT, RECV = "splitnet.channel.open", "splitnet.channel.accept", "splitnet.channel.recv"
CALL = "splitnet.channel.call"


class _Channel:
    """The board's end of one session's channel."""

    def __init__(self) -> None:
        self.listener: socket.socket | None = None
        self.conn: socket.socket | None = None
        self.stash: dict[int, bytearray] = {}
        self.read_upto = -1  # the last sequence number read from the socket

    def open(self, host: str) -> int:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((host, 0))
        self.listener.listen(1)
        return self.listener.getsockname()[1]

    def accept(self) -> int:
        if self.listener is None:
            raise RuntimeError(f"{ACCEPT} before {OPEN}")
        self.listener.settimeout(ACCEPT_TIMEOUT_S)
        conn, _ = self.listener.accept()
        self.listener.close()
        self.listener = None
        conn.settimeout(None)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = conn
        if bytes(self._read(len(MAGIC))) != MAGIC:
            raise RuntimeError("the frame channel's peer is not a splitnet host")
        return VERSION

    def _read(self, n: int) -> bytearray:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = self.conn.recv_into(view[got:], n - got)
            if k == 0:
                raise RuntimeError("the frame channel closed")
            got += k
        return buf

    def recv(self, tensor, seq: int) -> int:
        import numpy as np  # here, not at start-up: the server's own start stays as fast

        if self.conn is None:
            raise RuntimeError(f"{RECV} before {ACCEPT}")
        data = self.stash.pop(seq, None)
        while data is None:
            if seq <= self.read_upto:
                raise RuntimeError(f"frame channel message {seq} was read and dropped")
            got, nbytes = HEADER.unpack(self._read(HEADER.size))
            payload = self._read(nbytes)
            self.read_upto = got
            if got == seq:
                data = payload
            else:
                self.stash[got] = payload
        for old in [k for k in self.stash if k < seq - STASH]:
            del self.stash[old]
        array = np.frombuffer(data, dtype=str(tensor.dtype))
        if array.size != int(np.prod(tensor.shape)):
            raise RuntimeError(f"frame channel message {seq} has {len(data)} bytes, not a {tensor.shape} tensor")
        tensor.copyfrom(array.reshape(tuple(tensor.shape)))
        return len(data)

    def call(self, module, name: str, n: int, *args) -> bytes:
        start = time.perf_counter_ns()
        for tensor, seq in zip(args[: 2 * n : 2], args[1 : 2 * n : 2], strict=True):
            if seq >= 0:
                self.recv(tensor, seq)
        took = time.perf_counter_ns() - start
        out = module[name](*args[: 2 * n : 2], *args[2 * n :])
        ran = time.perf_counter_ns() - start - took
        if not hasattr(out, "numpy"):
            raise RuntimeError(f"{CALL}: {name} returned {type(out).__name__}, not a tensor")
        return CALL_HEADER.pack(took, ran) + out.numpy().tobytes()


def call_header(raw: bytes, output_bytes: int) -> tuple[int, int | None] | None:
    """(ns taking frames in, ns the part ran, or None from an older server) from the answer of
    a call whose output is ``output_bytes`` long; None when the answer is not that size. The
    header's size tells the two servers apart: boards set up before keep working."""
    size = len(raw) - output_bytes
    if size == CALL_HEADER.size:
        return CALL_HEADER.unpack_from(raw)
    if size == TOOK_HEADER.size:
        return TOOK_HEADER.unpack_from(raw)[0], None
    return None


def register() -> None:
    """Register the channel's functions in this process (its forked sessions inherit them).

    ``rpc.Server`` listens in a fresh worker process, not in the one it was made in, so this
    runs there (:func:`_init_in_server`).
    """
    import tvm_ffi

    channel = _Channel()
    tvm_ffi.register_global_func(OPEN, channel.open, override=True)
    tvm_ffi.register_global_func(ACCEPT, channel.accept, override=True)
    tvm_ffi.register_global_func(RECV, channel.recv, override=True)
    tvm_ffi.register_global_func(CALL, channel.call, override=True)


def _init_in_server(path: str = __file__) -> None:
    """The server's init callback: cloudpickle sends a function of ``__main__`` by value, with
    the globals it names, so this one names none and loads this file in the server by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("splitnet_board_server", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.register()


def main() -> None:
    """``python -m tvm.exec.rpc_server``'s start, with the channel registered in the server."""
    from tvm import rpc

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--port-end", type=int, default=9199)
    parser.add_argument("--tracker", default="")
    parser.add_argument("--key", default="")
    args = parser.parse_args()
    tracker = None
    if args.tracker:
        url, port = args.tracker.rsplit(":", 1)
        tracker = (url, int(port))
    server = rpc.Server(
        args.host, args.port, args.port_end, key=args.key, tracker_addr=tracker, server_init_callback=_init_in_server
    )
    server.proc.join()


if __name__ == "__main__":
    main()
