"""Which data layout gives TVM the fastest convolutions on this CPU? Measured, not assumed.

    pip install -e ".[bench]" && python benchmarks/layouts.py --trials 48

Issue 16 asks to try x86's blocked layout (NCHWc) and the CPU's real vector features. This
takes the 3x3 convolutions of an N=2 ResNet18 branch (half width: 32, 64, 128 and 256
channels), writes each in three layouts as TOPI computes them (NCHW, what splitnet builds
today; NHWC; and NCHW[x]c with x = the CPU's vector width in floats, 16 for AVX-512),
tunes each with MetaSchedule for the same number of trials on one core of this machine's
target (``framework.targets.host_target``, so ``-mcpu`` gives LLVM the CPU's features),
and prints the best time of each beside onnxruntime's on the same convolution (one thread,
NCHW: what the unsplit onnxruntime baseline runs).

Layout transforms at the edges are not counted: a whole network in NCHWc converts once at
its input and output. Same trials, same run, so the ratios compare; the times do not
compare across machines or sessions.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

import onnxruntime as ort  # noqa: E402
import tvm  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from tvm import te, topi  # noqa: E402
from tvm.s_tir import meta_schedule as ms  # noqa: E402

from splitnet.framework.targets import host_target  # noqa: E402

# (channels, height = width) of the 3x3 stride-1 convolutions in ResNet18's four stages, at
# the N=2 branch width (half the channels).
STAGES = {"stage1": (32, 56), "stage2": (64, 28), "stage3": (128, 14), "stage4": (256, 7)}


def conv(layout: str, channels: int, size: int, block: int) -> tvm.tir.PrimFunc:
    """One 3x3, pad 1, stride 1 convolution in ``layout`` as a PrimFunc (TOPI's compute)."""
    c, n = channels, size
    if layout == "NCHW":
        data = te.placeholder((1, c, n, n), name="data")
        kernel = te.placeholder((c, c, 3, 3), name="kernel")
        out = topi.nn.conv2d_nchw(data, kernel, 1, 1, 1, out_dtype="float32")
    elif layout == "NHWC":
        data = te.placeholder((1, n, n, c), name="data")
        kernel = te.placeholder((3, 3, c, c), name="kernel")
        out = topi.nn.conv2d_nhwc(data, kernel, 1, 1, 1, out_dtype="float32")
    else:  # NCHW[block]c, kernel OIHW[block]i[block]o
        data = te.placeholder((1, c // block, n, n, block), name="data")
        kernel = te.placeholder((c // block, c // block, 3, 3, block, block), name="kernel")
        tag = f"NCHW{block}c"
        out = topi.nn.conv2d_NCHWc(data, kernel, (1, 1), (1, 1), (1, 1), tag, tag, "float32")
    return te.create_prim_func([data, kernel, out]).with_attr("global_symbol", "main")


def tuned_ms(func: tvm.tir.PrimFunc, target: tvm.target.Target, trials: int, work: str) -> tuple[float, float]:
    """Best mean run time (ms) MetaSchedule found within ``trials``, and the tuning seconds."""
    start = time.perf_counter()
    database = ms.tune_tir(
        func,
        target,
        work_dir=work,
        max_trials_global=trials,
        num_trials_per_iter=min(16, trials),
        num_tuning_cores=1,
        runner=ms.runner.LocalRunner(evaluator_config=ms.runner.EvaluatorConfig(number=5, repeat=3)),
    )
    seconds = time.perf_counter() - start
    runs = [
        float(np.mean([float(s) for s in record.run_secs]))
        for record in database.get_all_tuning_records()
        if record.run_secs
    ]
    runs = [r for r in runs if r < 1e9]  # failed candidates are recorded as 1e10
    return (min(runs) * 1000.0 if runs else float("nan")), seconds


def onnxruntime_ms(channels: int, size: int, repeat: int = 50) -> float:
    """onnxruntime's time for the same convolution in NCHW, one thread, median of ``repeat``."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor("w", TensorProto.FLOAT, weight.shape, weight.ravel())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((1, channels, size, size)).astype(np.float32)
    session.run(None, {"x": x})
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        session.run(None, {"x": x})
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=48, help="MetaSchedule trials per convolution and layout")
    parser.add_argument("--stages", default="stage1,stage3", help=f"which of {', '.join(STAGES)}")
    parser.add_argument("--block", type=int, default=16, help="x of NCHW[x]c (16 floats = one AVX-512 vector)")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    target_dict = host_target()
    target = tvm.target.Target(target_dict)
    layouts = ["NCHW", "NHWC", f"NCHW{args.block}c"]
    print(f"target: {json.dumps(target_dict)}; {args.trials} trials per convolution and layout")
    rows = []
    for stage in args.stages.split(","):
        channels, size = STAGES[stage]
        row = {"stage": stage, "channels": channels, "size": size, "onnxruntime_ms": onnxruntime_ms(channels, size)}
        for layout in layouts:
            with tempfile.TemporaryDirectory() as work:
                with target:  # TOPI's NCHWc compute asks for the current target
                    func = conv(layout, channels, size, args.block)
                best, seconds = tuned_ms(func, target, args.trials, work)
            row[layout] = best
            row[f"{layout}_tune_s"] = seconds
            print(f"  {stage} {layout}: {best:.3f} ms after {args.trials} trials ({seconds:.0f} s)", flush=True)
        rows.append(row)
    head = "| conv (C, HxW) | onnxruntime ms | " + " | ".join(f"{lay} ms (x ort)" for lay in layouts) + " |"
    print("\n" + head + "\n|" + "---|" * (2 + len(layouts)))
    for row in rows:
        cells = [f"{row[lay]:.3f} ({row[lay] / row['onnxruntime_ms']:.2f}x)" for lay in layouts]
        name = f"{row['stage']} ({row['channels']}, {row['size']}x{row['size']})"
        print(f"| {name} | {row['onnxruntime_ms']:.3f} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"target": target_dict, "trials": args.trials, "rows": rows}, out, indent=2)


if __name__ == "__main__":
    main()
