"""TVM targets as JSON dicts (TVM 0.27 rejects option strings; see ../shared/STACK.md).

``host_target`` names this machine's CPU explicitly, because ``"mcpu": "native"`` is
downgraded to a generic CPU by the wheel's conda triple.
"""

from __future__ import annotations

import json
import platform
from functools import cache

import tvm


@cache
def host_cpu() -> str:
    try:
        return str(tvm.target.codegen.llvm_get_system_cpu())
    except Exception:  # an LLVM without host detection: generic code is still correct
        return "generic"


def host_target(cores: int = 1) -> dict:
    """The target for boards emulated on this host (and for the merge head)."""
    machine = platform.machine()
    triple = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(machine)
    target: dict = {"kind": "llvm", "mcpu": host_cpu(), "num-cores": int(cores)}
    if triple:
        target["mtriple"] = triple
    return target


def target_key(target: dict) -> str:
    """A canonical string for hashing and display."""
    return json.dumps(target, sort_keys=True)


def describe(target: dict) -> str:
    parts = [target.get("kind", "?")]
    for key in ("mcpu", "mtriple", "num-cores"):
        if key in target:
            parts.append(f"{key}={target[key]}")
    return " ".join(str(p) for p in parts)


def to_tvm(target: dict) -> tvm.target.Target:
    return tvm.target.Target(target)
