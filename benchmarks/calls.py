"""What a board call costs the host: two round trips per call against one.

    python benchmarks/calls.py --calls 400

With the frame channel, a call used to be two RPC round trips: ``splitnet.channel.recv``
(take the frame in) then the part's function, and the output's copy back was a third. Now
the host makes one, ``splitnet.channel.call`` (take the frames in, run, return the output's
bytes). This starts one real local board per server kind (TVM's Python server with
``runtime/board_server.py``; the patched ``tvm_rpc`` from ``splitrun setup arm --cpp
x86_64``, when built), pinned to one core with the host on another, loads branch 0 of the
tiny ResNet split in two (its frame is float32 3x32x32), and times calls with
``SPLITNET_CHANNEL=frames`` (separate round trips) and ``on`` (one), twice, alternating.

It prints per call the median wall time and the host process's CPU (``time.process_time``,
every thread), and the path the board's session reports (``channel`` or ``call``). The part is
tiny on purpose: what is left is the calls' own cost, which a full-size frame pays the same.
Nothing here is a test; the figures go to the README's Speed section.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

from splitnet.framework.compile import compile_part
from splitnet.framework.targets import host_target
from splitnet.partitioners import partition
from splitnet.runtime import Board, LocalCluster, acquire
from splitnet.runtime.arm.paths import ArmPaths
from splitnet.runtime.frame_channel import ENV
from splitnet.runtime.inventory import DEFAULT_KEY
from splitnet.zoo import load_reference

MODEL = "resnet_tiny"
MODES = ("frames", "on")  # SPLITNET_CHANNEL: separate round trips, then one


def tiny_branch():
    """Branch 0 of the tiny ResNet split in two, compiled for this host, and two frames."""
    reference = load_reference(MODEL)
    artifact = compile_part(partition(reference, 2).branches[0], host_target())
    rng = np.random.RandomState(0)
    frames = [rng.randn(*reference.spec.input_shape).astype(np.float32) for _ in range(2)]
    return artifact, frames


def measure(server: str, mode: str, artifact, frames, calls: int, host_core: int) -> dict:
    """Median wall and mean host CPU per call on a fresh ``server`` board under ``mode``."""
    os.environ[ENV] = mode
    board = Board(name=f"{server}0", key=DEFAULT_KEY, target={"kind": "llvm"}, local=True, cores=1, server=server)
    with LocalCluster([board]) as cluster:
        held = acquire(cluster.host, cluster.tracker_port, [board], cluster.address_of())[board.name]
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {host_core})
        try:
            module = held.load(artifact)
            expected = [module(x) for x in frames]  # the first call goes the long way
            times = []
            cpu = time.process_time()
            for i in range(calls):
                start = time.perf_counter()
                out = module(frames[i % 2])
                times.append(time.perf_counter() - start)
                if i < 2:
                    np.testing.assert_allclose(out, expected[i % 2], rtol=1e-6, atol=1e-6)
            cpu = time.process_time() - cpu
            return {
                "server": server,
                "mode": mode,
                "path": held.frame_path,
                "wall_ms": float(np.median(times)) * 1000.0,
                "host_cpu_ms": cpu / calls * 1000.0,
            }
        finally:
            os.sched_setaffinity(0, affinity)
            held.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    servers = ["python"] + (["cpp"] if ArmPaths.default().host_cpp_ready() else [])
    if "cpp" not in servers:
        print("no C++ server for this host: run splitrun setup arm --cpp x86_64 to compare it")
    artifact, frames = tiny_branch()
    print(f"{MODEL} branch 0 of 2, frame {frames[0].nbytes:,} B, {args.calls} calls per row")
    print(f"{'server':7s} {ENV:16s} {'path':8s} {'wall ms':>8s} {'host CPU ms':>12s}")
    host_core = sorted(os.sched_getaffinity(0))[-1]
    for server in servers:
        for mode in MODES + MODES:
            r = measure(server, mode, artifact, frames, args.calls, host_core)
            print(f"{r['server']:7s} {r['mode']:16s} {r['path']:8s} {r['wall_ms']:8.3f} {r['host_cpu_ms']:12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
