"""Split vs unsplit, on the same single-core boards, beside MXNet and onnxruntime: one table.

    python benchmarks/speed.py --model resnet18_v1 --runs 30

For N = 1 (the unsplit model on one board), 2 and 4 it runs ``splitrun``'s pipeline on the
default inventory (two emulated PYNQ boards, one core each, pinned: N=4 puts two branches
on each board) and reports single-frame latency p50/p95, steady-state throughput with
``--depth`` frames in flight, per-branch compute, transfer and RPC overhead, and the head.
Beside them:

* **data parallel**: what a user would do instead with the same boards: the unsplit model
  on every board, one frame each, all boards busy (frames/s over the wall time).
* **ceiling**: the unsplit model's compute on one board divided by the busiest board's
  compute per frame (its branches, one after another), measured in this run: the most
  N-way splitting can give. ``x N=1`` is steady-state frames/s over N=1's (also pipelined),
  and ``of ceiling`` is the one divided by the other.
* **MXNet and onnxruntime, one thread**, on the unsplit model and on one N=2 branch (the same
  graph the board runs), timed in this process.
* **onnxruntime on the boards' cores** (``ort_cores.py``): what a user would run instead of
  splitnet: the unsplit model in onnxruntime (one thread) in a process pinned to one core, as
  a board is: single-frame latency and frames/s on one board, and every board running it at
  once (data parallel, one process per core).
* **the wire**: bytes per frame copied to the boards and copy milliseconds per frame
  (``--wire uint8``, the default, or ``float32``), from the run's own counters.
* **host CPU ms**: the host process's CPU per frame in the steady state, every thread (here
  the host shares its cores with the boards, so that is time taken from their compute).
* **the frame's path**: the frame channel beside each board's session, taken in and run in
  one round trip a call (``call``, the default), the channel with separate round trips
  (``SPLITNET_CHANNEL=frames``), or TVM RPC (``off``); the ``frames reached the boards`` line
  says which.
* **the boards' server** (``--server``): ``cpp``, the C++ ``tvm_rpc`` a PYNQ runs, built for
  this host with the copy fix (``splitrun setup arm --cpp x86_64``), when it is built; else
  ``python``, TVM's Python ``rpc_server`` (``benchmarks/copies.py`` shows what each costs).

Every split run, and data parallel, runs ``--rounds`` times (3), the N in alternating order;
each ratio is taken within its round and the table shows the median over rounds, the
targets the lowest and highest round beside it (:mod:`speed_figures` says why). Each
branch's compute (and so the ceiling) is what its board's clock counted in the timed calls
themselves (the report's ``compute ms``), so the two are never measured at different
moments; a server that does not count it is timed after the frames, ``--compute-repeat``
(20) calls.

Under the tables, the targets of issue 16, each with met or missed.

Every build uses the tuning database that matches it when one ships (the ``tuning`` column
says which). Writes the figures as JSON too. Nothing here is a test: the targets in issue 4
are ratios read off this table.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # MXNet's one-thread baseline; set before mxnet loads
os.environ.setdefault("MXNET_CPU_WORKER_NTHREADS", "1")
# The boards are this host's CPU, one core each (the host stand-ins), even where `splitrun
# setup arm` would make the default PYNQ boards ARM servers under qemu: this compares x86
# code with onnxruntime on the same cores, and qemu would time the emulator.
os.environ.setdefault("SPLITNET_EMULATION", "host")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from ort_cores import ort_on_boards  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from speed_figures import combine, derive, period_accounting, targets  # noqa: E402

from splitnet.framework.errors import SplitnetError  # noqa: E402
from splitnet.framework.wire import DEFAULT_WIRE, WIRES, with_wire  # noqa: E402
from splitnet.runtime.frame_channel import ENV, mode  # noqa: E402
from splitnet.strategies import RunOptions, run  # noqa: E402

BRANCH_COUNTS = (1, 2, 4)
COMPUTE_REPEAT = 20  # on-board timings per branch where a server does not count compute in its calls


def _median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000.0


def peers(model: str, repeat: int) -> dict:
    """MXNet and onnxruntime, one thread each, on the unsplit body+head and on one N=2 branch."""
    import mxnet as mx
    import onnx
    from ort_baseline import one_thread_session, weights_as_constants

    from splitnet.framework.compile import to_onnx
    from splitnet.partitioners import partition
    from splitnet.zoo import load_reference

    reference = load_reference(model)
    x = np.random.RandomState(0).rand(*reference.spec.input_shape).astype(np.float32)
    whole = partition(reference, 1).branches[0]
    branch = partition(reference, 2).branches[0]
    out = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, part in (("unsplit", whole), ("branch", branch)):
            block = part.block
            block.hybridize(static_alloc=True, static_shape=True)
            data = mx.nd.array(x)
            out[f"mxnet_{name}_ms"] = _median_ms(lambda b=block, d=data: b(d).wait_to_read(), repeat)
            path = Path(scratch) / f"{name}.onnx"
            onnx.save(weights_as_constants(to_onnx(part, path)), str(path))
            session = one_thread_session(str(path))
            feed = {session.get_inputs()[0].name: x}
            out[f"ort_{name}_ms"] = _median_ms(lambda s=session, f=feed: s.run(None, f), repeat)
    return out


def data_parallel(model: str, inventory: str | None, frames_per_board: int, wire: str = DEFAULT_WIRE) -> dict:
    """The unsplit model on every board at once, one frame each: frames/s over the wall time.

    Frames alternate between two images, so every frame is really copied to its board (a
    board keeps the last frame it was sent), on the same wire as the split runs."""
    from splitnet.partitioners import partition
    from splitnet.runtime.fleet import Fleet
    from splitnet.runtime.inventory_file import resolve_inventory
    from splitnet.strategies import TunedBuilder
    from splitnet.zoo import load_reference

    reference = load_reference(model)
    unsplit = with_wire(partition(reference, 1), wire, reference.spec.preprocessing)
    whole = unsplit.branches[0]
    pixels = [np.random.RandomState(i).randint(0, 256, reference.spec.input_shape).astype(np.uint8) for i in range(2)]
    xs = pixels if wire == "uint8" else [reference.spec.preprocessing.apply(p) for p in pixels]
    inv = resolve_inventory(inventory)
    with Fleet(inv) as fleet:
        sessions = fleet.sessions()
        build = TunedBuilder(unsplit)  # the deploy path's builds: the matching tuning database
        modules = [board_session.load(build(whole, board_session.board)) for board_session in sessions.values()]
        for module in modules:
            module(xs[0])  # warm
        barrier = threading.Barrier(len(modules) + 1)

        def loop(module) -> None:
            barrier.wait()
            for i in range(frames_per_board):
                module(xs[(i + 1) % 2])

        threads = [threading.Thread(target=loop, args=(m,), daemon=True) for m in modules]
        for t in threads:
            t.start()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        for board_session in sessions.values():
            board_session.close()
    return {"boards": len(modules), "fps": len(modules) * frames_per_board / wall}


def _require_onnxruntime() -> None:
    """onnxruntime is a peer in the tables and comes with the ``bench`` extra: checked before
    the rounds, so that its absence does not cost their minutes first."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise SplitnetError(
            "onnxruntime, which the benchmark compares against, is not installed", 'pip install -e ".[bench]"'
        ) from None


