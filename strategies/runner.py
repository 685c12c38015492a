"""Run strategies on started boards: inputs checked first, boards started once, always stopped."""

from __future__ import annotations

from dataclasses import dataclass

import mxnet as mx
import numpy as np

from ..framework.console import console
from ..framework.images import Frame, load_frames
from ..framework.progress import stage_bars
from ..partitioners import ModelGraph, graph_from_block
from ..runtime.fleet import Fleet
from ..runtime.inventory import Inventory
from ..runtime.inventory_file import resolve_inventory
from ..zoo import Reference, load_reference
from .base import Context, Strategy, StrategyOptions, StrategyResult, get_strategy
from .registry import DEFAULT_STRATEGY
from .request import SplitRequest


@dataclass(frozen=True)
class Prepared:
    """Everything a strategy run needs except boards: built once, shared by every strategy."""

    request: SplitRequest
    inventory: Inventory
    reference: Reference
    graph: ModelGraph
    frames: list[Frame]
    image_source: str
    reference_logits: np.ndarray


def prepare(options: StrategyOptions, strategy: str = DEFAULT_STRATEGY) -> Prepared:
    """Check the request (as ``strategy`` needs it), read the images and inventory, run the reference."""
    run = options.run
    request = run.request(strategy)
    frames, image_source = load_frames(run.images, request.spec.input_shape, request.spec.preprocessing)
    inventory = resolve_inventory(run.inventory)
    reference = load_reference(run.model, seed=run.seed)
    graph = graph_from_block(reference.block, request.spec.input_shape)
    logits = np.concatenate([reference.block(mx.nd.array(f.tensor)).asnumpy() for f in frames])
    return Prepared(request, inventory, reference, graph, frames, image_source, logits)


def check_all(strategies: list[Strategy], options: StrategyOptions, prepared: Prepared) -> None:
    """Pure analysis each strategy can do without boards, so bad input fails before boards start."""
    for strategy in strategies:
        check = getattr(strategy, "check", None)
        if check is not None:
            check(prepared.graph, options)


def run_on(fleet: Fleet, strategies: list[Strategy], options: StrategyOptions, prepared: Prepared):
    """Each strategy in turn on the started ``fleet``."""
    results: list[StrategyResult] = []
    for strategy in strategies:
        context = Context(
            options,
            prepared.request,
            prepared.inventory,
            fleet,
            prepared.reference,
            prepared.graph,
            prepared.frames,
            prepared.image_source,
            prepared.reference_logits,
        )
        if strategy.name == "branch":  # the branch run shows its own progress
            results.append(strategy.run(context))
            continue
        console.print(f"[bold]{strategy.name}[/]: {strategy.summary}")
        with stage_bars() as progress:
            context.progress = progress
            results.append(strategy.run(context))
    return results


def run_strategies(names: list[str], options: StrategyOptions) -> list[StrategyResult]:
    """Each named strategy in turn on the same boards, model, images and frame counts."""
    strategies = [get_strategy(name) for name in names]  # an unknown name fails before any work
    prepared = prepare(options, DEFAULT_STRATEGY if DEFAULT_STRATEGY in names else names[0])
    check_all(strategies, options, prepared)
    with Fleet(prepared.inventory, wait_s=options.run.wait_s) as fleet:
        return run_on(fleet, strategies, options, prepared)


def run_strategy(name: str, options: StrategyOptions) -> StrategyResult:
    return run_strategies([name], options)[0]
