"""Training throughput of a model and its splits: images per second of wall and of CPU time.

What chose the Fashion-MNIST model's width: one command times SGD steps (forward, backward,
update, as ``splitrun train`` takes them) of the reference and of its N-way splits:

    python benchmarks/train_step.py --models resnet18_v1_thumb28_half,resnet18_v1_thumb16 --branches 2,4

The model runs at its own input size on random pixels (speed does not depend on them) with
seeded weights. CPU time is the process's own (``time.process_time``), so on a machine other
jobs share it says what a step costs, where wall time says what the machine gave.
"""

from __future__ import annotations

import argparse
import time
import warnings

import mxnet as mx
import numpy as np
from mxnet import autograd
from rich.console import Console
from rich.table import Table

from splitnet.partitioners import partition
from splitnet.training.distill import DistillLoss
from splitnet.training.loop import Schedule, _trainers
from splitnet.training.split_net import TrainableSplit, branch_dropout_mask
from splitnet.training.train import ReferenceLearner
from splitnet.zoo import load_reference


def _rate(learner, shape, batch: int, steps: int, distill: bool) -> tuple[float, float]:
    """(images/s of wall time, images/s of CPU time) over ``steps`` steps after 3 untimed ones."""
    rng = np.random.RandomState(0)
    x = mx.nd.array(rng.normal(size=(batch, *shape[1:])).astype(np.float32))
    y = mx.nd.array(rng.randint(0, 10, size=batch))
    soft = mx.nd.array(rng.normal(size=(batch, 10)).astype(np.float32)) if distill else None
    loss_fn = DistillLoss(0.5, 4.0) if distill else DistillLoss(alpha=0.0)
    trainers = _trainers(learner, Schedule(1, batch))
    for step in range(3 + steps):
        if step == 3:
            wall, cpu = time.perf_counter(), time.process_time()
        keep = branch_dropout_mask(batch, learner.branch_count, 0.2, rng)
        with autograd.record():
            loss = loss_fn(learner(x, keep), y, soft)
        loss.backward()
        for trainer in trainers.values():
            trainer.step(batch)
        loss.wait_to_read()
    images = batch * steps
    return images / (time.perf_counter() - wall), images / (time.process_time() - cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18_v1_thumb28_half")
    parser.add_argument("--branches", default="2,4")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--images", type=int, default=55000, help="images per epoch, for the epoch column")
    args = parser.parse_args(argv)
    table = Table(title=f"SGD steps of {args.batch} images ({args.steps} timed)")
    for column in ("model", "N", "input", "img/s wall", "img/s CPU", "CPU s per epoch"):
        table.add_column(column, justify="left" if column == "model" else "right")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model in args.models.split(","):
            reference = load_reference(model, classes=10)
            shape = reference.spec.input_shape
            for n in (1, *(int(v) for v in args.branches.split(","))):
                if n == 1:
                    learner, distill = ReferenceLearner(reference.block), False
                else:
                    learner = TrainableSplit(partition(reference, n, None, 8), prefix=reference.block.prefix)
                    distill = True
                wall, cpu = _rate(learner, shape, args.batch, args.steps, distill)
                size = "x".join(str(d) for d in shape[1:])
                table.add_row(model, str(n), size, f"{wall:.0f}", f"{cpu:.0f}", f"{args.images / cpu:.0f}")
    Console(highlight=False, width=140).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
