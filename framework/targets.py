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


EXPORT_FORMATS = ("so", "tar")  # a linked shared library, or object files the board links

# Debian's cross g++ per target triple (packages g++-arm-linux-gnueabihf, g++-aarch64-linux-gnu).
CROSS_CXX = {"armv7a-linux-gnueabihf": "arm-linux-gnueabihf-g++", "aarch64-linux-gnu": "aarch64-linux-gnu-g++"}
_ARCH_OF_MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def target_arch(target: dict) -> str:
    """The CPU architecture a target's code runs on (``host`` for an llvm target with no triple)."""
    if target.get("kind") != "llvm":
        return str(target.get("kind"))
    triple = str(target.get("mtriple", ""))
    return triple.split("-")[0] if triple else _ARCH_OF_MACHINE.get(platform.machine(), platform.machine())


def runs_here(target: dict) -> bool:
    """Whether code built for ``target`` can run on this machine's CPU."""
    host_arch = _ARCH_OF_MACHINE.get(platform.machine(), platform.machine())
    return target.get("kind") == "llvm" and target_arch(target) == host_arch


def cross_cxx(target: dict) -> str | None:
    """The cross g++ that links a ``.so`` for ``target``, or None when the host compiler does."""
    if runs_here(target) or target.get("kind") != "llvm":
        return None
    return CROSS_CXX.get(str(target.get("mtriple", "")), f"{target.get('mtriple', 'unknown')}-g++")


def check_target(target: dict) -> str | None:
    """Why TVM rejects ``target``, or None when it is a valid target."""
    try:
        to_tvm(target)
    except Exception as exc:  # TVM raises several types for bad dicts
        return " ".join(str(exc).split())[:200]
    return None


def describe(target: dict) -> str:
    parts = [target.get("kind", "?")]
    for key in ("mcpu", "mtriple", "mfloat-abi", "num-cores"):
        if key in target:
            parts.append(f"{key}={target[key]}")
    return " ".join(str(p) for p in parts)


def to_tvm(target: dict) -> tvm.target.Target:
    return tvm.target.Target(target)
