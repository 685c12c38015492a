"""The branch run's checks and its :class:`~splitnet.framework.report.RunReport`.

Every frame answered is compared with the same split run in-process (exact frames within
1e-4, degraded ones against the split with the lost branches zeroed), every frame sent must
have an answer, and the split's top-1 is compared with the unsplit reference's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..framework.images import Frame
from ..framework.report import BranchReport, LatencyStats, RunReport
from ..framework.split_model import SplitModel
from ..framework.verify import FAIL, FIDELITY_ATOL, INFO, PASS, Check, agreement, fidelity, frames_answered
from ..framework.wire import frame_bytes
from ..runtime.chaos import Chaos
from ..runtime.inventory import Inventory
from ..runtime.probe import ProbeResult
from ..zoo import Reference
from .branch_frames import FrameRecord, TimedRuns
from .deploy import Deployment
from .options import RunOptions


@dataclass(frozen=True)
class Inputs:
    """What the run was given, as the report names it."""

    options: RunOptions
    reference: Reference
    inventory: Inventory
    frames: list[Frame]
    image_source: str
    fine_tuned: dict | None  # the manifest entry of the split's fine-tuned weights, if any


def degraded_check(degraded: list[FrameRecord], split: SplitModel, frames: list[Frame]) -> Check:
    """Degraded answers against the same split run in-process with the lost branches zeroed."""
    expected: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
    worst = 0.0
    for record in degraded:
        key = (record.image, record.lost)
        if key not in expected:
            features = split.features(frames[record.image].tensor)
            expected[key] = split.merge([np.zeros_like(f) if i in record.lost else f for i, f in enumerate(features)])
        worst = max(worst, float(np.max(np.abs(record.logits - expected[key]))))
    return Check(
        name="degraded frames vs in-process split without the lost branches",
        value=f"{len(degraded)} frames, max |diff| {worst:.2e}",
        status=PASS if worst <= FIDELITY_ATOL else FAIL,
        detail="flagged degraded: answered from the surviving branches",
    )


def checks(
    inputs: Inputs, split: SplitModel, timed: TimedRuns, split_logits: np.ndarray, ref_logits: np.ndarray
) -> tuple[list[Check], float, float]:
    """(checks, max |distributed - in-process|, top-1 agreement with the reference)."""
    exact = [f for f in timed.frames if not f.degraded]
    if exact:
        fidelity_check, diff = fidelity(
            np.concatenate([f.logits for f in exact]),
            np.concatenate([split_logits[f.image : f.image + 1] for f in exact]),
        )
    else:  # every frame degraded (a branch lost from the first frame on): nothing exact to compare
        fidelity_check, diff = (
            Check("distributed vs in-process split (MXNet)", "no exact frames", INFO, "all degraded"),
            0.0,
        )
    found = [fidelity_check, frames_answered(len(timed.frames), inputs.options.frames_sent(len(inputs.frames)))]
    degraded = [f for f in timed.frames if f.degraded]
    if degraded:
        found.append(degraded_check(degraded, split, inputs.frames))
    agreement_check, rate = agreement(split_logits, ref_logits, split.plan.n, inputs.reference.trained)
    return [*found, agreement_check], diff, rate


def run_report(
    inputs: Inputs,
    deployment: Deployment,
    timed: TimedRuns,
    compute: list[tuple[float, str]],  # per branch: on-board seconds, where measured (compute_s)
    probes: list[ProbeResult],
    chaos: Chaos,
    found: tuple[list[Check], float, float],
    stage_seconds: dict[str, float],
    tracker_events: tuple[dict, ...] = (),
) -> RunReport:
    options, inventory, split = inputs.options, inputs.inventory, deployment.split
    placement, runner = deployment.placement, deployment.runner
    checks_made, diff, rate = found
    modules = deployment.modules()
    input_bytes = frame_bytes(inputs.reference.spec.input_shape, options.wire)
    branch_reports = []
    for i, spec_b in enumerate(split.plan.branches):
        module = modules[i]
        board = inventory.board(module.board if module is not None else placement.branches[i])
        branch_reports.append(
            BranchReport(
                index=i,
                share=spec_b.share,
                feature_size=spec_b.feature_size,
                params=spec_b.params,
                flops=spec_b.flops,
                board=board.name,
                target=board.describe(),
                address=deployment.sessions[board.name].address_text if module is not None else "(lost)",
                compute_ms=compute[i][0] * 1000.0,
                compute_from=compute[i][1],
                call=LatencyStats.of([c[i] for c in timed.branch_call_s]),
                link_ms=board.link.transfer_ms(input_bytes + spec_b.feature_size * 4) if board.link else None,
            )
        )
    e2e = LatencyStats.of(timed.total_s)
    tuned = inputs.fine_tuned
    return RunReport(
        model=options.model,
        params_source=inputs.reference.source + (f"; split fine-tuned: {tuned['file']}" if tuned else ""),
        n=split.plan.n,
        multiple=split.plan.multiple,
        inventory=inventory.description or inventory.source,
        inventory_source=inventory.source,
        emulated=inventory.emulated,
        emulation={b.name: b.emulation_mode for b in inventory.boards if b.local},
        target=", ".join(dict.fromkeys(b.target for b in branch_reports)),
        placement=placement.strategy,
        board_speeds=dict(placement.speeds),
        probe_gflops={p.board: p.gflops for p in probes},
        spares=placement.spares,
        images=inputs.image_source,
        branches=tuple(branch_reports),
        head_ms=float(np.median(timed.head_s)) * 1000.0,
        end_to_end=e2e,
        throughput_fps=1000.0 / e2e.mean_ms if e2e.frames else 0.0,
        checks=tuple(checks_made),
        policy=runner.policy,
        timeout_s=runner.timeout_s,
        chaos=tuple(chaos.applied),
        faults=tuple(asdict(e) for e in runner.events),
        frames=len(timed.frames),
        frames_degraded=sum(f.degraded for f in timed.frames),
        worst_frame_ms=max(f.total_s for f in timed.frames) * 1000.0,
        dead_boards=tuple(sorted(runner.dead)),
        frame_ms=tuple(f.total_s * 1000.0 for f in timed.frames),
        depth=options.depth,
        tuning=deployment.tuning,
        steady_fps=timed.steady_fps,
        steady_host_cpu_ms=timed.steady_host_cpu_ms,
        parity_decodes=runner.parity_decodes,
        fidelity_max_abs_diff=diff,
        agreement_rate=rate,
        reference_flops=split.plan.reference_flops,
        stage_seconds=dict(stage_seconds),
        cache_hits=deployment.cache_hits,
        compiled_parts=deployment.compiled_parts,
        rejoins=tuple(asdict(r) for r in runner.rejoins),
        repairs=tuple(asdict(r) for r in runner.repairs.events),
        tracker=tracker_events,
        audit=runner.audit.summary() if runner.audit is not None else {},
        notes=tuple(runner.rejoiner.notes) if runner.rejoiner is not None else (),
        host_heads=runner.host_heads,
        wire=wire_summary(options.wire, input_bytes, deployment.sessions.values(), runner.frames),
        servers={b.name: b.server_kind for b in inventory.boards if b.local},
    )


def wire_summary(wire: str, input_bytes: int, sessions, frames: int) -> dict:
    """What the frames cost on the wire: bytes and copy time per frame sent, over every board,
    and how each board was sent them (``channel``, beside its session, or ``rpc``)."""
    sessions = list(sessions)
    return {
        "format": wire,
        "frame_bytes": input_bytes,
        "sent_bytes_per_frame": sum(s.sent_bytes for s in sessions) / max(frames, 1),
        "copy_ms_per_frame": sum(s.copy_s for s in sessions) * 1000.0 / max(frames, 1),
        "paths": {s.board.name: s.frame_path for s in sessions if s.copies},  # boards that were sent frames
    }
