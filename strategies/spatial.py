"""The ``spatial`` strategy: fused tile partitioning of the early layers (DeepThings), the rest on one board.

The layers from the input to a cut point ``end`` are fused; ``end``'s map is cut into N
bands of rows, and board ``i`` computes band ``i`` from the input rows it needs (its halo,
:mod:`fused`). The host stitches the bands and one board runs the rest of the network.

Where to stop fusing is a trade: later layers have larger halos (redundant work on every
tile) and leave less for the single board at the end. Unless ``--fuse-until`` names the
layer, the cut point that minimises ``max tile FLOPs + rest FLOPs`` (boards of equal
speed, tiles in parallel, then the rest) is taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..framework.console import console
from ..framework.errors import SplitnetError
from ..framework.progress import Stopwatch
from ..framework.report import LatencyStats
from ..partitioners.graph import DATA, ModelGraph
from ..runtime.guard import submit
from .base import (
    Context,
    PieceReport,
    StrategyOptions,
    StrategyResult,
    accuracy_checks,
    register_strategy,
)
from .cuts import layer_range, range_part, tensor_bytes, tensor_shape
from .frames import Answers, sequential, verify_pass
from .fused import TileGraph, fusable_cuts, tile_graph, tile_part
from .pieces import LoadedPieces, Piece, board_for
from .tiles import Region, grid_regions, length


@dataclass(frozen=True)
class SpatialPlan:
    end: str  # the last fused layer (a cut point)
    tiles: tuple[TileGraph, ...]
    tile_flops: tuple[int, ...]
    rest_flops: int
    unsplit_fused_flops: int

    @property
    def estimate(self) -> int:
        return max(self.tile_flops) + self.rest_flops

    @property
    def redundancy(self) -> float:
        """Tile FLOPs summed over the fused layers' FLOPs unsplit (1.0: no halo overhead)."""
        return sum(self.tile_flops) / self.unsplit_fused_flops if self.unsplit_fused_flops else 1.0


def plan_tiles(graph: ModelGraph, end: str, n: int) -> SpatialPlan:
    shape = tensor_shape(graph, end)
    regions: list[Region] = grid_regions(shape[2], shape[3], n, 1)
    tiles = tuple(tile_graph(graph, end, region) for region in regions)
    fused = layer_range(graph, DATA, end)
    rest = layer_range(graph, end, graph.output)
    return SpatialPlan(end, tiles, tuple(t.flops(graph) for t in tiles), rest.flops, fused.flops)


def choose_plan(graph: ModelGraph, n: int, fuse_until: str | None) -> SpatialPlan:
    candidates = [c for c in fusable_cuts(graph) if c != graph.output]
    if fuse_until is not None:
        if fuse_until not in candidates:
            raise SplitnetError(
                f"--fuse-until {fuse_until} is not a cut point the tiles can reach",
                f"use one of: {', '.join(candidates) or '(none: the first layer cannot be tiled)'}",
            )
        return plan_tiles(graph, fuse_until, n)
    if not candidates:
        raise SplitnetError(
            f"no layer of {graph.output}'s model can be tiled from the input", "use --strategy pipeline or branch"
        )
    usable = [c for c in candidates if tensor_shape(graph, c)[2] >= n]
    if not usable:
        tallest = max(tensor_shape(graph, c)[2] for c in candidates)
        raise SplitnetError(
            f"{n} tiles but the largest tileable feature map has only {tallest} rows",
            f"use at most {tallest} tiles (--branches {tallest})",
        )
    return min((plan_tiles(graph, c, n) for c in usable), key=lambda p: p.estimate)


def _slice(x: np.ndarray, region: Region) -> np.ndarray:
    (r0, r1), (c0, c1) = region
    return np.ascontiguousarray(x[:, :, r0:r1, c0:c1])


