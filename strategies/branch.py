"""The ``branch`` strategy: the split network of :func:`splitnet.strategies.branch_run.run_branch`, as one strategy.

The branch run itself is unchanged; here it runs on boards the caller started (so compare
uses the same boards for every strategy) and its report is restated in the strategies'
terms. Its answers are the *split* model's, which differs from the unsplit one by design:
the distance to the unsplit model is measured on the in-process split that the boards ran
(its fine-tuned weights when they ship; the run has already checked that the boards'
answers equal it within 1e-4).
"""

from __future__ import annotations

import numpy as np

from ..framework.verify import Check
from .base import Context, PieceReport, StrategyResult, accuracy_checks
from .branch_run import run_branch
from .registry import register_strategy


@register_strategy
class BranchStrategy:
    name = "branch"
    summary = "N narrow independent branches and a merge head (the split network; not lossless)"
    lossless = False

    def run(self, context: Context) -> StrategyResult:
        options = context.options.run
        branch_run = run_branch(options, fleet=context.fleet, request=context.request)
        report, split = branch_run.report, branch_run.split
        shares = tuple(b.share for b in report.branches)
        logits = branch_run.split_logits  # the split the boards ran, over the same frames
        checks, diff, agree = accuracy_checks(logits, context.reference_logits, self.lossless, len(context.frames))
        input_bytes = int(np.prod(context.graph.input_shape)) * 4
        feature_bytes = sum(b.feature_size * 4 for b in report.branches)
        classes = split.head.output_shape[1]
        pieces = [
            PieceReport(f"branch{b.index}", b.board, b.flops, input_bytes, b.feature_size * 4, b.compute_ms)
            for b in report.branches
        ]
        pieces.append(PieceReport("head", "host", 0, feature_bytes, classes * 4, report.head_ms))
        run_checks = tuple(c for c in report.checks if not c.name.startswith("split vs unsplit"))
        return StrategyResult(
            strategy=self.name,
            model=options.model,
            n=options.branches,
            inventory=report.inventory,
            images=report.images,
            lossless=self.lossless,
            pieces=tuple(pieces),
            latency=report.end_to_end,
            throughput_fps=report.throughput_fps,
            in_flight=1,
            rpc_bytes_per_frame=len(report.branches) * input_bytes + feature_bytes,
            between_boards_bytes_per_frame=feature_bytes,
            max_abs_diff=diff,
            top1_agreement=agree,
            frames=report.frames,
            checks=(*run_checks, *(c for c in checks if c.name != "frames answered"), _split_note(report)),
            detail=f"placement {report.placement}, policy {report.policy}, shares "
            + ", ".join(f"{s:.3f}" for s in shares),
            stage_seconds=dict(report.stage_seconds),
            compiled_parts=report.compiled_parts,
            cache_hits=report.cache_hits,
        )


def _split_note(report) -> Check:
    return Check(
        name="accuracy source",
        value="in-process split",
        status="INFO",
        detail=f"the boards' answers equal it within {report.fidelity_max_abs_diff:.1e}; "
        f"weights: {report.params_source}",
    )
