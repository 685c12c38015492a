"""Sessions on boards, requested through the tracker and tied to a named board.

``TrackerSession.request`` hides which server answered; placement needs to know, so
:func:`request_session` speaks the same tracker protocol and keeps the server's address.
A session goes back to the tracker only when every object holding it is gone, the remote
Device included (../shared/STACK.md), so :meth:`BoardSession.close` drops them all.
"""

from __future__ import annotations

import gc
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax, rpc
from tvm.rpc import base

from ..framework.artifact import CompiledArtifact, to_tensors, wire_array
from ..framework.errors import SplitnetError
from .board_server import CALL_HEADER
from .frame_channel import FrameChannel, open_channel
from .guard import Skipped, submit
from .inventory import Board
from .load_refusal import refusal

SESSION_TIMEOUT_S = 0  # the server keeps a session while we hold it; the runtime closes it
REQUEST_TIMEOUT_S = 60.0
TAKEN_KEPT = 256  # message numbers remembered as taken: far more than frames in flight


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


@dataclass
class BoardSession:
    """A held session on one board; branches placed on it share its lock (one at a time)."""

    board: Board
    address: tuple[str, int]
    session: rpc.RPCSession | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _modules: list[RemoteModule] = field(default_factory=list)
    _libraries: dict[str, object] = field(default_factory=dict)  # remote file name -> loaded library
    _inputs: dict = field(default_factory=dict)  # (index, shape, dtype) -> (tensor on the board, what it holds)
    _echo: object = None  # a cheap remote function, looked up once, that :meth:`ping` calls
    _channel: FrameChannel | None = None  # frames sent beside the session (:mod:`frame_channel`)
    _channel_tried: bool = False
    frame_path: str = "rpc"  # how frames reached this board: "call" or "channel" (beside the session), or "rpc"
    _sent: dict = field(default_factory=dict)  # (index, shape, dtype) -> (sequence number, the array sent)
    _send_lock: threading.Lock = field(default_factory=threading.Lock)
    _taken: set = field(default_factory=set)  # message numbers the board took (recently)
    sent_bytes: int = 0  # input bytes copied to the board (frames; what the wire format saves)
    copies: int = 0
    copy_s: float = 0.0  # seconds the board's session spent taking them in (the part that holds it)

    def send_ahead(self, inputs: tuple[np.ndarray, ...]) -> list[int] | None:
        """Start the inputs towards the board now, before its session is free; their message
        numbers for :meth:`staged`, or None when frames go through RPC.

        Branches placed on one board all read the frame: an input equal to the last one sent
        at its position is not sent again.
        """
        if not self._channel_tried:
            with self.lock:  # the first call opens the channel: a few RPC calls on the session
                if not self._channel_tried:
                    self._channel = self._open_channel()
                    self._channel_tried = True
                    if self._channel is not None:  # "call": the frame, the call and the answer in one round trip
                        self.frame_path = "call" if self._channel.call is not None else "channel"
        if self._channel is None:
            return None
        seqs = []
        with self._send_lock:
            for i, x in enumerate(inputs):
                x = wire_array(x)  # uint8 frames stay uint8: 4x fewer bytes to send
                key = (i, x.shape, x.dtype.str)
                last = self._sent.get(key)
                seqs.append(last[0] if last is not None and np.array_equal(last[1], x) else self._send(key, x))
        return seqs

    def _send(self, key: tuple, x: np.ndarray) -> int:
        """Queue ``x`` on the channel as the input at ``key`` (the caller holds ``_send_lock``)."""
        x = np.array(x, copy=True)  # the sender reads it later: never the caller's buffer
        seq = self._channel.send(x)
        self._sent[key] = (seq, x)
        self.sent_bytes += x.nbytes
        self.copies += 1
        return seq

    def _take(self, seq: int) -> None:
        self._taken.add(seq)
        if len(self._taken) > 2 * TAKEN_KEPT:
            self._taken = {s for s in self._taken if s > seq - TAKEN_KEPT}

    def _open_channel(self) -> FrameChannel | None:
        try:
            return open_channel(self.session, self.address[0])
        except Exception:  # noqa: BLE001 (no channel to this board: its frames go through RPC, as before)
            return None

    def staged(self, inputs: tuple[np.ndarray, ...], dev, seqs: list[int] | None = None) -> list:
        """The inputs as tensors kept on the board (the caller holds ``lock``).

        One buffer per input position and shape, refilled: fresh remote tensors cost an
        allocation and a free round trip each. A buffer that already holds the same values
        is not filled again. With ``seqs`` (from :meth:`send_ahead`) a buffer is filled from
        the channel; a message another call took already is sent again.
        """
        staged = []
        for buffer, seq in self._buffers(inputs, dev, seqs):
            if seq >= 0:
                start = time.perf_counter()
                self._channel.recv(buffer, seq)
                self.copy_s += time.perf_counter() - start
            staged.append(buffer)
        return staged

    def call_function(self, seqs: list[int] | None):
        """The board's ``splitnet.channel.call`` when a call with these ``seqs`` can use it, else None."""
        return self._channel.call if seqs is not None and self._channel is not None else None

    def call(self, function, module, name: str, inputs, dev, seqs: list[int], rest) -> bytes:
        """One round trip (the caller holds ``lock``): the board takes the inputs' messages in,
        calls ``module``'s ``name`` on the buffers and ``rest``, and returns its output's bytes."""
        flat = [value for pair in self._buffers(inputs, dev, seqs) for value in pair]
        raw = function(module, name, len(inputs), *flat, *rest)
        self.copy_s += CALL_HEADER.unpack_from(raw)[0] / 1e9  # the board's own count: no round trip in it
        return raw

    def _buffers(self, inputs: tuple[np.ndarray, ...], dev, seqs: list[int] | None):
        """For each input, its buffer on the board and the message to fill it from (-1: none, the
        buffer holds the input already or was filled through RPC here). Recorded as taken at
        once: the board takes a message first thing, so a call that fails has taken it."""
        for i, x in enumerate(inputs):
            x = wire_array(x)
            key = (i, x.shape, x.dtype.str)
            buffer, held = self._inputs.get(key, (None, None))
            if buffer is None:
                buffer = tvm.runtime.empty(x.shape, str(x.dtype), dev)
            seq = -1
            if seqs is not None:
                if held != ("seq", seqs[i]):
                    seq = seqs[i]
                    if seq in self._taken:  # a message is taken once: one that another call took is sent again
                        with self._send_lock:
                            seq = self._send(key, x)
                    self._take(seq)
                    self._inputs[key] = (buffer, ("seq", seq))
            elif held is None or not isinstance(held, np.ndarray) or not np.array_equal(held, x):
                start = time.perf_counter()
                buffer.copyfrom(x)
                self.copy_s += time.perf_counter() - start
                self.sent_bytes += x.nbytes
                self.copies += 1
                self._inputs[key] = (buffer, x.copy())
            yield buffer, seq

    @property
    def address_text(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def load(self, artifact: CompiledArtifact, bound: tuple[np.ndarray, ...] = ()) -> RemoteModule:
        """Upload the artifact's library and load it as a Relax VM on the board.

        ``bound`` arrays are copied to the board once and passed after the inputs on every
        call (the weights of a coded dense block, say).
        """
        remote_name = f"{artifact.part}-{artifact.key[:12]}{artifact.path.suffix}"
        # Under the session's lock: a repair (a branch copy, a re-encoded head) uploads to a
        # board that other threads are calling, and one RPC session carries one call at a time.
        with self.lock:
            # A library is uploaded and loaded once per session: overwriting a file the server has
            # loaded crashes it (the coded head loads one matvec library per dense layer).
            lib = self._libraries.get(remote_name)
            if lib is None:
                # TVM's upload(path) leaves its file open (a ResourceWarning whose traceback would pin
                # this session); handing it the bytes avoids that.
                self.session.upload(bytearray(artifact.path.read_bytes()), target=remote_name)
                try:
                    lib = self._libraries[remote_name] = self.session.load_module(remote_name)
                except Exception as exc:  # a board that refuses the build says why, in one line
                    refused = refusal(self.board, remote_name, exc)
                    if refused is None:
                        raise
                    raise refused from None
            module = RemoteModule(self, lib, artifact, bound)
        self._modules.append(module)
        return module

    def ping(self, timeout: float) -> bool | None:
        """Whether the board answers a round trip: True; False when the session is gone (its
        server died); None when it cannot tell yet (a call is still stuck on it, or no answer
        within ``timeout``: a board that is still stalled)."""
        if self.session is None:
            return False

        def echo() -> bool | None:
            if not self.lock.acquire(blocking=False):  # a call that never returned still holds it
                return None
            try:
                if self._echo is None:
                    self._echo = self.session.get_function("tvm.rpc.server.workpath")
                self._echo("ping")
                return True
            finally:
                self.lock.release()

        future = submit(echo, name="splitnet-ping")
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            return None
        except Exception:  # noqa: BLE001 (a closed socket, a server that went away)
            return False

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._sent.clear()
        self._inputs.clear()
        for module in self._modules:
            module.release()
        self._modules.clear()
        self._libraries.clear()
        self.session = None
        gc.collect()


class RemoteModule:
    """A compiled part loaded on a board: call it like a function on numpy arrays."""

    def __init__(
        self, owner: BoardSession, lib, artifact: CompiledArtifact, bound: tuple[np.ndarray, ...] = ()
    ) -> None:
        self.owner = owner
        self.artifact = artifact
        self._dev = owner.session.cpu(0)
        self._vm = relax.VirtualMachine(lib, self._dev)
        self._main = self._vm["main"]  # looked up once: each lookup is an RPC round trip
        self._bound = to_tensors(bound, self._dev)
        self._output: tuple[tuple[int, ...], np.dtype] | None = None  # (shape, dtype), from the first call

    @property
    def board(self) -> str:
        return self.owner.board.name

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        seqs = self.owner.send_ahead(inputs)  # the inputs travel while the board finishes other work
        with self.owner.lock:
            return self._run(inputs, seqs)

    def call_unless(self, answered: threading.Event, *inputs: np.ndarray) -> np.ndarray:
        """Call, unless ``answered`` is set by the time this board is free (a replica won)."""
        seqs = None if answered.is_set() else self.owner.send_ahead(inputs)
        with self.owner.lock:
            if answered.is_set():
                raise Skipped(self.board)
            out = self._run(inputs, seqs)
        answered.set()
        return out

    def _run(self, inputs: tuple[np.ndarray, ...], seqs: list[int] | None) -> np.ndarray:
        """One call on the board (the caller holds its lock). The first goes the long way, which
        tells the output's shape and type; after it, a board with ``splitnet.channel.call``
        takes the frame in, runs and answers in one round trip."""
        function = self.owner.call_function(seqs)
        if function is not None and self._output is not None:
            raw = self.owner.call(function, self._vm.module, "main", inputs, self._dev, seqs, self._bound)
            shape, dtype = self._output
            out = np.frombuffer(raw, dtype=dtype, offset=CALL_HEADER.size)
            if out.size != int(np.prod(shape)):
                raise RuntimeError(f"{self.board} answered {len(raw)} bytes, not a {dtype} {shape} tensor")
            return out.reshape(shape).copy()
        out = self._main(*self.owner.staged(inputs, self._dev, seqs), *self._bound)
        if isinstance(out, tvm.runtime.Tensor):
            self._output = (tuple(out.shape), np.dtype(str(out.dtype)))
        return out.numpy()

    def fill_bound(self, value: float) -> None:
        """Overwrite the arrays bound on the board with ``value`` (chaos: memory that went bad)."""
        with self.owner.lock:
            for tensor in self._bound:
                tensor.copyfrom(np.full(tensor.shape, value, dtype=tensor.dtype))

    def compute_times(self, *inputs: np.ndarray, repeat: int = 5) -> list[float]:
        """Seconds per call measured on the board itself (no RPC or transfer in it)."""
        with self.owner.lock:
            args = to_tensors(inputs, self._dev)
            self._vm.set_input("main", *args, *self._bound)
            timer = self._vm.time_evaluator("invoke_stateful", self._dev, number=1, repeat=repeat)
            return [float(r) for r in timer("main").results]

    def release(self) -> None:
        self._bound = []
        self._main = None
        self._vm = None
        self._dev = None


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
