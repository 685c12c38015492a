"""Fine-tuned split weights on disk: the ``.npz`` format, and finding a split's weights.

A split's weights are stored as float16, one array per ``part/parameter`` (parameter names
without the reference block's Gluon prefix, which depends on how many models the process
built before), and listed in the params manifest like a reference (model, N, widths,
multiple, sha256). ``splitrun train`` writes them (:mod:`splitnet.training.store`); every run
reads them here, so a split runs on the boards with the weights it was fine-tuned to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..framework.errors import SplitnetError
from ..framework.shares import DEFAULT_MULTIPLE
from ..framework.split_model import SplitModel, with_weights
from .params import Reference, find_entry, params_dir, verified_file

STORE_DTYPE = np.float16


def save_split(split: SplitModel, prefix: str, path: Path) -> None:
    arrays = {
        f"{part.name}/{name.removeprefix(prefix)}": value.astype(STORE_DTYPE)
        for part in (*split.branches, split.head)
        for name, value in part.params.items()
    }
    with open(path, "wb") as handle:  # np.savez on a path would append .npz
        np.savez(handle, **arrays)


def read_split(path: Path) -> dict[str, dict[str, np.ndarray]]:
    weights: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path) as flat:
        for key in flat.files:
            part, name = key.split("/", 1)
            weights.setdefault(part, {})[name] = flat[key].astype(np.float32)
    return weights


def fine_tuned(
    split: SplitModel, reference: Reference, directory: Path | None = None
) -> tuple[SplitModel, dict | None]:
    """``split`` with its fine-tuned weights when the manifest has an entry for it, and the entry.

    Without an entry (or for N=1, which is the reference itself, or an untrained reference)
    the split keeps the sliced reference weights and the entry is None.
    """
    directory = params_dir() if directory is None else directory
    plan = split.plan
    if plan.n == 1 or not reference.trained:
        return split, None
    entry = find_entry(reference.spec.name, reference.classes, plan.n, plan.shares, directory)
    if entry is None or int(entry.get("multiple", DEFAULT_MULTIPLE)) != plan.multiple:
        return split, None
    path = verified_file(directory, entry)
    weights = read_split(path)
    prefix = reference.block.prefix
    for part in (*split.branches, split.head):
        have = weights.get(part.name, {})
        for name, value in part.params.items():
            stored = have.get(name.removeprefix(prefix))
            if stored is None or stored.shape != value.shape:
                raise SplitnetError(
                    f"params file {path} does not hold the N={plan.n} split of {reference.spec.name} "
                    f"({part.name}: {name.removeprefix(prefix)} missing or of another shape)",
                    "point its manifest entry at the right file, or remove the entry",
                )
    return with_weights(split, weights, prefix), entry
