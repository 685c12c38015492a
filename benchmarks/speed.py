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

Every build uses the tuning database that matches it when one ships (the ``tuning`` column
says which). Writes the figures as JSON too. Nothing here is a test: the targets in issue 4
are ratios read off this table.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # MXNet's one-thread baseline; set before mxnet loads
os.environ.setdefault("MXNET_CPU_WORKER_NTHREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from splitnet.framework.errors import SplitnetError  # noqa: E402
from splitnet.strategies import RunOptions, run  # noqa: E402

BRANCH_COUNTS = (1, 2, 4)


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
    import onnxruntime as ort

    from splitnet.framework.compile import to_onnx
    from splitnet.partitioners import partition
    from splitnet.zoo import load_reference

    reference = load_reference(model)
    x = np.random.RandomState(0).rand(*reference.spec.input_shape).astype(np.float32)
    whole = partition(reference, 1).branches[0]
    branch = partition(reference, 2).branches[0]
    ort.set_default_logger_severity(3)  # errors only
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    out = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, part in (("unsplit", whole), ("branch", branch)):
            block = part.block
            block.hybridize(static_alloc=True, static_shape=True)
            data = mx.nd.array(x)
            out[f"mxnet_{name}_ms"] = _median_ms(lambda b=block, d=data: b(d).wait_to_read(), repeat)
            path = Path(scratch) / f"{name}.onnx"
            model = to_onnx(part, path)
            # mxnet's exporter lists the weights as graph inputs too; onnxruntime then cannot
            # treat them as constants (no Conv+BN fusion), which would handicap it.
            weights = {t.name for t in model.graph.initializer}
            inputs = [i for i in model.graph.input if i.name not in weights]
            del model.graph.input[:]
            model.graph.input.extend(inputs)
            onnx.save(model, str(path))
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feed = {session.get_inputs()[0].name: x}
            out[f"ort_{name}_ms"] = _median_ms(lambda s=session, f=feed: s.run(None, f), repeat)
    return out


def data_parallel(model: str, inventory: str | None, frames_per_board: int) -> dict:
    """The unsplit model on every board at once, one frame each: frames/s over the wall time."""
    from splitnet.partitioners import partition
    from splitnet.runtime.fleet import Fleet
    from splitnet.runtime.inventory_file import resolve_inventory
    from splitnet.strategies import TunedBuilder
    from splitnet.zoo import load_reference

    reference = load_reference(model)
    unsplit = partition(reference, 1)
    whole = unsplit.branches[0]
    x = np.random.RandomState(0).rand(*reference.spec.input_shape).astype(np.float32)
    inv = resolve_inventory(inventory)
    with Fleet(inv) as fleet:
        sessions = fleet.sessions()
        build = TunedBuilder(unsplit)  # the deploy path's builds: the matching tuning database
        modules = [board_session.load(build(whole, board_session.board)) for board_session in sessions.values()]
        for module in modules:
            module(x)  # warm
        barrier = threading.Barrier(len(modules) + 1)

        def loop(module) -> None:
            barrier.wait()
            for _ in range(frames_per_board):
                module(x)

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


def split_run(model: str, n: int, runs: int, depth: int, inventory: str | None) -> dict:
    report = run(RunOptions(model=model, branches=n, runs=runs, warmup=3, depth=depth, inventory=inventory))
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
        "depth": report.depth,
        "slowest_board_compute_ms": max(per_board.values()),
        "compute_ms": [b.compute_ms for b in report.branches],
        "call_p50_ms": [b.call.p50_ms for b in report.branches],
        "transfer_ms": [b.transfer_ms for b in report.branches],
        "boards": [b.board for b in report.branches],
        "head_ms": report.head_ms,
        "fidelity": report.fidelity_max_abs_diff,
        "tuning": list(report.tuning),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18_v1")
    parser.add_argument("--inventory", default=None, help="default: two emulated single-core PYNQ boards")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--depth", type=int, default=4, help="frames in flight for the steady-state phase")
    parser.add_argument("--branches", default=",".join(map(str, BRANCH_COUNTS)))
    parser.add_argument("--json", type=Path, default=Path("speed-benchmark.json"))
    args = parser.parse_args(argv)
    out = Console(highlight=False, width=200)
    try:
        rows = [split_run(args.model, int(n), args.runs, args.depth, args.inventory) for n in args.branches.split(",")]
        parallel = data_parallel(args.model, args.inventory, max(args.runs // 2, 4))
    except SplitnetError as exc:
        out.print(f"error: {exc.one_line()}")
        return 2
    baselines = peers(args.model, max(args.runs, 10))
    base = next((r for r in rows if r["n"] == 1), None)
    table = Table(title=f"{args.model}: split vs unsplit on single-core boards ({args.depth} frames in flight)")
    columns = ("N", "p50 ms", "p95 ms", "frames/s", "x N=1", "x data-par.", "ceiling", "of ceiling")
    columns += ("branch compute ms", "transfer ms", "head ms", "latency / (slowest+head)")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        speedup = row["fps_steady"] / base["fps_steady"] if base else float("nan")
        ceiling = base["slowest_board_compute_ms"] / row["slowest_board_compute_ms"] if base else float("nan")
        row["speedup_vs_unsplit"] = speedup
        row["speedup_vs_data_parallel"] = row["fps_steady"] / parallel["fps"]
        row["latency_vs_data_parallel"] = row["latency_p50_ms"] / base["latency_p50_ms"] if base else float("nan")
        row["ceiling"] = ceiling
        row["of_ceiling"] = speedup / ceiling
        row["latency_over_compute"] = row["latency_p50_ms"] / (row["slowest_board_compute_ms"] + row["head_ms"])
        table.add_row(
            str(row["n"]),
            f"{row['latency_p50_ms']:.1f}",
            f"{row['latency_p95_ms']:.1f}",
            f"{row['fps_steady']:.2f}",
            f"{speedup:.2f}",
            f"{row['speedup_vs_data_parallel']:.2f}",
            f"{ceiling:.2f}",
            f"{row['of_ceiling']:.2f}",
            " / ".join(f"{v:.1f}" for v in row["compute_ms"]),
            " / ".join(f"{v:.1f}" for v in row["transfer_ms"]),
            f"{row['head_ms']:.2f}",
            f"{row['latency_over_compute']:.2f}",
        )
    out.print(table)
    out.print(
        f"data parallel (unsplit model on each of {parallel['boards']} boards, one frame each): "
        f"{parallel['fps']:.2f} frames/s"
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
    args.json.write_text(json.dumps({"runs": rows, "data_parallel": parallel, "peers": baselines}, indent=2) + "\n")
    out.print(f"written to {args.json}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
