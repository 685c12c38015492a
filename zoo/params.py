"""Reference weights: trained params from ``params/`` when shipped, else a seeded init.

``params/manifest.json`` lists entries ``{"model", "classes", "n", "widths", "file", "sha256", ...}``
(``n`` > 1: a fine-tuned split, see :mod:`splitnet.training.store`; weights may be stored as
float16 and are cast to float32 on load); a file
is used only when its sha256 matches, so a truncated or corrupt download is an error, never a
silently wrong model. Without an entry the model gets a deterministic seeded init (Xavier
weights and seeded BatchNorm statistics, so BN slicing is exercised by every test) and a
visible one-line notice: accuracy figures from such weights mean nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import mxnet as mx
import numpy as np

from ..framework.console import notice
from ..framework.errors import SplitnetError
from .registry import ModelSpec, get_model_spec

DEFAULT_SEED = 0
PARAMS_DIR_ENV = "SPLITNET_PARAMS_DIR"
SHARE_TOL = 1e-6  # width shares in a manifest entry match the wanted ones to this


@dataclass(frozen=True)
class Reference:
    """The unsplit reference: the Gluon block and where its weights came from."""

    spec: ModelSpec
    block: mx.gluon.HybridBlock
    classes: int
    source: str
    trained: bool


def params_dir() -> Path:
    """``$SPLITNET_PARAMS_DIR``, else the repository's ``params/`` folder."""
    env = os.environ.get(PARAMS_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1] / "params"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _same_shares(entry: dict, n: int, shares: tuple[float, ...] | None) -> bool:
    """An entry's ``widths`` (equal when absent) against the wanted shares."""
    wanted = shares if shares is not None else tuple(1.0 / n for _ in range(n))
    have = entry.get("widths") or [1.0 / n] * n
    return len(have) == len(wanted) and all(abs(float(a) - b) < SHARE_TOL for a, b in zip(have, wanted, strict=True))


def _manifest_entry(
    directory: Path, model: str, classes: int, n: int = 1, shares: tuple[float, ...] | None = None
) -> dict | None:
    """The manifest entry for ``model`` with ``classes`` split ``n`` ways (``n=1``: the reference)."""
    manifest = directory / "manifest.json"
    if not manifest.exists():
        return None
    fix = "restore it from the repository (git checkout params/manifest.json)"
    try:
        entries = json.loads(manifest.read_text())["entries"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise TypeError("entries must be a list of mappings")
    except (ValueError, KeyError, TypeError) as exc:
        raise SplitnetError(f"{manifest} is not a valid params manifest ({exc})", fix) from None
    for entry in entries:
        if entry.get("model") != model or entry.get("classes") != classes or entry.get("n", 1) != n:
            continue
        if n > 1 and not _same_shares(entry, n, shares):
            continue
        missing = [key for key in ("file", "sha256") if not isinstance(entry.get(key), str)]
        if missing:
            raise SplitnetError(f"{manifest}: the entry for {model} has no {' or '.join(missing)}", fix)
        return entry
    return None


def find_entry(
    model: str, classes: int, n: int = 1, shares: tuple[float, ...] | None = None, directory: Path | None = None
) -> dict | None:
    """The manifest entry for a reference (``n=1``) or a fine-tuned split (``n``, width ``shares``)."""
    return _manifest_entry(params_dir() if directory is None else directory, model, classes, n, shares)


def verified_file(directory: Path, entry: dict) -> Path:
    """The entry's file, after checking that it exists and its sha256 matches the manifest."""
    path = directory / entry["file"]
    if not path.exists():
        raise SplitnetError(
            f"params file {path} listed in the manifest is missing",
            "restore params/ from the repository or remove the manifest entry",
        )
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise SplitnetError(
            f"params file {path} is corrupt or truncated (sha256 {actual[:12]}..., "
            f"manifest says {entry['sha256'][:12]}...)",
            "restore it from the repository (git checkout params/)",
        )
    return path


def _seeded_init(block: mx.gluon.HybridBlock, spec: ModelSpec, seed: int) -> None:
    mx.random.seed(seed)
    block.initialize(mx.init.Xavier(magnitude=2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block(mx.nd.zeros(spec.input_shape))  # finish deferred shape inference
    rng = np.random.RandomState(seed)
    for name, param in sorted(block.collect_params().items()):
        shape = param.shape
        if name.endswith("gamma") or name.endswith("running_var"):
            param.set_data(mx.nd.array(rng.uniform(0.8, 1.2, size=shape)))
        elif name.endswith("beta") or name.endswith("running_mean"):
            param.set_data(mx.nd.array(rng.normal(0.0, 0.1, size=shape)))


def _load_params(block: mx.gluon.HybridBlock, path: Path, name: str) -> None:
    try:
        block.load_parameters(str(path), ctx=mx.cpu(), cast_dtype=True, dtype_source="current")
    except (mx.base.MXNetError, AssertionError, ValueError, KeyError) as exc:
        raise SplitnetError(
            f"params file {path} does not hold {name}'s weights ({' '.join(str(exc).split())[:120]})",
            "point its manifest entry at the right file, or remove the entry",
        ) from None


def load_reference(
    name: str, classes: int | None = None, seed: int = DEFAULT_SEED, directory: Path | None = None
) -> Reference:
    """Build the registered model ``name`` with its weights, hybridized for export."""
    spec = get_model_spec(name)
    classes = spec.classes if classes is None else classes
    if classes < 1:
        raise SplitnetError(f"classes must be positive, got {classes}", "pass classes >= 1")
    block = spec.factory(classes)
    directory = params_dir() if directory is None else directory
    entry = _manifest_entry(directory, name, classes)
    if entry is None and spec.published_weights is not None and classes == spec.classes:
        path, source = spec.published_weights(classes)
        _load_params(block, Path(path), name)
        block.hybridize(static_alloc=False)
        return Reference(spec=spec, block=block, classes=classes, source=source, trained=True)
    if entry is None:
        _seeded_init(block, spec, seed)
        source, trained = f"seeded init (seed {seed})", False
        notice(
            f"no trained params for {name} ({classes} classes) in {directory}; using a seeded init "
            f"(seed {seed}): outputs are reproducible but accuracy is meaningless"
        )
    else:
        path = verified_file(directory, entry)
        _load_params(block, path, name)
        source, trained = f"{path.name} (sha256 verified)", True
    block.hybridize(static_alloc=False)
    return Reference(spec=spec, block=block, classes=classes, source=source, trained=trained)


def get_model(name: str, classes: int | None = None, seed: int = DEFAULT_SEED) -> mx.gluon.HybridBlock:
    """The Gluon reference block for ``name`` (see :func:`load_reference` for provenance)."""
    return load_reference(name, classes=classes, seed=seed).block
