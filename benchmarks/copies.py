"""What a frame's copy to a board costs, and on which side: TVM's Python server vs the C++ one,
through TVM RPC and through the frame channel.

    python benchmarks/copies.py --repeat 40

Starts one real local board per server kind (``server: python``, TVM's ``rpc_server`` from
the pip wheel; ``server: cpp``, the ``tvm_rpc`` that ``splitrun setup arm --cpp x86_64``
builds with :mod:`splitnet.runtime.arm.rpc_patch`; ``--qemu``: also the PYNQ-Z1's armhf
``tvm_rpc`` under qemu), pinned to one core, with the host process pinned to another, and
copies a uint8 224x224 frame (150,528 B), a float32 one (602,112 B) and 4.8 MB (not under
qemu) into a tensor kept on the board. It prints the median copy time, the
rate, and the CPU each side spent per copy (the host's from ``time.process_time``, the
board's from /proc over its process group), so it shows whether a copy costs the board's
core, which a second session per board could not hide on a single-core board.

Each copy is made twice: through RPC (``tensor.copyfrom``, the path of a server without the
channel) and through the frame channel (:mod:`splitnet.runtime.frame_channel`: the frame
written to the channel's socket, then the board's ``splitnet.channel.recv`` call), the
channel's time from the send to the call's return.

Nothing here is a test; the figures go to the README's Speed section.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import tvm
from tvm import rpc

from splitnet.runtime import Board, LocalCluster
from splitnet.runtime.arm.paths import ArmPaths
from splitnet.runtime.frame_channel import open_channel
from splitnet.runtime.inventory import DEFAULT_KEY
from splitnet.runtime.inventory_file import resolve_inventory

SIZES = (150_528, 602_112, 4_816_896)


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _copier(path: str, session, cluster: LocalCluster):
    """A function that copies an array into a tensor on the board by ``path``, and its channel."""
    if path == "rpc":
        return (lambda tensor, x: tensor.copyfrom(x)), None
    channel = open_channel(session, cluster.host)
    if channel is None:
        raise SystemExit(
            f"error: the {cluster.boards[0].name} server has no frame channel (rebuild: splitrun setup arm)"
        )
    return (lambda tensor, x: channel.recv(tensor, channel.send(x))), channel


def _copies(server: str, path: str, copy, dev, pgid: int, repeat: int) -> list[dict]:
    """Median time and each side's CPU of ``repeat`` copies of each size by ``copy``."""
    rows = []
    for size in SIZES:
        if server == "qemu" and size > SIZES[1]:
            break  # the emulator takes seconds per megabyte
        x = np.random.RandomState(size).randint(0, 256, size).astype(np.uint8)
        tensor = tvm.runtime.empty((size,), "uint8", dev)
        copy(tensor, x)
        np.testing.assert_array_equal(tensor.numpy(), x)  # every byte arrived
        times = []
        cpu_host, cpu_board, wall = time.process_time(), group_cpu_s(pgid), time.perf_counter()
        for _ in range(repeat):
            start = time.perf_counter()
            copy(tensor, x)
            times.append(time.perf_counter() - start)
        cpu_host = time.process_time() - cpu_host
        cpu_board = group_cpu_s(pgid) - cpu_board
        median = float(np.median(times))
        rows.append(
            {
                "server": server,
                "path": path,
                "bytes": size,
                "median_ms": median * 1000.0,
                "mb_per_s": size / median / 1e6,
                "host_cpu_ms": cpu_host / repeat * 1000.0,
                "board_cpu_ms": cpu_board / repeat * 1000.0,
                "wall_ms": (time.perf_counter() - wall) / repeat * 1000.0,
            }
        )
    return rows


def measure(server: str, repeat: int, host_core: int) -> list[dict]:
    """``python`` / ``cpp``: a host board on that server; ``qemu``: the PYNQ's armhf server under qemu."""
    if server == "qemu":
        board = resolve_inventory("two-pynq-qemu").boards[0]
    else:
        board = Board(name=f"{server}0", key=DEFAULT_KEY, target={"kind": "llvm"}, local=True, server=server)
    rows = []
    with LocalCluster([board]) as cluster:
        pgid = os.getpgid(cluster.servers[0].pid)
        session = rpc.connect_tracker(cluster.host, cluster.tracker_port).request(DEFAULT_KEY)
        dev = session.cpu(0)
        os.sched_setaffinity(0, {host_core})
        for path in ("rpc", "channel"):
            copy, channel = _copier(path, session, cluster)
            rows += _copies(server, path, copy, dev, pgid, repeat)
            if channel is not None:
                channel.close()
        del session
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument(
        "--qemu", action="store_true", help="also the PYNQ's armhf server under qemu (from SPLITNET_ARM_CACHE's set-up)"
    )
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    servers = ["python"] + (["cpp"] if ArmPaths.default().host_cpp_ready() else [])
    if args.qemu:
        if not ArmPaths.default().cpp_ready("armhf"):
            print(f"error: no armhf C++ server in {ArmPaths.default().root} (run: splitrun setup arm)")
            return 2
        servers.append("qemu")
    if "cpp" not in servers:
        print("no C++ server for this host: run splitrun setup arm --cpp x86_64 to compare it")
    columns = ("bytes", 9), ("median ms", 10), ("MB/s", 6), ("host CPU ms", 12), ("board CPU ms", 13)
    print(f"{'server':7s} {'path':8s} " + " ".join(f"{name:>{width}s}" for name, width in columns))
    for server in servers:
        for r in measure(server, args.repeat, host_core=cores[-1]):
            print(
                f"{r['server']:7s} {r['path']:8s} {r['bytes']:9d} {r['median_ms']:10.3f} {r['mb_per_s']:6.0f} "
                f"{r['host_cpu_ms']:12.3f} {r['board_cpu_ms']:13.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
