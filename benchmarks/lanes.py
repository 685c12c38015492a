"""Does a second RPC session per board overlap the frame's copy with compute? Measured, not assumed.

    python benchmarks/lanes.py --runs 24                       # one board: 1 lane vs 2
    python benchmarks/lanes.py --boards 2 --frames 80 --server cpp   # both N=2 branches, 2 boards

A TVM RPC server serves one session at a time and a session carries one call at a time, so
"frame k+1 travels while frame k computes" needs a second server on the board (a second
lane). This starts real RPC servers (``--server python``: TVM's ``rpc_server``; ``cpp``: the
``tvm_rpc`` that ``splitrun setup arm --cpp x86_64`` builds with the copy fix), each board's
lanes pinned to the board's one core, loads an N=2 ResNet18 branch (tuned with the database
that matches) on every lane, and times frames.

* ``--boards 1``: one board, one branch; frames through one session, then through two from
  two threads, for uint8 and float32 frames.
* ``--boards 2``: two boards (cores 0 and 1), branch i on board i; every frame goes to both
  boards, taken by whichever lane of the board is free; 1 lane per board, then 2, twice,
  alternating. ``--no-copy`` calls on the frame already on the board: the ceiling copies
  leave. ``--link-mbit M`` (root) puts each board in a network namespace behind a veth
  rate-limited to M Mbit/s each way (docs/network-links.md), where a copy waits on the wire.

Frames alternate between images, so every frame is really copied. What it showed on this
machine is in the README (Speed: Copies).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import tvm
from tvm import relax, rpc

from splitnet.framework.targets import host_target
from splitnet.framework.wire import with_wire
from splitnet.partitioners import partition
from splitnet.runtime import free_port
from splitnet.runtime.arm.paths import ArmPaths, host_cpp_arch
from splitnet.runtime.ports import free_port_in
from splitnet.strategies.build import TunedBuilder
from splitnet.zoo import get_model_spec, load_reference


@contextlib.contextmanager
def shaped_links(mbit: float):
    """Two namespaces behind a bridge, each veth rate-limited to ``mbit`` both ways (tbf; as
    docs/network-links.md builds them, under this process's pid): yields [(netns, address)]."""
    prefix, made = f"sl{os.getpid()}", []

    def sh(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, timeout=30)

    tbf = ("tbf", "rate", f"{mbit}mbit", "burst", "32kb", "latency", "100ms")
    net = "10.231.77"  # a scratch /24: the namespaces get no default route, the bridge no uplink
    try:
        sh("ip", "link", "add", f"{prefix}br", "type", "bridge")
        made.append(("link", f"{prefix}br"))
        sh("ip", "addr", "add", f"{net}.1/24", "dev", f"{prefix}br")
        sh("ip", "link", "set", f"{prefix}br", "up")
        boards = []
        for i in range(2):
            ns, veth, peer, ip = f"{prefix}b{i}", f"{prefix}v{i}", f"{prefix}p{i}", f"{net}.{i + 2}"
            sh("ip", "netns", "add", ns)
            made.append(("netns", ns))
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
            made.append(("link", veth))
            sh("ip", "link", "set", peer, "netns", ns)
            sh("ip", "link", "set", veth, "master", f"{prefix}br")
            sh("ip", "link", "set", veth, "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", peer)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            sh("tc", "qdisc", "add", "dev", veth, "root", *tbf)
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", peer, "root", *tbf)
            boards.append((ns, ip))
        yield boards
    finally:
        for kind, name in reversed(made):
            subprocess.run(["ip", kind, "del", name], capture_output=True, timeout=30)


def _servers(
    count: int, core: int, server: str = "python", link: tuple[str, str] | None = None
) -> tuple[list[int], list[subprocess.Popen]]:
    """``count`` servers pinned to ``core``; ``link``: (netns, address) they serve in."""
    ports, procs = [], []
    host = link[1] if link else "127.0.0.1"
    for _ in range(count):
        port = free_port_in(*link) if link else free_port(host)
        if server == "cpp":  # SIGPIPE ignored, its own folder (it keeps uploads where it runs)
            tvm_rpc = str(ArmPaths.default().tvm_rpc(host_cpp_arch()))
            args = ["/bin/sh", "-c", "trap '' PIPE; exec \"$@\"", "tvm_rpc", tvm_rpc, "server"]
            args += [f"--host={host}", f"--port={port}", f"--port-end={port + 1}"]
        else:
            args = [sys.executable, "-m", "tvm.exec.rpc_server", "--host", host]
            args += ["--port", str(port), "--port-end", str(port + 1)]
        if link:
            args = ["ip", "netns", "exec", link[0], *args]
        procs.append(
            subprocess.Popen(
                args,
                env={**os.environ, "TVM_NUM_THREADS": "1"},
                cwd=tempfile.mkdtemp(prefix="lane-"),
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
            with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
                break
            time.sleep(0.1)
    return ports, procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Lane:
    """One session on one server: the branch loaded, and one input buffer refilled per frame."""

    def __init__(self, port: int, library: bytes, host: str = "127.0.0.1") -> None:
        self.session = rpc.connect(host, port)
        self.session.upload(bytearray(library), target="branch.so")
        self.dev = self.session.cpu(0)
        self.main = relax.VirtualMachine(self.session.load_module("branch.so"), self.dev)["main"]
        self.buffer = None
        self.copy_s: list[float] = []

    def frame(self, x: np.ndarray, copy: bool = True) -> None:
        start = time.perf_counter()
        if self.buffer is None:
            self.buffer = tvm.runtime.empty(x.shape, str(x.dtype), self.dev)
            copy = True
        if copy:
            self.buffer.copyfrom(x)
        self.copy_s.append(time.perf_counter() - start)
        self.main(self.buffer).numpy()


def _branches(wire: str, count: int) -> tuple[list[bytes], list[str], tuple[int, ...]]:
    spec = get_model_spec("resnet18_v1")
    split = with_wire(partition(load_reference("resnet18_v1"), 2, (0.5, 0.5), 8), wire, spec.preprocessing)
    builder = TunedBuilder(split)
    libraries = [builder.for_target(split.branches[i], host_target(1)).path.read_bytes() for i in range(count)]
    return libraries, builder.notes, spec.input_shape


def measure(wire: str, runs: int, core: int, server: str = "python") -> dict:
    (library,), notes, shape = _branches(wire, 1)
    dtype = np.uint8 if wire == "uint8" else np.float32
    frames = [np.random.RandomState(i).randint(0, 256, shape).astype(dtype) for i in range(2)]
    ports, procs = _servers(2, core, server)
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
        return {"wire": wire, "tuning": notes, "one_fps": one, "two_fps": two, "copy_ms": (copy_one, copy_two)}
    finally:
        _stop(procs)


def two_boards(
    frames_count: int, lanes_per_board: int, server: str, copy: bool, libraries: list[bytes], links=None
) -> float:
    """Frames/s with every frame computed by both boards (branch i on board i); ``links``:
    [(netns, address)] per board, else loopback."""
    shape = get_model_spec("resnet18_v1").input_shape
    frames = [np.random.RandomState(i).randint(0, 256, shape).astype(np.uint8) for i in range(8)]
    procs: list[subprocess.Popen] = []
    try:
        boards = []
        for core in (0, 1):
            link = links[core] if links else None
            ports, started = _servers(lanes_per_board, core, server, link)
            procs += started
            host = link[1] if link else "127.0.0.1"
            boards.append([Lane(port, libraries[core], host) for port in ports])
        for lanes in boards:
            for lane in lanes:
                lane.frame(frames[0])
        queues: list[queue.Queue] = [queue.Queue() for _ in boards]

        def worker(lane: Lane, work: queue.Queue) -> None:
            while (k := work.get()) is not None:
                lane.frame(frames[k % len(frames)], copy)

        threads = [
            threading.Thread(target=worker, args=(lane, queues[b])) for b, lanes in enumerate(boards) for lane in lanes
        ]
        for thread in threads:
            thread.start()
        start = time.perf_counter()
        for k in range(frames_count):
            for work in queues:
                work.put(k)
        for work in queues:
            for _ in range(lanes_per_board):
                work.put(None)
        for thread in threads:
            thread.join()
        return frames_count / (time.perf_counter() - start)
    finally:
        _stop(procs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=24, help="--boards 1: frames per measurement")
    parser.add_argument("--core", type=int, default=0, help="--boards 1: the core both servers are pinned to")
    parser.add_argument("--boards", type=int, choices=(1, 2), default=1)
    parser.add_argument("--frames", type=int, default=80, help="--boards 2: frames per measurement")
    parser.add_argument("--server", choices=("python", "cpp"), default="python")
    parser.add_argument("--no-copy", action="store_true", help="--boards 2: frames already on the boards")
    parser.add_argument(
        "--link-mbit", type=float, default=None, help="--boards 2: boards in namespaces behind links this fast (root)"
    )
    args = parser.parse_args()
    if args.server == "cpp" and not ArmPaths.default().host_cpp_ready():
        print("error: no C++ server for this host (run: splitrun setup arm --cpp x86_64)")
        return 2
    if args.boards == 2:
        libraries, notes, _ = _branches("uint8", 2)
        copies = ", no copies" if args.no_copy else ""
        where = f"behind {args.link_mbit:g} Mbit/s links" if args.link_mbit else "on loopback"
        print(f"two boards {where}, {args.server} server, uint8 frames{copies} [{'; '.join(notes)}]")
        with shaped_links(args.link_mbit) if args.link_mbit else contextlib.nullcontext() as links:
            for lanes in (1, 2, 1, 2):
                fps = two_boards(args.frames, lanes, args.server, not args.no_copy, libraries, links)
                print(f"{lanes} lane(s) per board: {fps:6.2f} frames/s (both branches of every frame)")
        return 0
    for wire in ("uint8", "float32"):
        r = measure(wire, args.runs, args.core, args.server)
        print(
            f"{wire:7s} 1 session {r['one_fps']:5.1f} frames/s (copy {r['copy_ms'][0]:.2f} ms) | "
            f"2 sessions {r['two_fps']:5.1f} frames/s (copy {r['copy_ms'][1]:.2f} ms): "
            f"{r['two_fps'] / r['one_fps']:.2f}x  [{'; '.join(r['tuning'])}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
