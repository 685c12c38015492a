"""``splitrun train``: train the reference, then fine-tune its N-way splits, and store both.

1. The reference is trained from a seeded Xavier init on the training split (label loss);
   the progress bar watches the validation slice when the data set has its own test split
   (Fashion-MNIST), else the held-out split. Recorded figures are always on the test split.
2. For each N, the partitioner slices the trained reference into N branches and a head
   (``partition``: the same plan the runtime uses), and the split is fine-tuned with the label
   loss plus distillation from the reference (:mod:`distill`); with ``--branch-dropout`` the
   head also learns to answer with one branch's features zeroed.
3. Weights are stored as float16 in ``--out`` with manifest entries (model, N, widths, data
   set, epochs, seed, held-out accuracy of the stored weights, sha256, the command), so
   ``SPLITNET_PARAMS_DIR=OUT splitrun ...`` uses them; ``--out params`` updates what ships.

Every stage checkpoints each epoch under ``OUT/checkpoints``; ``--resume`` continues there.
"""

from __future__ import annotations

import shlex
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import mxnet as mx
import numpy as np

from ..framework.console import console
from ..framework.errors import SplitnetError
from ..framework.shares import DEFAULT_MULTIPLE
from ..partitioners import partition
from ..strategies.request import SplitRequest
from ..zoo import ModelSpec, Reference, get_model_spec
from . import store
from .data import LabelledSet, Splits, load_splits
from .distill import DEFAULT_ALPHA, DEFAULT_TEMPERATURE, DistillLoss
from .loop import EpochRecord, Schedule, fit, progress_bar
from .metrics import predict, topk_accuracy
from .split_net import TrainableSplit

DEFAULT_MODEL = "resnet18_v1_thumb16"
DEFAULT_DATASET = "digits"


@dataclass(frozen=True)
class TrainOptions:
    model: str = DEFAULT_MODEL
    dataset: str = DEFAULT_DATASET
    branches: tuple[int, ...] = (2, 4)
    epochs: int = 15
    split_epochs: int = 8
    batch_size: int = 64
    lr: float = 0.05
    split_lr: float = 0.02
    seed: int = 0
    alpha: float = DEFAULT_ALPHA
    temperature: float = DEFAULT_TEMPERATURE
    branch_dropout: float = 0.0
    multiple: int = DEFAULT_MULTIPLE
    out: Path = Path("trained")
    resume: bool = False
    limit: int | None = None  # train on LIMIT training images drawn with the seed (quick runs and tests)

    def as_command(self) -> str:
        """The ``splitrun train`` command line that makes exactly these weights."""
        args = [
            f"--model {self.model}",
            f"--dataset {shlex.quote(self.dataset)}",
            f"--branches {','.join(str(n) for n in self.branches)}",
            f"--epochs {self.epochs}",
            f"--split-epochs {self.split_epochs}",
            f"--batch-size {self.batch_size}",
            f"--lr {self.lr:g}",
            f"--split-lr {self.split_lr:g}",
            f"--alpha {self.alpha:g}",
            f"--temperature {self.temperature:g}",
            f"--branch-dropout {self.branch_dropout:g}",
            f"--multiple {self.multiple}",
            f"--seed {self.seed}",
        ]
        if self.limit is not None:
            args.append(f"--limit {self.limit}")
        return " ".join(["splitrun train", *args, f"--out {shlex.quote(str(self.out))}"])


@dataclass(frozen=True)
class StageResult:
    n: int  # 1: the reference
    file: str
    top1: float
    top5: float
    seconds: float
    history: list[EpochRecord] = field(default_factory=list)


@dataclass(frozen=True)
class TrainResult:
    dataset: str
    train_images: int
    test_images: int
    stages: list[StageResult]


class ReferenceLearner:
    """The unsplit Gluon model as a learner for :func:`fit`."""

    branch_count = 0

    def __init__(self, block: mx.gluon.HybridBlock) -> None:
        self.block = block
        self.names = ["reference"]
        self.blocks = [block]

    def __call__(self, x, keep=None):
        return self.block(x)

    def params(self):
        return {"reference": store.reference_weights(self.block)}

    def load(self, weights):
        store.set_reference_weights(self.block, weights["reference"])


def check_options(options: TrainOptions) -> list[SplitRequest]:
    """Bad numbers fail in one line before any data is read; returns the checked split of each N."""
    requests = []
    for n in options.branches:
        requests.append(SplitRequest.of(options.model, n, None, options.multiple))
        if n == 1:
            raise SplitnetError(
                "--branches 1: N=1 is the reference itself, which is always trained", "list splits, e.g. --branches 2,4"
            )
    checks = [
        (options.epochs >= 1, "--epochs must be at least 1", "e.g. --epochs 12"),
        (options.split_epochs >= 1, "--split-epochs must be at least 1", "e.g. --split-epochs 6"),
        (options.batch_size >= 1, "--batch-size must be at least 1", "e.g. --batch-size 64"),
        (options.lr > 0 and options.split_lr > 0, "learning rates must be positive", "e.g. --lr 0.05"),
        (0.0 <= options.alpha <= 1.0, "--alpha must be between 0 and 1", "e.g. --alpha 0.5"),
        (options.temperature > 0, "--temperature must be positive", "e.g. --temperature 4"),
        (0.0 <= options.branch_dropout < 1.0, "--branch-dropout must be in [0, 1)", "e.g. --branch-dropout 0.2"),
        (options.limit is None or options.limit >= 2, "--limit must be at least 2", "e.g. --limit 200"),
    ]
    for ok, message, fix in checks:
        if not ok:
            raise SplitnetError(message, fix)
    return requests


