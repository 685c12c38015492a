"""Per-epoch checkpoints, so an interrupted ``splitrun train`` resumes where it stopped.

A stage (the reference, or the split for one N) keeps one folder: the weights of every part
(``weights.npz``), each part's optimizer state (momentum), and ``state.json`` with the epochs
done, the history and a fingerprint of the settings. Files are written to a temporary name
and renamed, so a kill mid-write leaves the previous epoch's checkpoint whole. Shuffling and
branch dropout draw from generators seeded by (seed, epoch), so a resumed run takes the same
steps as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import mxnet as mx
import numpy as np

from ..framework.errors import SplitnetError

STATE = "state.json"
WEIGHTS = "weights.npz"


@dataclass(frozen=True)
class Checkpoint:
    epoch: int  # epochs completed
    history: list[dict]
    weights: dict[str, dict[str, np.ndarray]]


def _flatten(weights: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {f"{part}/{name}": value for part, params in weights.items() for name, value in params.items()}


def _unflatten(flat) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for key in flat.files:
        part, name = key.split("/", 1)
        out.setdefault(part, {})[name] = flat[key]
    return out


def save(folder: Path, epoch: int, history: list[dict], fingerprint: dict, weights, trainers: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{WEIGHTS}.tmp.npz"
    np.savez(tmp, **_flatten(weights))
    os.replace(tmp, folder / WEIGHTS)
    for name, trainer in trainers.items():
        trainer.save_states(str(folder / f".{name}.states.tmp"))
        os.replace(folder / f".{name}.states.tmp", folder / f"{name}.states")
    state = {"epoch": epoch, "history": history, "fingerprint": fingerprint}
    (folder / f".{STATE}.tmp").write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(folder / f".{STATE}.tmp", folder / STATE)


def load(folder: Path, fingerprint: dict, trainers: dict[str, mx.gluon.Trainer]) -> Checkpoint | None:
    """The stage's checkpoint, or None when there is none; settings must match the run's."""
    path = folder / STATE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    if state.get("fingerprint") != fingerprint:
        changed = sorted(k for k in fingerprint if state.get("fingerprint", {}).get(k) != fingerprint[k])
        raise SplitnetError(
            f"the checkpoint in {folder} was made with other settings ({', '.join(changed) or 'unknown'} differ)",
            "resume with the same options, or pass another --out (or delete the folder) to start again",
        )
    with np.load(folder / WEIGHTS) as flat:
        weights = _unflatten(flat)
    for name, trainer in trainers.items():
        states = folder / f"{name}.states"
        if states.exists():
            trainer.load_states(str(states))
    return Checkpoint(epoch=int(state["epoch"]), history=list(state["history"]), weights=weights)
