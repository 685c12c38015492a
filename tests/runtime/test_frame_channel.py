"""The frame channel: frames travel to a board beside its RPC session, while it computes.

Real boards on 127.0.0.1: TVM's Python server with the channel (``board_server.py``), the
C++ ``tvm_rpc`` with it (where ``splitrun setup arm --cpp x86_64`` built it), and TVM's own
server without it, to which frames still go through RPC.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tvm
from conftest import ATOL_FP32, need_cpp, random_input, splitrun_json

from splitnet.framework.artifact import wire_array
from splitnet.framework.compile import LocalModule, compile_part
from splitnet.framework.errors import SplitnetError
from splitnet.framework.targets import host_target
from splitnet.partitioners import apply_plan, get_partitioner
from splitnet.runtime import Board, LocalCluster, acquire, builtin_inventory, free_port, request_session
from splitnet.runtime.board_server import CALL_HEADER, HEADER, TOOK_HEADER, call_header
from splitnet.runtime.board_session import BoardSession
from splitnet.runtime.fleet import Fleet
from splitnet.runtime.frame_channel import ENV, FrameChannel

pytestmark = pytest.mark.boards

SERVERS = ["python", "cpp"]


def _session(cluster: LocalCluster, board: Board) -> BoardSession:
    return acquire(cluster.host, cluster.tracker_port, [board], cluster.address_of())[board.name]


def _board(server: str) -> Board:
    if server == "cpp":
        need_cpp()
    return Board(name="b0", key="pynq", target={"kind": "llvm"}, local=True, cores=1, server=server)


@pytest.mark.parametrize("server", SERVERS)
def test_messages_taken_out_of_order_are_exact(server, no_leaked_boards):
    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(0, 256, (1, 3, 32, 32), dtype=np.uint8),
        rng.standard_normal((2, 5, 7)).astype(np.float32),
        rng.integers(-(2**40), 2**40, (3, 11), dtype=np.int64),
        rng.integers(0, 256, (1, 3, 224, 224), dtype=np.uint8),  # a whole frame
    ]
    with LocalCluster([_board(server)]) as cluster:
        held = _session(cluster, cluster.boards[0])
        try:
            assert held.send_ahead((arrays[0],)) is not None and held.frame_path == "call"
            channel = held._channel
            seqs = [channel.send(a) for a in arrays[1:]]
            dev = held.session.cpu(0)
            with held.lock:
                for seq, a in reversed(list(zip(seqs, arrays[1:], strict=True))):  # last sent, taken first
                    tensor = tvm.runtime.empty(a.shape, str(a.dtype), dev)
                    channel.recv(tensor, seq)
                    got = tensor.numpy()
                    assert got.dtype == a.dtype and np.array_equal(got, a)
                with pytest.raises(Exception, match="read and dropped"):
                    channel.recv(tvm.runtime.empty(arrays[1].shape, "float32", dev), seqs[0])
        finally:
            held.close()


@pytest.mark.parametrize("server", SERVERS)
def test_a_frame_travels_while_the_board_is_busy_and_a_taken_one_is_sent_again(server, no_leaked_boards):
    a = np.full((1, 3, 64, 64), 7, dtype=np.uint8)
    b = np.arange(3 * 64 * 64, dtype=np.uint32).reshape(1, 3, 64, 64).astype(np.uint8)
    with LocalCluster([_board(server)]) as cluster:
        held = _session(cluster, cluster.boards[0])
        try:
            dev = held.session.cpu(0)
            held.send_ahead((a,))  # opens the channel
            with held.lock:  # the board's session is busy (a call holds it) ...
                first = held.send_ahead((a,))
                again = held.send_ahead((a,))
                assert first == again  # the same frame again is not sent again
                assert held.send_ahead((a.copy(),)) != first  # an equal frame in another array is sent
                refilled = a.copy()
                once = held.send_ahead((refilled,))
                refilled[0, 0, 0, 0] = 8  # a caller that refills its buffer: the new values are sent
                assert held.send_ahead((refilled,)) != once
                later = held.send_ahead((b,))
                deadline = time.monotonic() + 10
                while held._channel.pending and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert held._channel.pending == 0  # ... and the frames went to it all the same
                (buffer,) = held.staged((a,), dev, first)
                assert np.array_equal(buffer.numpy(), a)
                (buffer,) = held.staged((b,), dev, later)
                assert np.array_equal(buffer.numpy(), b)
                # a call that took its numbers before b's, and runs after it: its message was taken
                sent = held.copies
                (buffer,) = held.staged((a,), dev, again)
                assert np.array_equal(buffer.numpy(), a) and held.copies == sent + 1
            assert held.sent_bytes == held.copies * a.nbytes
        finally:
            held.close()


@pytest.mark.parametrize("server", SERVERS)
def test_one_round_trip_a_call_answers_as_the_long_way(server, tiny_reference, tiny_graph, no_leaked_boards):
    """Two branches on one board, both reading each frame: after the first call (the long way,
    which tells the output's shape), each call is one ``splitnet.channel.call``, and only the
    first branch to read a new frame takes a message; every answer matches the part run here."""
    plan = get_partitioner("resnet_v1").plan(tiny_graph, model="resnet_tiny", n=2, widths=None, multiple=8)
    artifacts = [compile_part(b, host_target()) for b in apply_plan(tiny_graph, plan).branches]
    here = [LocalModule(a) for a in artifacts]
    frames = [random_input(tiny_reference.spec.input_shape, seed=seed) for seed in range(3)]
    with LocalCluster([_board(server)]) as cluster:
        held = _session(cluster, cluster.boards[0])
        try:
            modules = [held.load(a) for a in artifacts]
            for module, local in zip(modules, here, strict=True):
                np.testing.assert_allclose(module(frames[0]), local(frames[0]), atol=ATOL_FP32)
            assert held.frame_path == "call"
            taken, call = [], held._channel.call
            # its arguments: module, name, n, then each input's buffer and message number
            held._channel.call = lambda *args: taken.append(args[4]) or call(*args)
            copied = held.copy_s
            walls = {id(m): [] for m in modules}
            for x in frames:
                for module, local in zip(modules, here, strict=True):
                    start = time.perf_counter()
                    got = module(x)
                    walls[id(module)].append(time.perf_counter() - start)
                    np.testing.assert_allclose(got, local(x), atol=ATOL_FP32)
            # frame 0 is on the board already; frames 1 and 2 are taken in by the first branch's call
            assert taken[0] == taken[1] == taken[3] == taken[5] == -1 and len(taken) == 6
            assert 0 <= taken[2] < taken[4] and held.copy_s > copied
            for module in modules:  # each call says how long the part ran, by the board's clock
                ran = list(module.ran_s)
                assert len(ran) == len(frames)  # not the first call: the long way counts none
                assert all(0 < r < wall for r, wall in zip(ran, walls[id(module)], strict=True))
        finally:
            held.close()


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the channel closed early"
        data += chunk
    return data


@pytest.mark.parametrize("sndbuf", [None, 4096])
def test_messages_the_kernel_cannot_take_at_once_go_out_whole_and_in_order(sndbuf):
    """``send`` writes what the kernel takes and queues the rest for the sender; the peer
    reads every message whole, in order, whichever path wrote it (a small send buffer and a
    peer that reads late force the queue)."""
    host, board = socket.socketpair()
    if sndbuf:
        host.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    channel = FrameChannel(host, recv=None)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, size=(1, 3, 64, 64 * (1 + k % 3)), dtype=np.uint8) for k in range(12)]
    try:
        seqs = [channel.send(f) for f in frames]  # nobody reads yet
        assert seqs == list(range(len(frames)))
        for seq, frame in zip(seqs, frames, strict=True):
            got_seq, nbytes = HEADER.unpack(_read(board, HEADER.size))
            assert (got_seq, nbytes) == (seq, frame.nbytes)
            assert _read(board, nbytes) == frame.tobytes()
        deadline = time.monotonic() + 10
        while channel.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        assert channel.pending == 0 and channel.broken is None
    finally:
        channel.close()
        board.close()


def test_a_send_to_a_closed_peer_breaks_the_channel_without_raising():
    host, board = socket.socketpair()
    board.close()
    channel = FrameChannel(host, recv=None)
    channel.send(np.zeros((1, 3, 8, 8), dtype=np.uint8))
    deadline = time.monotonic() + 10
    while channel.broken is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert channel.broken  # the board's recv then fails at once, and recovery takes it
    channel.close()


def test_a_calls_header_tells_old_and_new_servers_apart():
    out = np.arange(6, dtype=np.float32).tobytes()
    assert call_header(CALL_HEADER.pack(7, 9) + out, len(out)) == (7, 9)
    assert call_header(TOOK_HEADER.pack(7) + out, len(out)) == (7, None)  # a board set up before
    assert call_header(out, len(out)) is None and call_header(CALL_HEADER.pack(7, 9) + out, len(out) - 4) is None


def test_a_bad_channel_mode_fails_before_boards_start(monkeypatch):
    monkeypatch.setenv(ENV, "sideways")
    with pytest.raises(SplitnetError, match=f"{ENV}='sideways' is not a frame path") as err:
        Fleet(builtin_inventory())
    assert "on, frames, off" in err.value.one_line()


def test_channel_off_and_a_server_without_it_send_frames_through_rpc(monkeypatch, no_leaked_boards):
    x = wire_array(np.ones((1, 3, 16, 16), dtype=np.uint8))
    for mode, path in (("off", "rpc"), ("frames", "channel")):
        monkeypatch.setenv(ENV, mode)
        with LocalCluster([_board("python")]) as cluster:
            held = _session(cluster, cluster.boards[0])
            try:  # frames: frames on the channel, but the call and its output separate round trips
                assert (held.send_ahead((x,)) is None) == (mode == "off") and held.frame_path == path
                assert held.call_function([0]) is None
            finally:
                held.close()
    monkeypatch.delenv(ENV)
    with LocalCluster([]) as cluster:  # a tracker, and TVM's own server started by hand
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tvm.exec.rpc_server", "--host", "127.0.0.1", "--port", str(port),
             "--port-end", str(port + 1), "--tracker", f"{cluster.host}:{cluster.tracker_port}", "--key", "plain"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            address, session = request_session(cluster.host, cluster.tracker_port, "plain", timeout=60)
            held = BoardSession(_board("python"), address, session)
            assert held.send_ahead((x,)) is None and held.frame_path == "rpc"
            with held.lock:
                (buffer,) = held.staged((x,), session.cpu(0), None)
            assert np.array_equal(buffer.numpy(), x) and held.copies == 1
            held.close()
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the server and the worker it forked
            proc.wait()


@pytest.mark.parametrize("server", SERVERS)
def test_the_report_says_how_frames_reached_each_board(server, tmp_path, no_leaked_boards):
    _board(server)
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "boards:\n"
        + "".join(f"  - {{name: pynq{i}, target: pynq-z1, local: true, cores: 1, server: {server}}}\n" for i in (0, 1))
    )
    report, result = splitrun_json(
        tmp_path, "--model", "resnet_tiny", "--inventory", str(inventory), "--runs", "6", "--depth", "2"
    )
    assert report["wire"]["paths"] == {"pynq0": "call", "pynq1": "call"}
    assert report["fidelity_max_abs_diff"] <= ATOL_FP32
    assert "take frames from the frame channel, in one round trip a call" in result.stdout
    assert {b["compute_from"] for b in report["branches"]} == {"calls"}  # by the boards' clocks, in the calls
    assert all(0 < b["compute_ms"] < b["call"]["p50_ms"] for b in report["branches"])


def test_without_one_round_trip_compute_is_timed_after_the_frames(tmp_path, monkeypatch, no_leaked_boards):
    monkeypatch.setenv(ENV, "frames")  # the channel, but the call a separate round trip: no count in it
    report, result = splitrun_json(tmp_path, "--model", "resnet_tiny", "--runs", "6", "--depth", "1")
    assert report["wire"]["paths"] == {"pynq0": "channel", "pynq1": "channel"}
    assert {b["compute_from"] for b in report["branches"]} == {"after"}
    assert all(b["compute_ms"] > 0 for b in report["branches"])
    assert "compute timed on the boards after the frames" in result.stdout