@register_strategy
class SpatialStrategy:
    name = "spatial"
    summary = "early layers fused and cut into row tiles with halos across boards, the rest on one board"
    lossless = True

    def check(self, graph: ModelGraph, options: StrategyOptions) -> None:
        choose_plan(graph, options.run.branches, options.fuse_until)

    def run(self, context: Context) -> StrategyResult:
        options, graph, inventory = context.options.run, context.graph, context.inventory
        n = options.branches
        watch = Stopwatch()
        with watch.stage("partition"):
            plan = choose_plan(graph, n, context.options.fuse_until)
            pieces = [
                Piece(tile_part(graph, tile, f"tile{i}"), board_for(inventory, i), plan.tile_flops[i])
                for i, tile in enumerate(plan.tiles)
            ]
            rest = range_part(graph, plan.end, graph.output, "rest")
            pieces.append(Piece(rest, board_for(inventory, n), plan.rest_flops))
        console.print(
            f"spatial: {n} tiles of {plan.end} {tensor_shape(graph, plan.end)[1:]}, "
            f"halo overhead {plan.redundancy - 1:.0%} of the fused layers' FLOPs; the rest on {pieces[-1].board.name}",
            soft_wrap=True,
        )
        loaded = LoadedPieces(pieces, context.fleet.sessions(), context.progress)
        first_inputs: list[np.ndarray] = []

        def process(x: np.ndarray) -> np.ndarray:
            inputs = [_slice(x, tile.input_region) for tile in plan.tiles]
            if not first_inputs:
                first_inputs.extend(inputs)
            futures = [submit(loaded.call, i, xi, name=f"tile{i}") for i, xi in enumerate(inputs)]
            bands = [f.result() for f in futures]  # each call has its own deadline
            stitched = np.concatenate(bands, axis=2)
            if len(first_inputs) == n:
                first_inputs.append(stitched)
            logits = loaded.call(n, stitched)
            loaded.frame_done()
            return logits

        try:
            with watch.stage("compile"):
                loaded.compile()
            with watch.stage("upload"):
                loaded.upload()
            answers = Answers([], [], [])
            loaded.expect_frames(context.frames_sent)
            with watch.stage("verify pass"):
                verify_pass(context.frames, process, answers)
            loaded.settle_timeout(options.timeout_s)
            with watch.stage("timed frames"):
                before = loaded.sent.total
                sequential(context.frames, process, options.warmup, options.runs, answers)
                rpc_bytes = (loaded.sent.total - before) // (options.warmup + options.runs)
            with watch.stage("compute timing"):
                compute = [loaded.compute_ms(i, first_inputs[i]) for i in range(len(pieces))]
        finally:
            loaded.close()
        reference = context.reference_logits[answers.images]
        checks, diff, agree = accuracy_checks(answers.stacked(), reference, self.lossless, len(answers.images))
        in_bytes = [int(np.prod(p.part.input_shapes[0])) * 4 for p in pieces]
        out_bytes = [int(np.prod(p.part.output_shape)) * 4 for p in pieces]
        rows = ", ".join(f"{t.output[0][0]}-{t.output[0][1]}" for t in plan.tiles)
        return StrategyResult(
            strategy=self.name,
            model=options.model,
            n=n,
            inventory=inventory.description or inventory.source,
            images=context.image_source,
            lossless=self.lossless,
            pieces=tuple(
                PieceReport(p.part.name, p.board.name, p.flops, in_bytes[i], out_bytes[i], compute[i])
                for i, p in enumerate(pieces)
            ),
            latency=LatencyStats.of(answers.timed_s),
            throughput_fps=answers.throughput_fps,
            in_flight=1,
            rpc_bytes_per_frame=int(rpc_bytes),
            between_boards_bytes_per_frame=tensor_bytes(graph, plan.end),
            max_abs_diff=diff,
            top1_agreement=agree,
            frames=len(answers.images),
            checks=checks,
            detail=(
                f"fused up to {plan.end}; tile rows {rows} of {length((0, tensor_shape(graph, plan.end)[2]))}; "
                f"halo overhead {plan.redundancy - 1:.1%}"
            ),
            stage_seconds=dict(watch.seconds),
            compiled_parts=len(pieces),
            cache_hits=loaded.cache_hits,
        )
