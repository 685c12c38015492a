"""Per-image predictions of the unsplit model and of the split: class name and probability.

A trained classifier run on real photos is judged by what it says about each photo, not by
a max |diff|, so a run with ``--images`` shows, for every image, the unsplit reference's top-1
class and softmax probability next to the split's (the answer the boards returned), and the
label when the file name carries one (the foolbox ImageNet photos: ``imagenet_NN_LABEL.jpg``).
Class names are passed in (ImageNet's come from :mod:`splitnet.zoo.imagenet_data`); without
them a class is shown by its index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class ImagePrediction:
    image: str
    label: int | None  # the class index in the file name, if any
    reference_class: int
    reference_name: str
    reference_prob: float
    split_class: int
    split_name: str
    split_prob: float

    @property
    def agree(self) -> bool:
        return self.reference_class == self.split_class


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _name(names: Sequence[str] | None, index: int) -> str:
    return names[index].split(",")[0] if names is not None and index < len(names) else f"class {index}"


def image_predictions(
    images: Sequence[str],
    reference_logits: np.ndarray,
    split_logits: np.ndarray,
    names: Sequence[str] | None = None,
    labels: Sequence[int | None] | None = None,
) -> tuple[ImagePrediction, ...]:
    """One row per image: top-1 class, its name and probability, for the reference and the split."""
    ref_p, split_p = softmax(reference_logits), softmax(split_logits)
    labels = labels if labels is not None else [None] * len(images)
    rows = []
    for i, image in enumerate(images):
        r, s = int(np.argmax(ref_p[i])), int(np.argmax(split_p[i]))
        rows.append(
            ImagePrediction(
                image, labels[i], r, _name(names, r), float(ref_p[i, r]), s, _name(names, s), float(split_p[i, s])
            )
        )
    return tuple(rows)


def render_predictions(rows: Sequence[dict], console: Console) -> None:
    """The table of :func:`image_predictions` rows (as the report's dicts)."""
    table = Table(title="Predictions per image (top-1, softmax probability)", title_justify="left")
    for column in ("image", "label", "unsplit", "p", "split (boards)", "p ", "same"):
        table.add_column(column, justify="right" if column.strip() == "p" else "left")
    for row in rows:
        label = row["label"]
        mark = "" if label is None else (" [green]ok[/]" if row["split_class"] == label else " [red]x[/]")
        table.add_row(
            row["image"],
            "" if label is None else str(label),
            row["reference_name"],
            f"{row['reference_prob']:.3f}",
            row["split_name"] + mark,
            f"{row['split_prob']:.3f}",
            "yes" if row["reference_class"] == row["split_class"] else "[yellow]no[/]",
        )
    console.print(table)
    same = sum(r["reference_class"] == r["split_class"] for r in rows)
    labelled = [r for r in rows if r["label"] is not None]
    line = f"split and unsplit agree on {same}/{len(rows)} images"
    if labelled:
        ref_ok = sum(r["reference_class"] == r["label"] for r in labelled)
        split_ok = sum(r["split_class"] == r["label"] for r in labelled)
        line += f"; top-1 right on the {len(labelled)} labelled: unsplit {ref_ok}, split {split_ok}"
    console.print(line)
