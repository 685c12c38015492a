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
from splitnet.framework.targets import host_target
from splitnet.framework.verify import agreement, fidelity
from splitnet.partitioners import DEFAULT_MULTIPLE, SplitModel, graph_from_block, partition
from splitnet.partitioners.channels import normalise_shares
from splitnet.partitioners.cost import branch_cost_model
from splitnet.runtime import BoardSession, DistributedSplit, Inventory
from splitnet.runtime.fleet import DEFAULT_WAIT_S, Fleet
from splitnet.runtime.inventory_file import resolve_inventory
from splitnet.runtime.placement import Placement, check_strategy, needs_probe, place, validated
from splitnet.runtime.probe import ProbeResult, probe, relative_speeds
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
    inventory: Path | str | None = None  # None: the built-in two-PYNQ inventory
    placement: str | None = None  # None: the inventory's choice, else round-robin
    wait_s: float = DEFAULT_WAIT_S


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
        artifacts.append(compile_part(branch, board.build_target, board.build_format))
        progress.advance(task)
    head = compile_part(split.head, host_target())
    progress.advance(task)
    return artifacts, head


def _probe_all(sessions: dict[str, BoardSession], progress: Progress) -> list[ProbeResult]:
    task = progress.add_task("probe boards", total=len(sessions))
    results = []
    for board_session in sessions.values():
        results.append(probe(board_session))
        progress.advance(task)
    return results


def run(options: RunOptions) -> RunReport:
    normalise_shares(options.branches, options.widths)  # bad N or widths fail before any work
    watch = Stopwatch()
    with watch.stage("inputs"):  # bad --model, --images or inventory fail before any heavy work
        spec = get_model_spec(options.model)
        frame_list, image_source = load_frames(options.images, spec.input_shape)
        inventory = resolve_inventory(options.inventory)
        strategy = check_strategy(options.placement or inventory.placement or "round-robin", options.widths)
    with watch.stage("partition"):
        reference = load_reference(options.model, seed=options.seed)
        graph = graph_from_block(reference.block, spec.input_shape)
        cost = branch_cost_model(graph)
        if not needs_probe(strategy):  # pure analysis: a bad placement fails before boards start
            placement = place(strategy, options.branches, inventory, widths=options.widths, cost=cost)

    fleet = Fleet(inventory, wait_s=options.wait_s)
    with _progress() as progress:
        with watch.stage("start boards"):
            fleet.start()
        with fleet:
            sessions = fleet.sessions()
            runner = None
            try:
                probes: list[ProbeResult] = []
                if needs_probe(strategy):
                    with watch.stage("probe"):
                        probes = _probe_all(sessions, progress)
                    placement = place(strategy, options.branches, inventory, speeds=relative_speeds(probes), cost=cost)
                with watch.stage("partition"):
                    split = partition(reference, options.branches, placement.shares, options.multiple, graph=graph)
                    placement = validated(
                        placement, options.branches, inventory, tuple(b.params for b in split.plan.branches)
                    )
                with watch.stage("reference"):
                    ref_logits = np.concatenate([reference.block(mx.nd.array(f.tensor)).asnumpy() for f in frame_list])
                    split_logits = np.concatenate([split(f.tensor) for f in frame_list])
                with watch.stage("compile"):
                    artifacts, head_artifact = _compile_all(split, placement, inventory, progress)
                    head = LocalModule(head_artifact)
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
    input_bytes = int(np.prod(spec.input_shape)) * 4
    branch_reports = []
    for i, spec_b in enumerate(split.plan.branches):
        board = inventory.board(placement.branches[i])
        branch_reports.append(
            BranchReport(
                index=i,
                share=spec_b.share,
                feature_size=spec_b.feature_size,
                params=spec_b.params,
                flops=spec_b.flops,
                board=board.name,
                target=board.describe(),
                address=sessions[board.name].address_text,
                compute_ms=compute[i] * 1000.0,
                call=LatencyStats.of([c[i] for c in timed.branch_call_s]),
                link_ms=board.link.transfer_ms(input_bytes + spec_b.feature_size * 4) if board.link else None,
            )
        )
    e2e = LatencyStats.of(timed.total_s)
    return RunReport(
        model=options.model,
        params_source=reference.source,
        n=options.branches,
        multiple=options.multiple,
        inventory=inventory.description or inventory.source,
        inventory_source=inventory.source,
        emulated=inventory.emulated,
        target=", ".join(dict.fromkeys(b.target for b in branch_reports)),
        placement=placement.strategy,
        board_speeds=dict(placement.speeds),
        probe_gflops={p.board: p.gflops for p in probes},
        spares=placement.spares,
        images=image_source,
        branches=tuple(branch_reports),
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
