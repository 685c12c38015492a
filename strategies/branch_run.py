"""The branch strategy's stages, end to end: request -> reference -> place -> split -> deploy -> frames -> checks.

Each stage hands the next a typed object (see ../shared/DESIGN.md): a checked
:class:`~splitnet.strategies.request.SplitRequest`, the reference and its graph, a
:class:`~splitnet.runtime.placement.Placement`, a :class:`~splitnet.framework.split_model.SplitModel`
(with its fine-tuned weights when they ship), a :class:`~splitnet.strategies.deploy.Deployment`,
the answered frames, and the :class:`~splitnet.framework.report.RunReport`. This module only
wires them together, times them and shows progress. Boards started here are always stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

import mxnet as mx
import numpy as np

from ..framework.images import load_frames
from ..framework.progress import Stopwatch, run_bars
from ..framework.report import RunReport
from ..framework.split_model import SplitModel
from ..framework.wire import with_wire
from ..partitioners import graph_from_block
from ..partitioners.cost import branch_cost_model
from ..runtime.chaos import Chaos
from ..runtime.fleet import Fleet
from ..runtime.inventory_file import resolve_inventory
from ..runtime.policies import DEFAULT_POLICY
from ..zoo import load_reference
from .branch_frames import compute_s, run_frames
from .branch_predictions import board_predictions
from .branch_report import Inputs, checks, run_report
from .deploy import Deployment, close_sessions, deploy, place_branches
from .options import RunOptions
from .request import SplitRequest


@dataclass(frozen=True)
class BranchRun:
    """A finished branch run: the report, and the split that ran (the weights the boards had)."""

    report: RunReport
    split: SplitModel
    split_logits: np.ndarray  # the split in-process (MXNet), one row per image of the verify pass
    reference_logits: np.ndarray  # the unsplit reference, same rows


def run(options: RunOptions, fleet: Fleet | None = None) -> RunReport:
    """``splitrun run``: the report of one branch run (see :func:`run_branch`)."""
    return run_branch(options, fleet).report


def run_branch(options: RunOptions, fleet: Fleet | None = None, request: SplitRequest | None = None) -> BranchRun:
    """The branch run; ``fleet``: boards already started by the caller (left running), e.g. by compare.

    ``request``: the options' split, checked already by the caller (compare checks it once
    for every strategy); else it is checked here, before any work.
    """
    request = request or options.request()
    watch = Stopwatch()
    with watch.stage("inputs"):  # bad --images or inventory fail before any heavy work
        frame_list, image_source = load_frames(options.images, request.spec.input_shape, request.spec.preprocessing)
        inventory = resolve_inventory(options.inventory)
        policy = options.policy or inventory.policy or DEFAULT_POLICY
    with watch.stage("partition"):
        reference = load_reference(request.model, seed=options.seed)
        graph = graph_from_block(reference.block, request.spec.input_shape)
        cost = branch_cost_model(graph)
        # Pure analysis, so a bad placement fails before boards start (None: profile probes them first).
        placement, probes = place_branches(request, inventory, cost)

    owned = fleet is None
    fleet = fleet or Fleet(inventory, wait_s=options.wait_s)
    chaos = Chaos(list(options.chaos), inventory, fleet.cluster)  # a bad --chaos fails before boards start
    with run_bars() as progress:
        with watch.stage("start boards"):
            if owned:
                fleet.start()
        with fleet if owned else contextlib.nullcontext():
            sessions = fleet.sessions()
            deployment: Deployment | None = None
            try:
                if placement is None:
                    with watch.stage("probe"):
                        placement, probes = place_branches(request, inventory, cost, sessions, progress)
                with watch.stage("partition"):
                    split, tuned = request.split(reference, placement.shares, graph)  # fine-tuned, when shipped
                    split = with_wire(split, options.wire, request.spec.preprocessing)
                with watch.stage("reference"):
                    ref_logits = np.concatenate([reference.block(mx.nd.array(f.tensor)).asnumpy() for f in frame_list])
                    # fed what the boards are fed: with uint8 frames its branches normalise them first
                    split_logits = np.concatenate([split(f.on_wire(options.wire)) for f in frame_list])
                deployment = deploy(
                    split, placement, inventory, sessions, policy, progress, watch, options.audit, fleet.reacquire
                )
                timed = run_frames(deployment.runner, frame_list, options, progress, watch, chaos)
                x = frame_list[0].on_wire(options.wire)
                compute = [
                    compute_s(i, m, x, options.compute_repeat, timed.ran_s.get(m, ()), options.runs)
                    for i, m in enumerate(deployment.modules())
                ]
            finally:
                if deployment is not None:
                    deployment.close()  # not a dead board's session: closing talks to the board
                else:
                    close_sessions(sessions)
    inputs = Inputs(options, reference, inventory, frame_list, image_source, tuned)
    found = checks(inputs, split, timed, split_logits, ref_logits)
    report = run_report(inputs, deployment, timed, compute, probes, chaos, found, watch.seconds, fleet.tracker_events)
    if options.images is not None:
        shown = board_predictions(frame_list, reference.classes, timed, split_logits, ref_logits)
        report = dataclasses.replace(report, predictions=shown)
    return BranchRun(report, split, split_logits, ref_logits)
