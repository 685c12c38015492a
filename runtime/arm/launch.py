"""How a local ARM board's real RPC server is started under qemu user-mode emulation.

Two servers, as ../shared/ARM.md verified them:

* ``cpp-armhf`` / ``cpp-aarch64``: TVM's C++ ``tvm_rpc``, cross-built by ``splitrun setup
  arm``. It links an uploaded ``.tar`` with a plain ``g++`` through the host's ``/bin/sh``,
  so a folder whose ``g++`` is the cross g++ comes first in PATH; it does not ignore SIGPIPE
  (a client that drops after the handshake would kill it), so the launcher shell ignores it
  before ``exec`` (an ignored signal stays ignored across exec). It serves one session at a
  time.
* ``python-aarch64``: the real Python ``rpc_server`` from the aarch64 wheels in an arm64
  Debian user space. Its ``popen_worker`` child is started from ``sys.executable``; without
  binfmt_misc that would be an ARM binary the kernel cannot run, so a ``sitecustomize.py``
  points ``sys.executable`` at a host shell wrapper that starts it under qemu. This works
  whether or not binfmt_misc is registered, and changes nothing machine-wide.

Every ARM server is started through ``qemu-*-static`` explicitly, with the board's CPU model.
``cpp-x86_64`` is the same C++ server built for this host: a host stand-in with ``server:
cpp`` runs it natively, as a PYNQ runs its own build.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .paths import CPP_ARCHES, USERSPACE_PYTHON, ArmPaths

SITECUSTOMIZE = """\
# Written by splitrun setup arm: TVM's RPC server starts popen_worker from sys.executable,
# which must be the host wrapper that runs this aarch64 Python under qemu.
import sys
sys.executable = {wrapper!r}
"""
WRAPPER = """\
#!/bin/sh
exec qemu-aarch64-static -L {sysroot} {python} "$@"
"""


def write_shim(paths: ArmPaths) -> None:
    """The sitecustomize + wrapper pair (``python-aarch64`` needs it without binfmt_misc)."""
    paths.shim.mkdir(parents=True, exist_ok=True)
    wrapper = paths.shim / "python3"
    wrapper.write_text(WRAPPER.format(sysroot=paths.sysroot, python=paths.sysroot / USERSPACE_PYTHON))
    wrapper.chmod(0o755)
    (paths.shim / "sitecustomize.py").write_text(SITECUSTOMIZE.format(wrapper=str(wrapper)))


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path | None = None


def server_launch(
    kind: str, paths: ArmPaths, host: str, port: int, tracker: str, key: str, cores: int, workdir: Path
) -> Launch:
    """The command line, environment and folder of one board's server (``workdir``: its own,
    since ``tvm_rpc`` keeps uploads in the folder it runs in, and two servers sharing one
    would overwrite each other's loaded libraries)."""
    threads = {"TVM_NUM_THREADS": str(cores), "OMP_NUM_THREADS": str(cores)}
    if kind.startswith("cpp-"):
        arch = kind.removeprefix("cpp-")
        _, triple, qemu, cpu = CPP_ARCHES[arch]
        server = [
            *([qemu] if qemu else []),
            str(paths.tvm_rpc(arch)),
            "server",
            f"--host={host}",
            f"--port={port}",
            f"--port-end={port + 1}",
            f"--tracker={tracker}",
            f"--key={key}",
        ]
        env = {**threads, "PATH": f"{paths.cc_dir(arch)}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        if qemu:
            env |= {"QEMU_LD_PREFIX": f"/usr/{triple}", "QEMU_CPU": cpu}  # the cross g++'s libc is the board's
        return Launch(["/bin/sh", "-c", "trap '' PIPE; exec \"$@\"", "tvm_rpc", *server], env, workdir)
    if kind == "python-aarch64":
        server = [
            "qemu-aarch64-static",
            "-L",
            str(paths.sysroot),
            str(paths.sysroot / USERSPACE_PYTHON),
            "-m",
            "tvm.exec.rpc_server",
            "--host",
            host,
            "--port",
            str(port),
            "--port-end",
            str(port + 1),
            "--tracker",
            tracker,
            "--key",
            key,
        ]
        env = {
            **threads,
            "QEMU_LD_PREFIX": str(paths.sysroot),
            "QEMU_CPU": CPP_ARCHES["aarch64"][3],
            "PYTHONPATH": f"{paths.shim}:{paths.site}",
            "PYTHONNOUSERSITE": "1",
            "TVM_USE_RUNTIME_LIB": "1",  # the board never compiles: skip libtvm_compiler
            "CXX": "aarch64-linux-gnu-g++",  # an uploaded .tar is linked on the "board"
        }
        return Launch(server, env, workdir)
    raise ValueError(f"unknown server kind {kind!r}")
