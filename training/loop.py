"""The epoch loop every stage shares: SGD with momentum, a cosine learning rate, a checkpoint
per epoch, and a progress bar showing the running loss and accuracy.

A *learner* is the reference or a :class:`TrainableSplit`: it has named Gluon blocks (one
Trainer each, so equal parameter names in different branches never meet), a forward, and
``params()`` / ``load()`` for checkpoints. The learning rate is a pure function of the
epoch and the batch order is drawn from a generator seeded by (seed, epoch), which is what
makes a resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..framework.console import console, notice
from . import checkpoint
from .data import LabelledSet
from .distill import DistillLoss
from .metrics import predict
from .split_net import branch_dropout_mask


class Learner(Protocol):
    branch_count: int  # 0 for the unsplit reference (no branch dropout)

    @property
    def names(self) -> list[str]: ...

    @property
    def blocks(self) -> list[gluon.Block]: ...

    def __call__(self, x: mx.nd.NDArray, keep: np.ndarray | None = None) -> mx.nd.NDArray: ...

    def params(self) -> dict[str, dict[str, np.ndarray]]: ...

    def load(self, weights: dict[str, dict[str, np.ndarray]]) -> None: ...


@dataclass(frozen=True)
class Schedule:
    epochs: int
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    branch_dropout: float = 0.0

    def lr_at(self, epoch: int) -> float:
        """Cosine decay from ``lr`` to 0 over the epochs (epoch counts from 0)."""
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / max(self.epochs, 1)))


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    loss: float
    train_top1: float
    test_top1: float
    lr: float
    seconds: float


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:6.2%}  held-out {task.fields[held]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _trainers(learner: Learner, schedule: Schedule) -> dict[str, gluon.Trainer]:
    options = {"learning_rate": schedule.lr, "momentum": schedule.momentum, "wd": schedule.weight_decay}
    return {
        name: gluon.Trainer(block.collect_params(), "sgd", options, kvstore=None)
        for name, block in zip(learner.names, learner.blocks, strict=True)
    }


def fit(
    stage: str,
    learner: Learner,
    train: LabelledSet,
    test: LabelledSet,
    schedule: Schedule,
    loss_fn: DistillLoss,
    teacher: np.ndarray | None,
    folder: Path,
    fingerprint: dict,
    resume: bool,
    progress: Progress,
) -> list[EpochRecord]:
    """Train ``learner`` for ``schedule.epochs`` (continuing a checkpoint when ``resume``)."""
    trainers = _trainers(learner, schedule)
    fingerprint = {**fingerprint, **asdict(schedule), "stage": stage, "train_images": len(train)}
    history: list[dict] = []
    start_epoch = 0
    if resume:
        state = checkpoint.load(folder, fingerprint, trainers)
        if state is not None:
            learner.load(state.weights)
            start_epoch, history = state.epoch, state.history
    elif (folder / checkpoint.STATE).exists():
        notice(f"{stage}: starting afresh over the checkpoint in {folder} (--resume continues it)")
    steps = math.ceil(len(train) / schedule.batch_size)
    held = f"{history[-1]['test_top1']:6.2%}" if history else "   -  "
    last = history[-1] if history else {"loss": 0.0, "train_top1": 0.0}
    task = progress.add_task(
        stage,
        total=schedule.epochs * steps,
        completed=start_epoch * steps,
        loss=last["loss"],
        acc=last["train_top1"],
        held=held,
    )
    for epoch in range(start_epoch, schedule.epochs):
        began = time.perf_counter()
        lr = schedule.lr_at(epoch)
        for trainer in trainers.values():
            trainer.set_learning_rate(lr)
        rng = np.random.RandomState([schedule.seed, epoch])
        order = rng.permutation(len(train))
        loss_sum, correct, seen = 0.0, 0, 0
        for step in range(steps):
            idx = order[step * schedule.batch_size : (step + 1) * schedule.batch_size]
            x = mx.nd.array(train.images[idx])
            y = mx.nd.array(train.labels[idx])
            soft = None if teacher is None else mx.nd.array(teacher[idx])
            keep = branch_dropout_mask(len(idx), learner.branch_count, schedule.branch_dropout, rng)
            with autograd.record():
                logits = learner(x, keep)
                loss = loss_fn(logits, y, soft)
            loss.backward()
            for trainer in trainers.values():
                trainer.step(len(idx))
            loss_sum += float(loss.sum().asscalar())
            correct += int((logits.argmax(axis=1).asnumpy().astype(np.int64) == train.labels[idx]).sum())
            seen += len(idx)
            progress.update(task, advance=1, loss=loss_sum / seen, acc=correct / seen)
        test_top1 = float(np.mean(predict(learner, test.images).argmax(axis=1) == test.labels))
        record = EpochRecord(epoch + 1, loss_sum / seen, correct / seen, test_top1, lr, time.perf_counter() - began)
        history.append(asdict(record))
        progress.update(task, held=f"{test_top1:6.2%}")
        checkpoint.save(folder, epoch + 1, history, fingerprint, learner.params(), trainers)
    return [EpochRecord(**h) for h in history]
