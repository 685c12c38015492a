"""The end-to-end job: reference -> plan -> split model -> compile -> boards -> run -> checks.

Each stage hands the next a typed object (see ../shared/DESIGN.md); this module only wires
them together, times them and shows progress. Boards started here are always stopped.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import mxnet as mx
import numpy as np
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from splitnet.framework.compile import CompiledArtifact, LocalModule, compile_part
from splitnet.framework.console import console
from splitnet.framework.images import Frame, load_frames
from splitnet.framework.report import BranchReport, LatencyStats, RunReport
from splitnet.framework.targets import describe, host_target
from splitnet.framework.verify import agreement, fidelity
from splitnet.partitioners import DEFAULT_MULTIPLE, SplitModel, partition
from splitnet.partitioners.channels import normalise_shares
from splitnet.runtime import DistributedSplit, Inventory, LocalCluster, acquire, default_inventory
from splitnet.runtime.placement import Placement, place_round_robin, validated
from splitnet.zoo import get_model_spec, load_reference


@dataclass(frozen=True)
class RunOptions:
    model: str = "resnet18_v1"
    branches: int = 2
    widths: tuple[float, ...] | None = None
    multiple: int = DEFAULT_MULTIPLE
    images: Path | None = None
    runs: int = 20
    warmup: int = 3
    seed: int = 0
    compute_repeat: int = 5


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


class Stopwatch:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def _compile_all(split: SplitModel, placement: Placement, inventory: Inventory, progress: Progress):
    parts = [*split.branches, split.head]
    task = progress.add_task("export + compile", total=len(parts))
    artifacts: list[CompiledArtifact] = []
    for i, branch in enumerate(split.branches):
        board = inventory.board(placement.branches[i])
        artifacts.append(compile_part(branch, board.target, board.export_format))
        progress.advance(task)
    head = compile_part(split.head, host_target())
    progress.advance(task)
    return artifacts, head


def run(options: RunOptions) -> RunReport:
    normalise_shares(options.branches, options.widths)  # bad N or widths fail before any work
    watch = Stopwatch()
    with watch.stage("frames"):  # bad --model or --images fail before any heavy work
        spec = get_model_spec(options.model)
        frame_list, image_source = load_frames(options.images, spec.input_shape)
    with watch.stage("partition"):
        reference = load_reference(options.model, seed=options.seed)
        split = partition(reference, options.branches, options.widths, options.multiple)
    inventory = default_inventory(options.branches)
    placement = validated(place_round_robin(options.branches, inventory), options.branches, inventory)

    with watch.stage("reference"):
        ref_logits = np.concatenate([reference.block(mx.nd.array(f.tensor)).asnumpy() for f in frame_list])
        split_logits = np.concatenate([split(f.tensor) for f in frame_list])

    with _progress() as progress:
        with watch.stage("compile"):
            artifacts, head_artifact = _compile_all(split, placement, inventory, progress)
            head = LocalModule(head_artifact)
        cluster = LocalCluster(inventory.boards)
        with watch.stage("start boards"):
            cluster.start()
        with cluster:
            used = [inventory.board(name) for name in placement.boards_used()]
            sessions = acquire(cluster.host, cluster.tracker_port, used, cluster.address_of())
            runner = None
            try:
                upload = progress.add_task("upload", total=len(artifacts))
                modules = []
                with watch.stage("upload"):
                    for i, artifact in enumerate(artifacts):
                        modules.append(sessions[placement.branches[i]].load(artifact))
                        progress.advance(upload)
                runner = DistributedSplit(modules, head)
                timed = _run_frames(runner, frame_list, options, progress, watch)
                compute = [
                    float(np.median(m.compute_times(frame_list[0].tensor, repeat=options.compute_repeat)))
                    for m in modules
                ]
            finally:
                if runner is not None:
                    runner.close()
                for board_session in sessions.values():
                    board_session.close()
    fidelity_check, diff = fidelity(timed.logits, split_logits)
    agreement_check, rate = agreement(split_logits, ref_logits, options.branches, reference.trained)
    branch_reports = tuple(
        BranchReport(
            index=i,
            share=spec_b.share,
            feature_size=spec_b.feature_size,
            params=spec_b.params,
            flops=spec_b.flops,
            board=placement.branches[i],
            address=sessions[placement.branches[i]].address_text,
            compute_ms=compute[i] * 1000.0,
            call=LatencyStats.of([c[i] for c in timed.branch_call_s]),
        )
        for i, spec_b in enumerate(split.plan.branches)
    )
    e2e = LatencyStats.of(timed.total_s)
    return RunReport(
        model=options.model,
        params_source=reference.source,
        n=options.branches,
        multiple=options.multiple,
        inventory=inventory.description,
        emulated=True,
        target=describe(inventory.boards[0].target),
        images=image_source,
        branches=branch_reports,
        head_ms=float(np.median(timed.head_s)) * 1000.0,
        end_to_end=e2e,
        throughput_fps=1000.0 / e2e.mean_ms if e2e.frames else 0.0,
        checks=(fidelity_check, agreement_check),
        fidelity_max_abs_diff=diff,
        agreement_rate=rate,
        reference_flops=split.plan.reference_flops,
        stage_seconds=dict(watch.seconds),
        cache_hits=sum(a.cached for a in [*artifacts, head_artifact]),
        compiled_parts=len(artifacts) + 1,
    )


@dataclass(frozen=True)
class TimedRuns:
    logits: np.ndarray  # one verified pass over every frame, in frame order
    branch_call_s: list[tuple[float, ...]]
    total_s: list[float]
    head_s: list[float]


def _run_frames(runner: DistributedSplit, frames: list[Frame], options: RunOptions, progress: Progress, watch):
    """One verified pass over every frame, then warm-up and timed frames (cycling)."""
    task = progress.add_task("frames", total=len(frames) + options.warmup + options.runs)
    with watch.stage("verify pass"):
        distributed = []
        for frame in frames:
            distributed.append(runner(frame.tensor).logits)
            progress.advance(task)
    timed = TimedRuns(np.concatenate(distributed), [], [], [])
    with watch.stage("timed frames"):
        for i in range(options.warmup + options.runs):
            result = runner(frames[i % len(frames)].tensor)
            if i >= options.warmup:
                timed.branch_call_s.append(result.branch_call_s)
                timed.total_s.append(result.total_s)
                timed.head_s.append(result.head_s)
            progress.advance(task)
    return timed
