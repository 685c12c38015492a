"""``splitrun setup arm``: what local ARM boards need to run real ARM code under qemu.

    splitrun setup arm [--cpp armhf,aarch64,x86_64] [--no-rpi4] [--no-rpc-patch] [--tvm-src DIR|TGZ] [--cache DIR]

Installs the host packages (qemu user-mode, the cross compilers), cross-builds TVM's C++ RPC
server for each ``--cpp`` architecture (default armhf, the PYNQ-Z1's; ``x86_64`` builds it for
this host, for stand-ins with ``server: cpp``) from a TVM source of the installed version,
with one fix to its copies (:mod:`runtime.arm.rpc_patch`), and (unless ``--no-rpi4``) builds
an arm64 user space with the real Python RPC server from the aarch64 wheels for the
Raspberry Pi 4. Every step is skipped when its outputs are already there, so a second run
does nothing and says so. The cache folder is ``SPLITNET_ARM_CACHE`` or
``~/.cache/splitnet/arm``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..framework.errors import SplitnetError

NAME = "setup"
SUMMARY = "set up real ARM boards under qemu (splitrun setup arm)"
ARCHES = ("armhf", "aarch64", "x86_64")  # x86_64: this host, for stand-ins with server: cpp


def _arches(text: str) -> tuple[str, ...]:
    values = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    bad = [v for v in values if v not in ARCHES]
    if bad:
        raise SplitnetError(
            f"--cpp {text!r}: unknown architecture {bad[0]!r}", f"use one or more of {','.join(ARCHES)}"
        )
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["arm"], help="what to set up: arm (qemu ARM boards)")
    parser.add_argument(
        "--cpp",
        type=_arches,
        default=("armhf",),
        help="C++ RPC servers to build (default armhf; of armhf,aarch64,x86_64; x86_64: stand-ins with server: cpp)",
    )
    parser.add_argument("--no-rpi4", action="store_true", help="skip the arm64 user space and Python server (rpi4)")
    parser.add_argument(
        "--no-rpc-patch", action="store_true", help="build TVM's copies as they are (for comparison: byte by byte)"
    )
    parser.add_argument(
        "--tvm-src",
        type=Path,
        default=None,
        help="TVM source tree or .tgz of the installed version (default: SPLITNET_TVM_SRC, else ../shared/vendor's)",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default: SPLITNET_ARM_CACHE or ~/.cache/splitnet/arm)"
    )


def execute(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..framework.console import console, results_console
    from ..runtime.arm.paths import ArmPaths, default_source
    from ..runtime.arm.setup import run_steps
    from ..runtime.arm.steps import Context, plan

    paths = ArmPaths(args.cache) if args.cache is not None else ArmPaths.default()
    steps = plan(args.cpp, rpi4=not args.no_rpi4, patch=not args.no_rpc_patch)
    ctx = Context(source=args.tvm_src or default_source(), log_dir=paths.root / "logs", rpc_patch=not args.no_rpc_patch)
    console.print(f"ARM set-up in {paths.root}")
    start = time.monotonic()
    results = run_steps(paths, steps, ctx, say=lambda line: console.print(line, highlight=False))
    wall = time.monotonic() - start
    table = Table(title="splitrun setup arm", title_justify="left")
    for column in ("step", "result", "what", "s", "MB"):
        table.add_column(column, justify="right" if column in ("s", "MB") else "left")
    for r in results:
        table.add_row(r.name, r.did, r.detail, f"{r.seconds:.0f}", f"{r.mb:.0f}" if r.did == "done" else "")
    out = results_console()
    out.print(table)
    done = [r for r in results if r.did == "done"]
    if not done:
        out.print("nothing to do: every step was already done")
    else:
        out.print(
            f"{len(done)} step(s) done in {wall:.0f} s, {sum(r.mb for r in done):.0f} MB "
            "(MB: downloaded for host-packages, else added on disk)"
        )
    ready = [
        k
        for k, ok in (
            ("pynq-z1 (armhf, C++ server)", paths.cpp_ready("armhf")),
            ("rpi4 (aarch64, Python server)", paths.python_ready()),
            ("aarch64 C++ server", paths.cpp_ready("aarch64")),
        )
        if ok
    ]
    out.print(f"ready under qemu: {', '.join(ready) or 'nothing'}")
    if paths.host_cpp_ready():
        out.print("ready on this host: the C++ server for stand-ins with server: cpp (x86_64)")
    if paths.root != ArmPaths.default().root:
        out.print(f"boards look in {ArmPaths.default().root}: set SPLITNET_ARM_CACHE={paths.root} to use this set-up")
    return 0
