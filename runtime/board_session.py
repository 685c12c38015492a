"""A held session on a named board, and the compiled parts loaded on it.

Sessions are requested through the tracker by :mod:`tracker_requests`. A session goes back
to the tracker only when every object holding it is gone, the remote Device included
(../shared/STACK.md), so :meth:`BoardSession.close` drops them all.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax, rpc

from ..framework.artifact import CompiledArtifact, to_tensors, wire_array
from .board_server import call_header
from .frame_channel import FrameChannel, open_channel
from .guard import Skipped, submit
from .inventory import Board
from .load_refusal import refusal

TAKEN_KEPT = 256  # message numbers remembered as taken: far more than frames in flight
RAN_KEPT = 4096  # a part's latest on-board compute times kept (a served model runs for ever)


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
        at its position is not sent again. Only the array that was sent last is compared
        (values too, since a caller may refill its buffer): comparing every frame with the
        one before cost the host 150 KB of comparisons per board and frame, mostly to find
        them different.
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
            for i, given in enumerate(inputs):
                x = wire_array(given)  # uint8 frames stay uint8: 4x fewer bytes to send
                key = (i, x.shape, x.dtype.str)
                last = self._sent.get(key)
                same = last is not None and last[2] is given and np.array_equal(last[1], x)
                seqs.append(last[0] if same else self._send(key, x, given))
        return seqs

    def _send(self, key: tuple, x: np.ndarray, given: np.ndarray) -> int:
        """Queue ``x`` (the caller's ``given``) on the channel as the input at ``key`` (the
        caller holds ``_send_lock``)."""
        x = np.array(x, copy=True)  # the sender reads it later: never the caller's buffer
        seq = self._channel.send(x)
        self._sent[key] = (seq, x, given)
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

    def call(self, function, module, name: str, inputs, dev, seqs: list[int], rest, output_bytes: int):
        """One round trip (the caller holds ``lock``): the board takes the inputs' messages in,
        calls ``module``'s ``name`` on the buffers and ``rest``, and returns its output's bytes.
        Returns ``(answer, header)``: the header is ``(ns taking frames in, ns the part ran or
        None)``, or None when the answer is not an output of ``output_bytes`` after a header."""
        flat = [value for pair in self._buffers(inputs, dev, seqs) for value in pair]
        raw = function(module, name, len(inputs), *flat, *rest)
        header = call_header(raw, output_bytes)
        if header is not None:
            self.copy_s += header[0] / 1e9  # the board's own count: no round trip in it
        return raw, header

    def _buffers(self, inputs: tuple[np.ndarray, ...], dev, seqs: list[int] | None):
        """For each input, its buffer on the board and the message to fill it from (-1: none, the
        buffer holds the input already or was filled through RPC here). Recorded as taken at
        once: the board takes a message first thing, so a call that fails has taken it."""
        for i, given in enumerate(inputs):
            x = wire_array(given)
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
                            seq = self._send(key, x, given)
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
        # (shape, dtype, bytes) of the output, from the first call
        self._output: tuple[tuple[int, ...], np.dtype, int] | None = None
        # Seconds the part ran on the board, per one-round-trip call, from the board's own clock
        # (servers from before that count send none): its compute at the moment it is called.
        self.ran_s: deque[float] = deque(maxlen=RAN_KEPT)

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
            shape, dtype, size = self._output
            raw, header = self.owner.call(function, self._vm.module, "main", inputs, self._dev, seqs, self._bound, size)
            if header is None:
                raise RuntimeError(f"{self.board} answered {len(raw)} bytes, not a {dtype} {shape} tensor")
            if header[1] is not None:
                self.ran_s.append(header[1] / 1e9)
            return np.frombuffer(raw, dtype=dtype, offset=len(raw) - size).reshape(shape).copy()
        out = self._main(*self.owner.staged(inputs, self._dev, seqs), *self._bound)
        if isinstance(out, tvm.runtime.Tensor):
            dtype = np.dtype(str(out.dtype))
            self._output = (tuple(out.shape), dtype, int(np.prod(out.shape)) * dtype.itemsize)
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
