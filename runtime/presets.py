"""Board presets: the TVM target, tracker key and defaults of boards people actually own.

An inventory entry names a preset (``target: pynq-z1``) instead of spelling out a target
dict. ARM presets carry the Debian cross compiler that links a ``.so`` for them; their
default export is ``.tar`` (object files that the board's own compiler links when it loads
them), which needs no cross toolchain here. ``x86`` is resolved when used, so it always
means *this* host's CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..framework.registry import Registry
from ..framework.targets import host_target


@dataclass(frozen=True)
class Preset:
    name: str
    key: str
    make_target: Callable[[int], dict]  # cores -> target dict
    cores: int
    memory_mb: int | None
    export_format: str
    description: str

    def target(self, cores: int | None = None) -> dict:
        return self.make_target(cores or self.cores)


_PRESETS: Registry[Preset] = Registry("board preset")


def register_preset(preset: Preset) -> Preset:
    return _PRESETS.add(preset.name, preset)


def get_preset(name: str) -> Preset:
    return _PRESETS.get(name)


def list_presets() -> list[str]:
    return _PRESETS.names()


def _pynq_z1(cores: int) -> dict:
    # Zynq-7020: dual Cortex-A9 with NEON; Linux on the board is armhf, so calls must pass
    # floats in VFP registers ("mfloat-abi": "hard"), or every float argument is garbage.
    return {
        "kind": "llvm",
        "mtriple": "armv7a-linux-gnueabihf",
        "mcpu": "cortex-a9",
        "mattr": ["+neon"],
        "mfloat-abi": "hard",
        "num-cores": cores,
    }


def _rpi4(cores: int) -> dict:
    return {
        "kind": "llvm",
        "mtriple": "aarch64-linux-gnu",
        "mcpu": "cortex-a72",
        "mattr": ["+neon"],
        "num-cores": cores,
    }


def _cuda(cores: int) -> dict:
    return {"kind": "cuda", "host": host_target(cores)}


register_preset(Preset("pynq-z1", "pynq", _pynq_z1, 2, 512, "tar", "PYNQ-Z1 (Zynq-7020, 2x Cortex-A9, 512 MB)"))
register_preset(Preset("rpi4", "rpi4", _rpi4, 4, 4096, "tar", "Raspberry Pi 4 (4x Cortex-A72)"))
register_preset(Preset("x86", "x86", host_target, 1, None, "so", "this host's CPU"))
register_preset(Preset("cuda", "cuda", _cuda, 1, None, "so", "an NVIDIA GPU (TVM's default CUDA schedules)"))
