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

    python benchmarks/layouts.py --branch --repeat 40

does the same for a whole N=2 ResNet18 branch as splitrun builds it (uint8 frames): built
with each shipped database of this CPU for that build (one per layout), pinned to one core,
timed alternately in this process, beside onnxruntime (one thread) on the same branch graph.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TVM_NUM_THREADS", "1")  # one core, as a board has

import tvm  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from ort_baseline import one_thread_session, weights_as_constants  # noqa: E402
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
    session = one_thread_session(model.SerializeToString())
    x = rng.standard_normal((1, channels, size, size)).astype(np.float32)
    session.run(None, {"x": x})
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        session.run(None, {"x": x})
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000.0


def branch_times(model: str, repeat: int) -> dict:
    """Median ms of one N=2 branch built with each of this CPU's databases (alternating), and onnxruntime's."""
    from splitnet.framework.compile import LocalModule, compile_part, to_onnx
    from splitnet.framework.targets import target_key
    from splitnet.framework.wire import DEFAULT_WIRE, with_wire
    from splitnet.partitioners import partition
    from splitnet.tuning.key import database_folders, key_for
    from splitnet.zoo import load_reference

    os.sched_setaffinity(0, {0})
    reference = load_reference(model)
    split = with_wire(partition(reference, 2, None, 8), DEFAULT_WIRE, reference.spec.preprocessing)
    branch, target = split.branches[0], host_target()
    key = key_for(split, target)
    found = {
        db.layout: folder
        for folder, db in database_folders()
        if key.same_build(db) and target_key(db.target) == target_key(target)
    }
    if not found:
        raise SystemExit(f"no database for {model} N=2 on {target.get('mcpu')}: run splitrun tune first")
    modules = {
        layout: LocalModule(compile_part(branch, target, database=folder, layout=layout))
        for layout, folder in sorted(found.items())
    }
    frame = np.random.default_rng(0).integers(0, 256, reference.spec.input_shape).astype(np.uint8)
    with tempfile.TemporaryDirectory() as scratch:
        model_onnx = to_onnx(branch, Path(scratch) / "branch.onnx")
    session = one_thread_session(weights_as_constants(model_onnx).SerializeToString())
    name = session.get_inputs()[0].name
    runs = {layout: (lambda m=m: m(frame)) for layout, m in modules.items()}
    runs["onnxruntime"] = lambda: session.run(None, {name: frame})
    answers = {layout: m(frame) for layout, m in modules.items()}
    reference_out = session.run(None, {name: frame})[0]
    times: dict[str, list[float]] = {what: [] for what in runs}
    for fn in runs.values():
        fn()
    for _ in range(repeat):  # alternating, so a busy spell on the machine hits every build alike
        for what, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[what].append(time.perf_counter() - start)
    medians = {what: float(np.median(t)) * 1000.0 for what, t in times.items()}
    diffs = {layout: float(np.abs(out - reference_out).max()) for layout, out in answers.items()}
    return {"databases": {k: v.name for k, v in found.items()}, "ms": medians, "max_abs_diff_vs_ort": diffs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=48, help="MetaSchedule trials per convolution and layout")
    parser.add_argument("--stages", default="stage1,stage3", help=f"which of {', '.join(STAGES)}")
    parser.add_argument("--block", type=int, default=16, help="x of NCHW[x]c (16 floats = one AVX-512 vector)")
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--branch", action="store_true", help="time a whole N=2 branch per shipped database instead")
    parser.add_argument("--model", default="resnet18_v1", help="with --branch (default resnet18_v1)")
    parser.add_argument("--repeat", type=int, default=40, help="with --branch: timed calls of each build")
    args = parser.parse_args()
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    if args.branch:
        result = branch_times(args.model, args.repeat)
        ort_ms = result["ms"]["onnxruntime"]
        print(f"one N=2 {args.model} branch, uint8 frame, one pinned core, medians of {args.repeat} alternating calls:")
        for what, ms_ in result["ms"].items():
            where = f" (database {result['databases'][what]})" if what in result["databases"] else ""
            diff = result["max_abs_diff_vs_ort"].get(what)
            extra = f", {ms_ / ort_ms:.2f}x onnxruntime, max abs diff {diff:.2e}" if diff is not None else ""
            print(f"  {what}: {ms_:.2f} ms{extra}{where}")
        if args.json:
            with open(args.json, "w") as out:
                json.dump(result, out, indent=2)
        return
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
