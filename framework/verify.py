"""The checks every run makes.

* fidelity: the distributed output against the same split model run in-process in MXNet
  (max abs difference over every frame; FAIL above ``FIDELITY_ATOL``).
* agreement: top-1 of the split model against the unsplit reference. N=1 must agree on every
  frame (the split is then the reference itself); for N>1 it is the cost of splitting, shown
  as information (meaningful only with trained params).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

FIDELITY_ATOL = 1e-4
PASS, FAIL, INFO = "PASS", "FAIL", "INFO"


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    status: str
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def fidelity(distributed: np.ndarray, in_process: np.ndarray, atol: float = FIDELITY_ATOL) -> tuple[Check, float]:
    diff = float(np.max(np.abs(distributed - in_process)))
    check = Check(
        name="distributed vs in-process split (MXNet)",
        value=f"max |diff| {diff:.2e}",
        status=PASS if diff <= atol else FAIL,
        detail=f"tolerance {atol:.0e}, over all frames",
    )
    return check, diff


def agreement(split: np.ndarray, reference: np.ndarray, n: int, trained: bool) -> tuple[Check, float]:
    same = split.argmax(axis=1) == reference.argmax(axis=1)
    rate = float(same.mean())
    if n == 1:
        status, detail = (PASS if rate == 1.0 else FAIL), "N=1 must reproduce the reference"
    else:
        status = INFO
        detail = "top-1 kept by the split" + ("" if trained else " (seeded weights: not an accuracy figure)")
    check = Check(
        name="split vs unsplit reference top-1",
        value=f"{int(same.sum())}/{len(same)} agree ({rate:.0%})",
        status=status,
        detail=detail,
    )
    return check, rate


def frames_answered(answered: int, sent: int) -> Check:
    """Every frame sent must get an answer (exact, recovered, or flagged degraded)."""
    return Check(
        name="frames answered",
        value=f"{answered}/{sent}",
        status=PASS if answered == sent else FAIL,
        detail="no frame lost, whatever failed",
    )
