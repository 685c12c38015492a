"""``splitrun distill``: what splitting a model with published weights costs, and what distillation wins back.

For each N: slice the published reference (the partitioner's split, as ``splitrun`` runs
it), re-estimate its batch norms on augmented training photos, then distil it from the
unsplit teacher on freshly augmented photos (:mod:`photo_distill`). After each stage the
split is scored on the evaluation photos, which are disjoint from the training photos
(checked by content): top-1/top-5 on the labelled ones (foolbox's 20 ImageNet photos),
top-1 agreement with the teacher on all of them, and the same with one branch lost. The
distilled weights are stored like ``splitrun train``'s (float16 ``.npz`` and a manifest
entry), so ``SPLITNET_PARAMS_DIR=OUT splitrun --model M --branches N`` runs them on boards.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import mxnet as mx
import numpy as np
from PIL import Image

from ..framework.console import console
from ..framework.images import preprocess
from ..partitioners import partition
from ..zoo import load_reference
from ..zoo.imagenet_data import label_of, labelled_photos, sample_data
from . import store
from .photo_distill import (
    DistillSettings,
    PhotoScores,
    check_disjoint,
    distill,
    load_photos,
    photo_files,
    recalibrate,
    score,
    timed,
)
from .split_net import TrainableSplit


@dataclass(frozen=True)
class DistillRun:
    model: str
    branches: tuple[int, ...]
    multiple: int
    train_folders: tuple[Path, ...]
    settings: DistillSettings
    out: Path


def evaluation_photos() -> list[Path]:
    """The 20 labelled foolbox photos, then the scikit-image photos (held out, unlabelled)."""
    return [p for p, _ in labelled_photos()] + sorted(sample_data().photos.iterdir())


def run_distill(options: DistillRun) -> list[dict]:
    reference = load_reference(options.model)
    spec = reference.spec
    size = spec.input_shape[-1]
    train_files = photo_files(options.train_folders)
    eval_files = evaluation_photos()
    check_disjoint(train_files, eval_files)
    photos = load_photos(train_files)
    folders = ", ".join(map(str, options.train_folders))
    console.print(
        f"teacher: {reference.source}\ntraining photos: {len(photos)} from {folders}; "
        f"evaluation photos: {len(eval_files)} (disjoint by content)"
    )
    images = np.concatenate([preprocess(Image.open(p), spec.input_shape, spec.preprocessing) for p in eval_files])
    labels = [label_of(p.name) for p in eval_files]
    teacher_logits = reference.block(mx.nd.array(images)).asnumpy()
    labelled = [i for i, label in enumerate(labels) if label is not None]
    order = np.argsort(-teacher_logits, axis=1)
    rows = [
        {
            "n": 1,
            **asdict(
                PhotoScores(
                    "unsplit teacher",
                    sum(int(order[i, 0] == labels[i]) for i in labelled),
                    sum(int(labels[i] in order[i, :5]) for i in labelled),
                    len(labelled),
                    len(eval_files),
                    float("nan"),
                    len(eval_files),
                )
            ),
        }
    ]
    options.out.mkdir(parents=True, exist_ok=True)
    for n in options.branches:
        multiple = options.multiple
        while multiple > 1 and min(_narrowest(reference), 10**9) // multiple < n:
            multiple //= 2  # EfficientNet-Lite0's 16-channel layer: N=4 needs multiple 4
        split = partition(reference, n, None, multiple)
        student = TrainableSplit(split, prefix=reference.block.prefix)
        rows.append({"n": n, "multiple": multiple, **asdict(score("sliced", student, teacher_logits, images, labels))})
        _, seconds = timed(lambda s=student: recalibrate(s, photos, options.settings, size, spec.preprocessing))
        found = score("batch norm recalibrated", student, teacher_logits, images, labels, seconds)
        rows.append({"n": n, "multiple": multiple, **asdict(found)})
        console.print(f"N={n}: sliced and recalibrated ({seconds:.0f} s); distilling {options.settings.steps} steps")
        losses, seconds = timed(
            lambda s=student: distill(s, reference.block, photos, options.settings, size, spec.preprocessing)
        )
        found = score(f"distilled {options.settings.steps} steps", student, teacher_logits, images, labels, seconds)
        curve = (
            {"kl_first_10": float(np.mean(losses[:10])), "kl_last_10": float(np.mean(losses[-10:]))} if losses else {}
        )
        rows.append({"n": n, "multiple": multiple, **asdict(found), **curve})
        student.load(store.rounded(student.params()))
        tuned = student.to_split_model()
        name = f"{options.model}-photos-n{n}.npz"
        store.save_split(tuned, reference.block.prefix, options.out / name)
        store.write_entry(
            options.out,
            store.file_entry(
                options.out,
                name,
                model=options.model,
                classes=reference.classes,
                n=n,
                widths=list(split.plan.shares),
                multiple=multiple,
                dataset=f"{len(photos)} unlabelled photos, augmented",
                distilled_from=reference.source,
                **{k: v for k, v in asdict(options.settings).items()},
                train_seconds=round(seconds, 1),
            ),
        )
    (options.out / "distill-report.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def _narrowest(reference) -> int:
    from ..partitioners import graph_from_block

    graph = graph_from_block(reference.block, reference.spec.input_shape)
    return min(graph.shape(op)[1] for op in graph.ops() if graph.op(op) == "Convolution")