def _server(wanted: str) -> str:
    """``--server auto``: the C++ server where ``splitrun setup arm --cpp x86_64`` built it."""
    from splitnet.runtime.arm.paths import ArmPaths

    if wanted != "auto":
        return wanted
    return "cpp" if ArmPaths.default().host_cpp_ready() else "python"


def split_run(
    model: str,
    n: int,
    runs: int,
    depth: int,
    inventory: str | None,
    wire: str = DEFAULT_WIRE,
    compute_repeat: int = COMPUTE_REPEAT,
) -> dict:
    options = RunOptions(
        model=model,
        branches=n,
        runs=runs,
        warmup=3,
        depth=depth,
        inventory=inventory,
        wire=wire,
        compute_repeat=compute_repeat,
    )
    report = run(options)
    per_board: dict[str, float] = {}
    for b in report.branches:  # branches on one board run one after another
        per_board[b.board] = per_board.get(b.board, 0.0) + b.compute_ms
    return {
        "n": n,
        "ok": report.ok,
        "latency_p50_ms": report.end_to_end.p50_ms,
        "latency_p95_ms": report.end_to_end.p95_ms,
        "fps_one_in_flight": report.throughput_fps,
        "fps_steady": report.steady_fps,
        "host_cpu_ms": report.steady_host_cpu_ms,
        "depth": report.depth,
        "slowest_board_compute_ms": max(per_board.values()),
        "compute_ms": [b.compute_ms for b in report.branches],
        "compute_from": [b.compute_from for b in report.branches],
        "call_p50_ms": [b.call.p50_ms for b in report.branches],
        "transfer_ms": [b.transfer_ms for b in report.branches],
        "boards": [b.board for b in report.branches],
        "head_ms": report.head_ms,
        "fidelity": report.fidelity_max_abs_diff,
        "tuning": list(report.tuning),
        "wire": report.wire,
        "servers": report.servers,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18_v1")
    parser.add_argument("--inventory", default=None, help="default: two emulated single-core PYNQ boards")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--depth", type=int, default=4, help="frames in flight for the steady-state phase")
    parser.add_argument("--branches", default=",".join(map(str, BRANCH_COUNTS)))
    parser.add_argument("--rounds", type=int, default=3, help="split runs per N, in alternating order (medians)")
    parser.add_argument(
        "--compute-repeat", type=int, default=COMPUTE_REPEAT, help="on-board timings per branch (median)"
    )
    parser.add_argument("--wire", choices=WIRES, default=DEFAULT_WIRE, help="frames on the wire (default uint8)")
    parser.add_argument("--json", type=Path, default=Path("speed-benchmark.json"))
    parser.add_argument(
        "--server", choices=("auto", "python", "cpp"), default="auto", help="boards' RPC server (auto: cpp if built)"
    )
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.compute_repeat < 1:
        parser.error("--rounds and --compute-repeat must be at least 1")
    out = Console(highlight=False, width=200)
    os.environ["SPLITNET_SERVER"] = _server(args.server)
    order = [int(n) for n in args.branches.split(",")]
    rounds, parallels = [], []
    try:
        _require_onnxruntime()
        for r in range(args.rounds):  # alternating order: a drift in the machine's speed falls on every N alike
            out.print(f"round {r + 1} of {args.rounds}", style="dim")
            ns = order if r % 2 == 0 else order[::-1]
            rows = [
                split_run(args.model, n, args.runs, args.depth, args.inventory, args.wire, args.compute_repeat)
                for n in ns
            ]
            parallels.append(data_parallel(args.model, args.inventory, max(args.runs // 2, 4), args.wire))
            derive(rows, parallels[-1]["fps"])
            rounds.append(rows)
    except SplitnetError as exc:
        out.print(f"error: {exc.one_line()}", markup=False)  # a fix such as ".[bench]" is not a style
        return 2
    parallel = {"boards": parallels[0]["boards"], "fps": float(np.median([p["fps"] for p in parallels]))}
    rows = combine(rounds)
    baselines = peers(args.model, max(args.runs, 10))
    ort = ort_on_boards(args.model, parallel["boards"], max(args.runs, 10))
    base = next((r for r in rows if r["n"] == 1), None)
    table = Table(
        title=f"{args.model}: split vs unsplit on single-core boards ({args.depth} frames in flight)",
        caption=f"each figure the median over {args.rounds} rounds on its own (a ratio is taken within its round, "
        "so 'x N=1' over 'ceiling' need not be 'of ceiling')",
    )
    columns = ("N", "p50 ms", "p95 ms", "frames/s", "x N=1", "x data-par.", "ceiling", "of ceiling")
    columns += (
        "branch compute ms",
        "transfer ms",
        "head ms",
        "latency / (slowest+head)",
        "wire B/frame",
        "copy ms",
        "host CPU ms",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["n"]),
            f"{row['latency_p50_ms']:.1f}",
            f"{row['latency_p95_ms']:.1f}",
            f"{row['fps_steady']:.2f}",
            f"{row['speedup_vs_unsplit']:.2f}",
            f"{row['speedup_vs_data_parallel']:.2f}",
            f"{row['ceiling']:.2f}",
            f"{row['of_ceiling']:.2f}",
            " / ".join(f"{v:.1f}" for v in row["compute_ms"]),
            " / ".join(f"{v:.1f}" for v in row["transfer_ms"]),
            f"{row['head_ms']:.2f}",
            f"{row['latency_over_compute']:.2f}",
            f"{row['wire']['sent_bytes_per_frame']:.0f}",
            f"{row['wire']['copy_ms_per_frame']:.2f}",
            f"{row['host_cpu_ms']:.2f}",
        )
    out.print(table)
    out.print(
        f"data parallel (unsplit model on each of {parallel['boards']} boards, one frame each, {args.wire} frames): "
        f"{parallel['fps']:.2f} frames/s"
    )
    out.print(
        f"onnxruntime unsplit, one thread pinned to one core (one board): {ort['one_board_latency_ms']:.2f} ms, "
        f"{ort['one_board_fps']:.2f} frames/s; data parallel on {ort['boards']} cores: "
        f"{ort['data_parallel_fps']:.2f} frames/s"
    )
    peer_table = Table(title="one thread, in this process")
    for column in ("engine", "unsplit ms", "one N=2 branch ms"):
        peer_table.add_column(column, justify="right")
    peer_table.add_row("MXNet 1.9.1", f"{baselines['mxnet_unsplit_ms']:.2f}", f"{baselines['mxnet_branch_ms']:.2f}")
    peer_table.add_row("onnxruntime", f"{baselines['ort_unsplit_ms']:.2f}", f"{baselines['ort_branch_ms']:.2f}")
    two = next((r for r in rows if r["n"] == 2), None)
    if base and two:
        peer_table.add_row("TVM on a board", f"{base['compute_ms'][0]:.2f}", f"{two['compute_ms'][0]:.2f}")
    out.print(peer_table)
    for row in rows:
        out.print(f"N={row['n']} tuning: {'; '.join(row['tuning'])}", soft_wrap=True)
    cores = len(os.sched_getaffinity(0))
    for row in rows:  # the boards are this machine's cores; where they hold every core, the host takes from them
        if len(set(row["boards"])) >= cores:
            out.print(period_accounting(row, cores))
    measured = sorted({where for row in rows for where in row["compute_from"]})
    out.print(f"branch compute measured: {', '.join(measured)} (calls: by the boards' clocks in the timed calls)")
    servers = sorted({kind for row in rows for kind in row["servers"].values()})
    out.print(f"boards' RPC server: {', '.join(servers)} (--server {args.server})")
    paths = sorted({path for row in rows for path in row["wire"].get("paths", {}).values()})
    out.print(f"frames reached the boards through: {', '.join(paths)} ({ENV}={mode()})")
    goals = targets(rows, ort, baselines)
    for what, figure, met in goals:
        out.print(f"target N=2 {what}: {figure} {'met' if met else 'MISSED'}")
    data = {
        "runs": rows,
        "rounds": rounds,
        "data_parallel": parallel,
        "peers": baselines,
        "onnxruntime_boards": ort,
        "server": servers,
    }
    data["frame_paths"] = paths
    data["targets"] = [{"target": what, "figure": figure, "met": met} for what, figure, met in goals]
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    out.print(f"written to {args.json}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