def _data(options: TrainOptions, spec: ModelSpec) -> Splits:
    splits = load_splits(options.dataset, spec.input_shape, spec.preprocessing)
    if options.limit is None:
        return splits
    pick = np.random.RandomState(options.seed).permutation(len(splits.train))[: options.limit]
    return Splits(
        train=splits.train.subset(np.sort(pick), f"{options.limit} drawn with seed {options.seed}"),
        test=splits.test,
        validation=splits.validation,
    )


def _new_reference(options: TrainOptions, classes: int) -> mx.gluon.HybridBlock:
    spec = get_model_spec(options.model)
    mx.random.seed(options.seed)
    block = spec.factory(classes)
    block.initialize(mx.init.Xavier(magnitude=2.0), ctx=mx.cpu())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block(mx.nd.zeros(spec.input_shape))
    block.hybridize(static_alloc=False)
    return block


def _fingerprint(options: TrainOptions, data: LabelledSet) -> dict:
    return {"model": options.model, "dataset": data.description, "multiple": options.multiple}


def _scores(logits: np.ndarray, test: LabelledSet) -> tuple[float, float]:
    return topk_accuracy(logits, test.labels, 1), topk_accuracy(logits, test.labels, 5)


def _validation(splits: Splits, history: list[EpochRecord]) -> dict:
    """The last epoch's top-1 on the validation slice, for a data set with its own test split."""
    if splits.validation is None or not history:
        return {}
    return {"validation_top1": history[-1].test_top1, "validation_images": len(splits.validation)}


def train(options: TrainOptions) -> TrainResult:
    requests = check_options(options)
    spec = requests[0].spec if requests else get_model_spec(options.model)
    splits = _data(options, spec)
    classes = len(splits.train.classes)
    label = splits.test.name or "dataset"  # in file names: the set's name, never a path
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    watched = "" if splits.validation is None else f", {len(splits.validation)} validation images"
    console.print(f"dataset: {splits.test.description} ({len(splits.train)} training images{watched})")
    base = _fingerprint(options, splits.train)
    entry_common = {
        "model": options.model,
        "classes": classes,
        "dataset": options.dataset,
        "dataset_description": splits.test.description,
        "seed": options.seed,
        "batch_size": options.batch_size,
        "command": options.as_command(),
    }
    stages: list[StageResult] = []
    with progress_bar() as progress:
        began = time.perf_counter()
        block = _new_reference(options, classes)
        learner = ReferenceLearner(block)
        schedule = Schedule(options.epochs, options.batch_size, options.lr, seed=options.seed)
        history = fit(
            "reference",
            learner,
            splits.train,
            splits.watched,
            schedule,
            DistillLoss(alpha=0.0),
            None,
            out / "checkpoints" / "reference",
            base,
            options.resume,
            progress,
        )
        learner.load(store.rounded(learner.params()))  # what ships is float16
        ref_file = f"{options.model}-{label}.params"
        store.save_reference(block, out / ref_file)
        ref_test = predict(block, splits.test.images)
        top1, top5 = _scores(ref_test, splits.test)
        seconds = time.perf_counter() - began
        stages.append(StageResult(1, ref_file, top1, top5, seconds, history))
        store.write_entry(
            out,
            store.file_entry(
                out,
                ref_file,
                **entry_common,
                n=1,
                epochs=options.epochs,
                lr=options.lr,
                top1=top1,
                top5=top5,
                **_validation(splits, history),
                train_seconds=round(seconds, 1),
            ),
        )
        reference = Reference(spec=spec, block=block, classes=classes, source=ref_file, trained=True)
        teacher = predict(block, splits.train.images)
        for request in requests:
            n = request.n
            began = time.perf_counter()
            split = partition(reference, n, request.shares, request.multiple)
            learner_n = TrainableSplit(split, prefix=block.prefix)
            schedule_n = Schedule(
                options.split_epochs,
                options.batch_size,
                options.split_lr,
                seed=options.seed,
                branch_dropout=options.branch_dropout,
            )
            history_n = fit(
                f"split N={n}",
                learner_n,
                splits.train,
                splits.watched,
                schedule_n,
                DistillLoss(options.alpha, options.temperature),
                teacher,
                out / "checkpoints" / f"n{n}",
                {**base, "n": n, "alpha": options.alpha, "temperature": options.temperature},
                options.resume,
                progress,
            )
            learner_n.load(store.rounded(learner_n.params()))
            tuned = learner_n.to_split_model()
            split_file = f"{options.model}-{label}-n{n}.npz"
            store.save_split(tuned, block.prefix, out / split_file)
            logits = predict(learner_n, splits.test.images)
            top1, top5 = _scores(logits, splits.test)
            seconds = time.perf_counter() - began
            stages.append(StageResult(n, split_file, top1, top5, seconds, history_n))
            store.write_entry(
                out,
                store.file_entry(
                    out,
                    split_file,
                    **entry_common,
                    n=n,
                    widths=list(split.plan.shares),
                    multiple=options.multiple,
                    epochs=options.split_epochs,
                    reference_epochs=options.epochs,
                    lr=options.split_lr,
                    alpha=options.alpha,
                    temperature=options.temperature,
                    branch_dropout=options.branch_dropout,
                    top1=top1,
                    top5=top5,
                    **_validation(splits, history_n),
                    train_seconds=round(seconds, 1),
                ),
            )
    return TrainResult(splits.test.description, len(splits.train), len(splits.test), stages)
