"""The ``pipeline`` strategy: consecutive layer ranges on consecutive boards, frames pipelined.

The graph is cut at single-tensor cut points into N ranges of balanced FLOPs
(:func:`cuts.balanced_cuts`); stage ``i`` runs on board ``i mod boards``. Each stage has a
worker thread and an input queue, and up to N frames are in flight, so while board 1 runs
frame ``k`` through stage 1, board 0 already runs frame ``k+1`` through stage 0. Every stage
is the reference's own ops and weights, so the answer equals the unsplit model's.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from ..framework.console import console
from ..framework.progress import Stopwatch
from ..framework.report import LatencyStats
from ..partitioners.graph import ModelGraph
from .base import (
    Context,
    PieceReport,
    StrategyOptions,
    StrategyResult,
    accuracy_checks,
    register_strategy,
)
from .cuts import balanced_cuts, range_part
from .frames import Answers, verify_pass
from .pieces import LoadedPieces, Piece, board_for

_STOP = object()


def run_pipelined(
    loaded: LoadedPieces, inputs: list[np.ndarray], window: int, on_done: Callable[[], None] | None = None
) -> tuple[list, list[float], float]:
    """Push ``inputs`` through every stage, ``window`` frames in flight; (outputs, latencies, wall s)."""
    stages = len(loaded.pieces)
    queues: list[queue.Queue] = [queue.Queue() for _ in range(stages + 1)]
    slots = threading.Semaphore(window)
    failed = threading.Event()

    def worker(s: int) -> None:
        while True:
            item = queues[s].get()
            if item is _STOP:
                queues[s + 1].put(_STOP)
                return
            index, x, t0 = item
            if failed.is_set():
                continue
            try:
                queues[s + 1].put((index, loaded.call(s, x), t0))
            except BaseException as exc:  # noqa: BLE001 (handed to the collector, which raises it)
                failed.set()
                queues[stages].put(exc)

    def feeder() -> None:
        for i, x in enumerate(inputs):
            slots.acquire()
            if failed.is_set():
                break
            queues[0].put((i, x, time.perf_counter()))
        queues[0].put(_STOP)

    threads = [threading.Thread(target=worker, args=(s,), daemon=True, name=f"stage{s}") for s in range(stages)]
    threads.append(threading.Thread(target=feeder, daemon=True, name="feeder"))
    outputs: list = [None] * len(inputs)
    latencies: list[float] = [0.0] * len(inputs)
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        for _ in range(len(inputs)):
            item = queues[stages].get()
            if isinstance(item, BaseException):
                raise item
            index, y, t0 = item
            outputs[index], latencies[index] = y, time.perf_counter() - t0
            slots.release()
            if on_done is not None:
                on_done()
    finally:
        failed.set()
        for _ in range(window + 1):  # unblock the feeder so every thread ends
            slots.release()
    wall = time.perf_counter() - start
    return outputs, latencies, wall


@register_strategy
class PipelineStrategy:
    name = "pipeline"
    summary = "consecutive layer ranges (balanced FLOPs, cut at single-tensor cut points) on consecutive boards"
    lossless = True

    def stages(self, options: StrategyOptions) -> int:
        return options.run.branches

    def check(self, graph: ModelGraph, options: StrategyOptions) -> None:
        balanced_cuts(graph, self.stages(options))

    def run(self, context: Context) -> StrategyResult:
        options, graph, inventory = context.options.run, context.graph, context.inventory
        watch = Stopwatch()
        with watch.stage("partition"):
            ranges = balanced_cuts(graph, self.stages(context.options))
            pieces = [
                Piece(range_part(graph, r.start, r.end, f"stage{i}"), board_for(inventory, i), r.flops)
                for i, r in enumerate(ranges)
            ]
        loaded = LoadedPieces(pieces, context.fleet.sessions(), context.progress)
        try:
            with watch.stage("compile"):
                loaded.compile()
            with watch.stage("upload"):
                loaded.upload()
            cuts = ", ".join(r.end for r in ranges[:-1])
            if len(ranges) > 1:
                console.print(f"{self.name}: {len(pieces)} stages, cut after {cuts}")
            stage_inputs: list[np.ndarray] = []

            def chain(x: np.ndarray) -> np.ndarray:
                for s in range(len(pieces)):
                    if len(stage_inputs) < len(pieces):
                        stage_inputs.append(x)
                    x = loaded.call(s, x)
                loaded.frame_done()
                return x

            answers = Answers([], [], [])
            loaded.expect_frames(context.frames_sent)
            with watch.stage("verify pass"):
                verify_pass(context.frames, chain, answers)
            loaded.settle_timeout(options.timeout_s)
            window = len(pieces)
            images = [(options.warmup + i) % len(context.frames) for i in range(options.runs)]
            with watch.stage("timed frames"):
                if options.warmup:
                    warm = [i % len(context.frames) for i in range(options.warmup)]
                    out, _, _ = run_pipelined(
                        loaded, [context.frames[i].tensor for i in warm], window, loaded.frame_done
                    )
                    answers.images += warm
                    answers.logits += out
                before = loaded.sent.total
                out, latencies, wall = run_pipelined(
                    loaded, [context.frames[i].tensor for i in images], window, loaded.frame_done
                )
                rpc_bytes = (loaded.sent.total - before) // options.runs
            answers.images += images
            answers.logits += out
            with watch.stage("compute timing"):
                compute = [loaded.compute_ms(s, stage_inputs[s]) for s in range(len(pieces))]
        finally:
            loaded.close()
        reference = context.reference_logits[answers.images]
        checks, diff, agree = accuracy_checks(answers.stacked(), reference, self.lossless, len(answers.images))
        return StrategyResult(
            strategy=self.name,
            model=options.model,
            n=len(pieces),
            inventory=inventory.description or inventory.source,
            images=context.image_source,
            lossless=self.lossless,
            pieces=tuple(
                PieceReport(p.part.name, p.board.name, p.flops, r.in_bytes, r.out_bytes, compute[i])
                for i, (p, r) in enumerate(zip(pieces, ranges, strict=True))
            ),
            latency=LatencyStats.of(latencies),
            throughput_fps=options.runs / wall if wall > 0 else 0.0,
            in_flight=window,
            rpc_bytes_per_frame=int(rpc_bytes),
            between_boards_bytes_per_frame=sum(r.out_bytes for r in ranges[:-1]),
            max_abs_diff=diff,
            top1_agreement=agree,
            frames=len(answers.images),
            checks=checks,
            detail=f"cut after {cuts}" if len(ranges) > 1 else f"the whole model on {pieces[0].board.name}",
            stage_seconds=dict(watch.seconds),
            compiled_parts=len(pieces),
            cache_hits=loaded.cache_hits,
        )


@register_strategy
class SingleStrategy(PipelineStrategy):
    """The baseline the others are measured against: a one-stage pipeline, the whole model on board 0."""

    name = "single"
    summary = "the unsplit model on one board (the baseline)"
    lossless = True

    def stages(self, options: StrategyOptions) -> int:
        return 1
