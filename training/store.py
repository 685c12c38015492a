"""Trained weights on disk: float16 files and their manifest entries.

Weights are stored as float16 (half the bytes of float32; the loaders cast back to float32),
so the shipped ResNet18 and its fine-tuned N=2 and N=4 splits fit in about 40 MB. Accuracy
is always measured on the float16-rounded weights, so a recorded figure is the figure of the
file that ships.

* the reference: MXNet's ``save_parameters`` format (structural names), read by
  :func:`splitnet.zoo.load_reference`;
* a split: ``.npz`` with one array per ``part/parameter`` (names without the Gluon prefix),
  written and read by :mod:`splitnet.zoo.split_weights` (every run reads them, so they live
  with the other trained weights in the zoo; a run's request swaps them in,
  :meth:`splitnet.strategies.SplitRequest.split`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import mxnet as mx
import numpy as np

from ..zoo import sha256_of
from ..zoo.split_weights import STORE_DTYPE, fine_tuned, read_split, save_split

__all__ = [
    "MANIFEST",
    "STORE_DTYPE",
    "file_entry",
    "fine_tuned",
    "read_split",
    "reference_weights",
    "rounded",
    "save_reference",
    "save_split",
    "set_reference_weights",
    "write_entry",
]
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
