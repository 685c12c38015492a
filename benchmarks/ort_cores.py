"""onnxruntime on the boards' cores: what a user would run instead of splitnet.

The unsplit model in onnxruntime (one thread) in a process pinned to one core, as a board
is: single-frame latency and frames/s on one board, then one such process per core at once
(data parallel). Each worker is this script run as ``ort_cores.py --ort-worker``, so
that it holds nothing of the benchmark's own process. ``speed.py`` prints the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _ort_model(model: str, path: Path) -> None:
    """The unsplit model as an ONNX file onnxruntime treats fairly (weights as constants)."""
    import onnx
    from ort_baseline import weights_as_constants

    from splitnet.framework.compile import to_onnx
    from splitnet.partitioners import partition
    from splitnet.zoo import load_reference

    exported = to_onnx(partition(load_reference(model), 1).branches[0], path)
    onnx.save(weights_as_constants(exported), str(path))


def ort_worker(path: str, core: int, frames: int, start_at: float) -> None:
    """(A subprocess) onnxruntime, one thread, pinned to ``core``: print per-frame seconds and the wall span."""
    from ort_baseline import one_thread_session

    os.sched_setaffinity(0, {core})
    session = one_thread_session(path)
    name = session.get_inputs()[0].name
    shape = session.get_inputs()[0].shape
    xs = [np.random.RandomState(i).rand(*shape).astype(np.float32) for i in range(2)]
    for x in xs:
        session.run(None, {name: x})  # warm
    time.sleep(max(start_at - time.time(), 0.0))
    begin, times = time.time(), []
    for i in range(frames):
        t0 = time.perf_counter()
        session.run(None, {name: xs[i % 2]})
        times.append(time.perf_counter() - t0)
    print(json.dumps({"begin": begin, "end": time.time(), "times": times}))


def ort_on_boards(model: str, boards: int, frames: int) -> dict:
    """onnxruntime unsplit on one pinned core, then on ``boards`` pinned cores at once (data parallel)."""
    cores = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "unsplit.onnx"
        _ort_model(model, path)

        def workers(count: int) -> list[dict]:
            start_at = time.time() + 8.0  # every worker loaded and warm by then
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--ort-worker",
                        str(path),
                        str(cores[i % len(cores)]),
                        str(frames),
                        str(start_at),
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
                for i in range(count)
            ]
            return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]

        (one,) = workers(1)
        many = workers(boards)
    latency = float(np.median(one["times"])) * 1000.0
    span = max(w["end"] for w in many) - min(w["begin"] for w in many)
    return {
        "one_board_latency_ms": latency,
        "one_board_fps": frames / (one["end"] - one["begin"]),
        "boards": boards,
        "data_parallel_fps": boards * frames / span,
    }


if __name__ == "__main__" and sys.argv[1:2] == ["--ort-worker"]:  # one process pinned to a core
    ort_worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
