"""Does a second RPC session per board overlap the frame's copy with compute? Measured, not assumed.

    python benchmarks/lanes.py --runs 24

A TVM RPC server serves one session at a time and a session carries one call at a time, so
"frame k+1 travels while frame k computes" needs a second server on the board (a second
lane). This starts two real RPC servers pinned to one core (one single-core board), loads
one N=2 ResNet18 branch (tuned with the database that matches) on both, and times frames
through one session, then through both from two threads, for uint8 and float32 frames.
Frames alternate between two images so every frame is really copied.

What it showed on this machine (README, Speed): the copy costs the board's own core, so
with float32 frames a second lane is slower, and with uint8 frames (2 ms of copy) it gains
a few percent; splitnet keeps one session per board and sends uint8 frames instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import tvm
from tvm import relax, rpc

from splitnet.framework.targets import host_target
from splitnet.framework.wire import with_wire
from splitnet.partitioners import partition
from splitnet.runtime import free_port
from splitnet.strategies.build import TunedBuilder
from splitnet.zoo import get_model_spec, load_reference


def _servers(count: int, core: int) -> tuple[list[int], list[subprocess.Popen]]:
    ports, procs = [], []
    for _ in range(count):
        port = free_port("127.0.0.1")
        args = [sys.executable, "-m", "tvm.exec.rpc_server", "--host", "127.0.0.1"]
        args += ["--port", str(port), "--port-end", str(port + 1)]
        procs.append(
            subprocess.Popen(
                args,
                env={**os.environ, "TVM_NUM_THREADS": "1"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=lambda: os.sched_setaffinity(0, {core}),
            )
        )
        ports.append(port)
    for port in ports:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            time.sleep(0.1)
    return ports, procs


class Lane:
    """One session on one server: the branch loaded, and one input buffer refilled per frame."""

    def __init__(self, port: int, library: bytes) -> None:
        self.session = rpc.connect("127.0.0.1", port)
        self.session.upload(bytearray(library), target="branch.so")
        self.dev = self.session.cpu(0)
        self.main = relax.VirtualMachine(self.session.load_module("branch.so"), self.dev)["main"]
        self.buffer = None
        self.copy_s: list[float] = []

    def frame(self, x: np.ndarray) -> None:
        start = time.perf_counter()
        if self.buffer is None:
            self.buffer = tvm.runtime.empty(x.shape, str(x.dtype), self.dev)
        self.buffer.copyfrom(x)
        self.copy_s.append(time.perf_counter() - start)
        self.main(self.buffer).numpy()


def measure(wire: str, runs: int, core: int) -> dict:
    spec = get_model_spec("resnet18_v1")
    split = with_wire(partition(load_reference("resnet18_v1"), 2, (0.5, 0.5), 8), wire, spec.preprocessing)
    builder = TunedBuilder(split)
    library = builder.for_target(split.branches[0], host_target(1)).path.read_bytes()
    dtype = np.uint8 if wire == "uint8" else np.float32
    frames = [np.random.RandomState(i).randint(0, 256, spec.input_shape).astype(dtype) for i in range(2)]
    ports, procs = _servers(2, core)
    try:
        lanes = [Lane(port, library) for port in ports]
        for lane in lanes:
            lane.frame(frames[0])
            lane.copy_s.clear()
        start = time.perf_counter()
        for i in range(runs):
            lanes[0].frame(frames[i % 2])
        one = runs / (time.perf_counter() - start)
        copy_one = float(np.median(lanes[0].copy_s)) * 1000.0
        lanes[0].copy_s.clear()

        def worker(lane: Lane) -> None:
            for i in range(runs // 2):
                lane.frame(frames[i % 2])

        start = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(lane,)) for lane in lanes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        two = 2 * (runs // 2) / (time.perf_counter() - start)
        copy_two = float(np.median([s for lane in lanes for s in lane.copy_s])) * 1000.0
        return {"wire": wire, "tuning": builder.notes, "one_fps": one, "two_fps": two, "copy_ms": (copy_one, copy_two)}
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--core", type=int, default=0, help="the core both servers are pinned to")
    args = parser.parse_args()
    for wire in ("uint8", "float32"):
        r = measure(wire, args.runs, args.core)
        print(
            f"{wire:7s} 1 session {r['one_fps']:5.1f} frames/s (copy {r['copy_ms'][0]:.2f} ms) | "
            f"2 sessions {r['two_fps']:5.1f} frames/s (copy {r['copy_ms'][1]:.2f} ms): "
            f"{r['two_fps'] / r['one_fps']:.2f}x  [{'; '.join(r['tuning'])}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
