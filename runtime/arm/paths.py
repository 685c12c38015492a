"""Where the ARM set-up lives: one cache folder, and what in it makes each kind of board ready.

``splitrun setup arm`` fills the folder; a local ARM board looks here to decide whether it
can run as real ARM code under qemu (``emulation: auto``) or falls back to the host stand-in.
Everything is under one root (``SPLITNET_ARM_CACHE``, default ``~/.cache/splitnet/arm``) so
one ``rm -rf`` undoes it and a CI cache can hold it.
"""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "SPLITNET_ARM_CACHE"
SOURCE_ENV = "SPLITNET_TVM_SRC"  # a TVM source tree or .tgz for the C++ server
SOURCE_TGZ = "tvm-src-0.27-runtime.tgz"

# The C++ server's architectures: Debian's name, cmake's processor, the GNU triple, qemu's
# (None: this host's own, for host stand-ins that run the server a PYNQ runs).
CPP_ARCHES = {
    "armhf": ("armv7l", "arm-linux-gnueabihf", "qemu-arm-static", "cortex-a9"),
    "aarch64": ("aarch64", "aarch64-linux-gnu", "qemu-aarch64-static", "cortex-a72"),
    "x86_64": ("x86_64", "x86_64-linux-gnu", None, None),
}
USERSPACE_PYTHON = "usr/bin/python3"


def default_cache() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "splitnet" / "arm")


def default_source() -> Path | None:
    """The TVM source: ``SPLITNET_TVM_SRC``, else ../shared/vendor's tarball next to the repo."""
    if os.environ.get(SOURCE_ENV):
        return Path(os.environ[SOURCE_ENV])
    repo = Path(__file__).resolve().parents[2]
    for base in (repo, *repo.parents):
        candidate = base / "shared" / "vendor" / SOURCE_TGZ
        if candidate.is_file():
            return candidate
        if base == repo.parent.parent:  # ../shared of the repo, or of its parent (worktrees)
            break
    return None


def host_cpp_arch() -> str | None:
    """The C++ server architecture that runs natively on this machine (``x86_64``), or None."""
    arch = platform.machine()
    return arch if arch in CPP_ARCHES and CPP_ARCHES[arch][2] is None else None


def arch_of(target: dict) -> str | None:
    """``armhf`` / ``aarch64`` for an ARM llvm target, else None."""
    triple = str(target.get("mtriple", ""))
    if triple.startswith("aarch64") or triple.startswith("arm64"):
        return "aarch64"
    if triple.startswith("arm") or triple.startswith("thumb"):
        return "armhf"
    return None


@dataclass(frozen=True)
class ArmPaths:
    root: Path

    @classmethod
    def default(cls) -> ArmPaths:
        return cls(default_cache())

    @property
    def tools(self) -> Path:
        return self.root / "tools"  # a venv with cmake >= 3.26

    @property
    def cmake(self) -> Path:
        return self.tools / "bin" / "cmake"

    @property
    def source(self) -> Path:
        return self.root / "src" / "tvm"

    def build(self, arch: str) -> Path:
        return self.root / f"build-{arch}"

    def tvm_rpc(self, arch: str) -> Path:
        return self.build(arch) / "tvm_rpc"

    def cc_dir(self, arch: str) -> Path:
        """A folder whose ``g++`` is the cross g++: ``tvm_rpc`` links uploads with plain ``g++``."""
        return self.root / f"bin-{arch}"

    @property
    def sysroot(self) -> Path:
        return self.root / "arm64-root"

    @property
    def site(self) -> Path:
        return self.sysroot / "opt" / "tvm-site"

    @property
    def shim(self) -> Path:
        """``sitecustomize.py`` + the python wrapper, so popen_worker starts under qemu too."""
        return self.root / "arm64-shim"

    # -- what is ready -----------------------------------------------------------------------
    def cpp_ready(self, arch: str) -> bool:
        _, triple, qemu, _ = CPP_ARCHES[arch]
        return (
            self.tvm_rpc(arch).is_file()
            and (self.cc_dir(arch) / "g++").exists()
            and (qemu is None or shutil.which(qemu) is not None)
            and shutil.which(f"{triple}-g++") is not None
        )

    def host_cpp_ready(self) -> bool:
        """The C++ server for this machine (``server: cpp``) is built."""
        arch = host_cpp_arch()
        return arch is not None and self.cpp_ready(arch)

    def python_ready(self) -> bool:
        return (
            (self.sysroot / USERSPACE_PYTHON).exists()
            and (self.site / "tvm" / "__init__.py").is_file()
            and (self.shim / "sitecustomize.py").is_file()
            and shutil.which("qemu-aarch64-static") is not None
            and shutil.which("aarch64-linux-gnu-g++") is not None
        )

    def server_for(self, target: dict) -> str | None:
        """The server a local board with this target runs under qemu, or None (set-up absent).

        armhf: the cross-built C++ server (no armv7 wheel exists). aarch64: the real Python
        server from the aarch64 wheels, else a cross-built aarch64 C++ server.
        """
        arch = arch_of(target)
        if arch == "armhf":
            return "cpp-armhf" if self.cpp_ready("armhf") else None
        if arch == "aarch64":
            if self.python_ready():
                return "python-aarch64"
            return "cpp-aarch64" if self.cpp_ready("aarch64") else None
        return None
