"""Trained weights on disk: float16 files and their manifest entries.

Weights are stored as float16 (half the bytes of float32; the loaders cast back to float32),
so the shipped ResNet18 and its fine-tuned N=2 and N=4 splits fit in about 40 MB. Accuracy
is always measured on the float16-rounded weights, so a recorded figure is the figure of the
file that ships.

* the reference: MXNet's ``save_parameters`` format (structural names), read by
  :func:`splitnet.zoo.load_reference`;
* a split: ``.npz`` with one array per ``part/parameter`` (names without the Gluon prefix),
  read by :func:`load_split`, which re-partitions the reference and swaps the weights in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import mxnet as mx
import numpy as np
from splitnet.framework.errors import SplitnetError
from splitnet.partitioners import DEFAULT_MULTIPLE, SplitModel, partition
from splitnet.partitioners.channels import normalise_shares
from splitnet.training.split_net import with_weights
from splitnet.zoo import Reference, find_entry, params_dir, sha256_of, verified_file

STORE_DTYPE = np.float16
MANIFEST = "manifest.json"


def rounded(weights: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """Weights as they will be after a float16 round trip."""
    return {part: {k: v.astype(STORE_DTYPE).astype(np.float32) for k, v in p.items()} for part, p in weights.items()}


def reference_weights(block: mx.gluon.Block) -> dict[str, np.ndarray]:
    return {k: p.data().asnumpy() for k, p in block._collect_params_with_prefix().items()}


def set_reference_weights(block: mx.gluon.Block, weights: dict[str, np.ndarray]) -> None:
    for key, param in block._collect_params_with_prefix().items():
        param.set_data(mx.nd.array(weights[key], dtype=np.float32))


def save_reference(block: mx.gluon.Block, path: Path) -> None:
    mx.nd.save(str(path), {k: mx.nd.array(v, dtype=STORE_DTYPE) for k, v in reference_weights(block).items()})


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


def load_split(
    reference: Reference,
    n: int,
    widths: tuple[float, ...] | None = None,
    multiple: int = DEFAULT_MULTIPLE,
    directory: Path | None = None,
) -> tuple[SplitModel, dict | None]:
    """Partition ``reference`` N ways and use the fine-tuned weights when shipped (see :func:`fine_tuned`)."""
    split = partition(reference, n, normalise_shares(n, widths), multiple)
    return fine_tuned(split, reference, directory)


def write_entry(directory: Path, entry: dict) -> None:
    """Add ``entry`` to ``directory``'s manifest, replacing one for the same model, N and widths."""
    manifest = directory / MANIFEST
    entries = json.loads(manifest.read_text())["entries"] if manifest.exists() else []
    same = ("model", "classes", "n", "widths")
    entries = [e for e in entries if any(e.get(k) != entry.get(k) for k in same)]
    entries.append(entry)
    entries.sort(key=lambda e: (e["model"], e["classes"], e.get("n", 1)))
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"entries": entries}, indent=2) + "\n")
    os.replace(tmp, manifest)


def file_entry(directory: Path, file: str, **fields) -> dict:
    """A manifest entry for ``file`` with its sha256 and size."""
    path = directory / file
    return {**fields, "file": file, "sha256": sha256_of(path), "bytes": path.stat().st_size, "dtype": "float16"}
