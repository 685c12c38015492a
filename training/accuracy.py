"""``splitrun accuracy``: what splitting costs in accuracy, in-process and through the boards.

For the unsplit model (N=1) and each N: top-1 and top-5 on the held-out split, the drop in
top-1 against the unsplit model, top-1 agreement with the reference, and top-1 with one
branch lost (its features zeroed: the ``degrade`` policy's answers). Splits use their
fine-tuned weights from the params manifest when there are some, else the sliced reference
weights (and say so). The same figures are then measured through the distributed runtime on
the inventory's boards (by default two local PYNQ boards emulated by real RPC servers), with
the mean frame time; speedup is the N=1 frame time over the N frame time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..framework.console import console, notice
from ..framework.errors import SplitnetError
from ..framework.progress import eval_bars
from ..framework.shares import DEFAULT_MULTIPLE
from ..framework.verify import FIDELITY_ATOL
from ..runtime.fleet import DEFAULT_WAIT_S, Fleet
from ..runtime.inventory_file import resolve_inventory
from ..strategies.request import SplitRequest, requests_for
from ..zoo import find_entry, load_reference
from .data import load_splits
from .evaluate import InProcess, in_process, on_boards, reference_logits
from .metrics import agreement, topk_accuracy
from .train import DEFAULT_DATASET, DEFAULT_MODEL

TARGET_DROP = {2: 0.02, 4: 0.05}  # the digits issue's targets: top-1 within 2 points (N=2), 5 points (N=4)
# a harder data set, stricter targets (issue 15): N=2 within 1 point, N=4 within 2, and one lost
# branch of N=2 costing under 10 points (its top-1 intact minus its top-1 without the worst branch)
TARGETS_BY_DATASET = {"fashion-mnist": ({2: 0.01, 4: 0.02}, {2: 0.10})}


def targets_for(dataset: str) -> tuple[dict[int, float], dict[int, float]]:
    """(drop targets, lost-branch targets) by N for ``dataset``: its own, else the digits ones."""
    return TARGETS_BY_DATASET.get(dataset, (TARGET_DROP, {}))


@dataclass(frozen=True)
class AccuracyOptions:
    model: str = DEFAULT_MODEL
    dataset: str = DEFAULT_DATASET
    branches: tuple[int, ...] = (2, 4)
    multiple: int = DEFAULT_MULTIPLE
    boards: bool = True
    limit: int | None = None  # held-out images sent through the boards (None: all)
    inventory: str | Path | None = None
    wait_s: float = DEFAULT_WAIT_S
    seed: int = 0


@dataclass(frozen=True)
class Row:
    """One N, measured in one place (``in-process`` or ``boards``)."""

    n: int
    where: str
    images: int
    top1: float
    top5: float
    drop: float  # unsplit top-1 minus this top-1, on the same images and in the same place
    agreement: float  # top-1 equal to the unsplit reference's
    degraded_top1: float | None  # one branch lost (mean over branches in-process; the last on the boards)
    degraded_worst: float | None
    weights: str
    frame_ms: float | None = None
    speedup: float | None = None
    fidelity: float | None = None  # boards vs in-process, max |diff|
    target_drop: float | None = None
    tuning: tuple[str, ...] = ()  # boards: which tuning database each build used, or why none
    target_lost: float | None = None  # bound on lost_cost, where the data set sets one

    @property
    def meets_target(self) -> bool | None:
        return None if self.target_drop is None else self.drop <= self.target_drop + 1e-12

    @property
    def lost_cost(self) -> float | None:
        """What losing the worst branch costs: this top-1 minus the top-1 without that branch."""
        return None if self.degraded_worst is None else self.top1 - self.degraded_worst

    @property
    def meets_lost_target(self) -> bool | None:
        if self.target_lost is None or self.lost_cost is None:
            return None
        return self.lost_cost <= self.target_lost + 1e-12


@dataclass(frozen=True)
class AccuracyReport:
    model: str
    dataset: str
    test_images: int
    params_source: str
    trained: bool
    inventory: str
    rows: tuple[Row, ...]
    training: tuple[dict, ...] = field(default_factory=tuple)  # manifest entries used (commands, times)
    seconds: float = 0.0

    @property
    def fidelity_ok(self) -> bool:
        return all(r.fidelity is None or r.fidelity <= FIDELITY_ATOL for r in self.rows)


def _row(n, where, labels, logits, ref, unsplit_top1, degraded, weights, targets, **extra) -> Row:
    top1 = topk_accuracy(logits, labels, 1)
    drop_targets, lost_targets = targets
    scores = [topk_accuracy(d, labels, 1) for d in degraded]
    return Row(
        n=n,
        where=where,
        images=len(labels),
        top1=top1,
        top5=topk_accuracy(logits, labels, 5),
        drop=unsplit_top1 - top1 if unsplit_top1 is not None else 0.0,
        agreement=agreement(logits, ref),
        degraded_top1=float(np.mean(scores)) if scores else None,
        degraded_worst=float(np.min(scores)) if scores else None,
        weights=weights,
        target_drop=drop_targets.get(n),
        target_lost=lost_targets.get(n),
        **extra,
    )


def check(options: AccuracyOptions) -> dict[int, SplitRequest]:
    """The checked request of every N measured (N=1, the unsplit model, always)."""
    by_n = {r.n: r for r in requests_for(options.model, (*options.branches, 1), options.multiple)}
    requests = {n: by_n[n] for n in (1, *sorted(n for n in options.branches if n != 1))}
    if options.limit is not None and options.limit < 1:
        raise SplitnetError(f"--limit must be at least 1, got {options.limit}", "e.g. --limit 100, or leave it out")
    return requests


def measure(options: AccuracyOptions) -> AccuracyReport:
    requests = check(options)
    began = time.perf_counter()
    spec = requests[1].spec
    inventory = resolve_inventory(options.inventory) if options.boards else None
    test = load_splits(options.dataset, spec.input_shape, spec.preprocessing).test
    reference = load_reference(options.model, classes=len(test.classes), seed=options.seed)
    targets = targets_for(options.dataset)
    if not reference.trained:
        notice(f"{options.model} has no trained weights for {len(test.classes)} classes: run splitrun train first")
    else:
        trained_on = (find_entry(options.model, reference.classes) or {}).get("dataset")
        if trained_on not in (None, options.dataset):
            notice(
                f"{options.model}'s weights were trained on {trained_on}, not {options.dataset}: the figures "
                f"measure them on images they never learned (train on {options.dataset} first, or pick its --model)"
            )
    ns = list(requests)
    splits, entries, weights = {}, [], {}
    for n, request in requests.items():
        split, entry = request.split(reference)
        splits[n] = split
        if n == 1:
            weights[n] = reference.source
            shipped = find_entry(options.model, reference.classes) if reference.trained else None
            entries += [shipped] if shipped else []
        elif entry is not None:
            weights[n] = f"fine-tuned ({entry['file']})"
            entries.append(entry)
        else:
            weights[n] = "sliced reference, not fine-tuned"
            notice(f"no fine-tuned N={n} split of {options.model} in the params manifest: using sliced weights")
    ref = reference_logits(reference.block, test.images)
    rows: list[Row] = []
    local: dict[int, InProcess] = {}
    for n in ns:
        result = in_process(splits[n], test.images)
        local[n] = result
        unsplit = rows[0].top1 if rows else None
        rows.append(
            _row(n, "in-process", test.labels, result.logits, ref, unsplit, result.degraded, weights[n], targets)
        )
    if options.boards:
        count = len(test) if options.limit is None else min(options.limit, len(test))
        images, labels = test.images[:count], test.labels[:count]
        fleet = Fleet(inventory, wait_s=options.wait_s)
        with eval_bars() as progress:
            fleet.start()
            with fleet:
                sessions = fleet.sessions()
                try:
                    board_rows: list[Row] = []
                    for n in ns:
                        expected = local[n]
                        subset = InProcess(expected.logits[:count], tuple(d[:count] for d in expected.degraded))
                        result = on_boards(
                            splits[n], images, inventory, sessions, subset, progress, f"boards N={n} ({count})"
                        )
                        frame_ms = float(np.mean(result.frame_s)) * 1000.0
                        base = board_rows[0] if board_rows else None
                        board_rows.append(
                            _row(
                                n,
                                "boards",
                                labels,
                                result.logits,
                                ref[:count],
                                base.top1 if base else None,
                                [] if result.degraded is None else [result.degraded],
                                f"{weights[n]} on {', '.join(dict.fromkeys(result.boards))}",
                                targets,
                                frame_ms=frame_ms,
                                speedup=(base.frame_ms / frame_ms) if base else 1.0,
                                fidelity=result.fidelity,
                                tuning=result.tuning,
                            )
                        )
                    rows.extend(board_rows)
                finally:
                    for board_session in sessions.values():
                        board_session.close()
    console.print(f"measured in {time.perf_counter() - began:.0f} s")
    return AccuracyReport(
        model=options.model,
        dataset=test.description,
        test_images=len(test),
        params_source=reference.source,
        trained=reference.trained,
        inventory="" if inventory is None else (inventory.description or inventory.source),
        rows=tuple(rows),
        training=tuple(entries),
        seconds=time.perf_counter() - began,
    )
