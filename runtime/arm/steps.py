"""The steps of ``splitrun setup arm``: each knows whether it is done, and how to do it.

A step is *done* when its outputs are in place (not when a stamp says so), so a second run
does nothing and says so, and a half-finished one is redone. Every command a step runs logs
to ``CACHE/logs/STEP.log``; a failure is one line naming the step, the log and the fix.
The facts behind each command (versions, flags, sizes) are in ../shared/ARM.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...framework.errors import SplitnetError
from . import rpc_patch
from .launch import write_shim
from .paths import CPP_ARCHES, ArmPaths

APT_PACKAGES = {  # package -> a file it installs (present: nothing to do)
    "qemu-user-static": "/usr/bin/qemu-aarch64-static",
    "arch-test": "/usr/bin/arch-test",
    "mmdebstrap": "/usr/bin/mmdebstrap",
    "g++-arm-linux-gnueabihf": "/usr/bin/arm-linux-gnueabihf-g++",
    "g++-aarch64-linux-gnu": "/usr/bin/aarch64-linux-gnu-g++",
    "ninja-build": "/usr/bin/ninja",
}
WHEELS = (
    "apache-tvm==0.27.0.post1",
    "apache-tvm-ffi==0.1.14.post1",
    "numpy==1.23.5",
    "ml_dtypes==0.5.4",
    "tornado",
    "psutil",
    "cloudpickle",
    "typing_extensions",
)
_OFFLINE = re.compile(
    r"Temporary failure resolving|Could not resolve|Network is unreachable|No route to host|"
    r"Failed to establish a new connection|Name or service not known"
)


@dataclass(frozen=True)
class StepResult:
    name: str
    did: str  # "done" / "skipped"
    detail: str
    seconds: float
    mb: float  # MB added on disk (apt: MB downloaded)


@dataclass(frozen=True)
class Step:
    name: str
    what: str
    done: Callable[[ArmPaths], bool]
    run: Callable[[ArmPaths, Context], tuple[str, float]]  # -> (detail, MB)


@dataclass(frozen=True)
class Context:
    source: Path | None
    log_dir: Path
    rpc_patch: bool = True  # apply rpc_patch to the source (--no-rpc-patch: build TVM's copies as they are)


def disk_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    if path.is_file():
        return path.stat().st_size / 1e6
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            p = Path(root) / name
            if not p.is_symlink():
                total += p.stat().st_size
    return total / 1e6


def sh(step: str, argv: list[str], ctx: Context, fix: str, env: dict | None = None, cwd: Path | None = None) -> str:
    """Run one command of a step, logged; a failure is a SplitnetError naming the step."""
    ctx.log_dir.mkdir(parents=True, exist_ok=True)
    log = ctx.log_dir / f"{step}.log"
    with open(log, "a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        try:
            proc = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=cwd, check=False
            )
        except OSError as exc:
            raise SplitnetError(f"setup step {step}: cannot run {argv[0]} ({exc.strerror})", fix) from None
    if proc.returncode != 0:
        text = log.read_text(errors="replace")
        if _OFFLINE.search(text):
            raise SplitnetError(
                f"setup step {step}: no network (a download failed; log: {log})",
                "connect this machine to the package mirrors, or run where they are reachable",
            )
        said = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("$ ")]
        tail = " | ".join(said[-2:])[:200] or "no output"
        raise SplitnetError(f"setup step {step} failed (exit {proc.returncode}: {tail}; log: {log})", fix)
    return log.read_text(errors="replace")


# -- host packages ----------------------------------------------------------------------------------
def _missing_packages() -> list[str]:
    return [pkg for pkg, path in APT_PACKAGES.items() if not Path(path).exists()]


def _apt(paths: ArmPaths, ctx: Context) -> tuple[str, float]:
    missing = _missing_packages()
    if os.geteuid() != 0:
        raise SplitnetError(
            f"setup step host-packages: missing {', '.join(missing)}, and installing them needs root",
            f"run splitrun setup arm as root, or: sudo apt-get install -y {' '.join(missing)}",
        )
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    fix = f"check apt's sources, then: apt-get install -y {' '.join(missing)}"
    lock = ["-o", "DPkg::Lock::Timeout=600"]
    sh("host-packages", ["apt-get", *lock, "update", "-q"], ctx, fix, env)
    out = sh("host-packages", ["apt-get", *lock, "install", "-y", "-q", *missing], ctx, fix, env)
    got = re.findall(r"Need to get ([\d.,]+) ([kM])B", out)
    mb = sum(float(v.replace(",", "")) / (1000 if unit == "k" else 1) for v, unit in got)
    return f"apt-get install {' '.join(missing)}", mb


# -- the C++ server ---------------------------------------------------------------------------------
def _tools(paths: ArmPaths, ctx: Context) -> tuple[str, float]:
    import sys

    fix = 'check that pip can install "cmake>=3.26,<4"'
    sh("tools", [sys.executable, "-m", "venv", str(paths.tools)], ctx, fix)
    sh("tools", [str(paths.tools / "bin" / "pip"), "install", "-q", "cmake>=3.26,<4"], ctx, fix)
    return "cmake (tvm-ffi needs >= 3.26) in a tools venv", disk_mb(paths.tools)


def _patch_stamp(paths: ArmPaths) -> Path:
    return paths.source.parent / "rpc-patch"  # what rpc_patch.apply said, and which patch


def _patch_id(patch: bool) -> str:
    return rpc_patch.PATCH_ID if patch else "none"


def _source_done_for(patch: bool) -> Callable[[ArmPaths], bool]:
    def done(paths: ArmPaths) -> bool:  # unpacked, and patched (or not) as asked
        stamp = _patch_stamp(paths)
        return (
            (paths.source / "apps" / "cpp_rpc").is_dir()
            and stamp.is_file()
            and stamp.read_text().split()[-1] == _patch_id(patch)
        )

    return done


def _patched(paths: ArmPaths, ctx: Context, detail: str) -> str:
    """Apply :mod:`rpc_patch` to the unpacked source (unless ``--no-rpc-patch``) and record it."""
    said = rpc_patch.apply(paths.source) if ctx.rpc_patch else "skipped (--no-rpc-patch)"
    _patch_stamp(paths).write_text(f"{said} {_patch_id(ctx.rpc_patch)}")
    return f"{detail}; RPC patches (bulk copies, frame channel): {said}"


def _source(paths: ArmPaths, ctx: Context) -> tuple[str, float]:
    src = ctx.source
    fix = "pass --tvm-src DIR|TGZ (or set SPLITNET_TVM_SRC): a TVM checkout of the installed version (0.27)"
    if src is None or not src.exists():
        raise SplitnetError(f"setup step source: no TVM source found{f' at {src}' if src else ''}", fix)
    if src.is_dir():  # copied, not linked: the patch must not touch the user's tree
        if not (src / "apps" / "cpp_rpc").is_dir():
            raise SplitnetError(f"setup step source: {src} has no apps/cpp_rpc, so it is not a TVM source tree", fix)
        paths.source.parent.mkdir(parents=True, exist_ok=True)
        if paths.source.exists() or paths.source.is_symlink():
            paths.source.unlink() if paths.source.is_symlink() else shutil.rmtree(paths.source)
        shutil.copytree(src, paths.source, symlinks=True, ignore=shutil.ignore_patterns(".git", "build*"))
        return _patched(paths, ctx, f"copied {src}"), disk_mb(paths.source)
    tmp = paths.source.with_name("tvm.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(src) as tgz:
            tgz.extractall(tmp, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise SplitnetError(f"setup step source: cannot unpack {src} ({exc})", fix) from None
    if not (tmp / "apps" / "cpp_rpc").is_dir():
        raise SplitnetError(f"setup step source: {src} holds no apps/cpp_rpc, so it is not a TVM source", fix)
    shutil.rmtree(paths.source, ignore_errors=True)
    tmp.rename(paths.source)
    return _patched(paths, ctx, f"unpacked {src.name}"), disk_mb(paths.source)


def cpp_step(arch: str) -> Step:
    processor, triple, _, _ = CPP_ARCHES[arch]

    def run(paths: ArmPaths, ctx: Context) -> tuple[str, float]:
        name = f"cpp-{arch}"
        fix = f"read the log; the build needs {triple}-g++, ninja and cmake >= 3.26 (rerun splitrun setup arm)"
        env = {"PATH": f"{paths.tools / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        sh(
            name,
            [
                str(paths.cmake),
                "-S",
                str(paths.source),
                "-B",
                str(paths.build(arch)),
                "-G",
                "Ninja",
                "-DCMAKE_BUILD_TYPE=Release",
                "-DCMAKE_SYSTEM_NAME=Linux",
                f"-DCMAKE_SYSTEM_PROCESSOR={processor}",
                f"-DCMAKE_C_COMPILER={triple}-gcc",
                f"-DCMAKE_CXX_COMPILER={triple}-g++",
                "-DUSE_LLVM=OFF",
                "-DUSE_CPP_RPC=ON",
                "-DUSE_RPC=ON",
                "-DUSE_OPENMP=none",
                "-DOS=Linux",
                "-DTVM_FFI_USE_LIBBACKTRACE=OFF",
                "-DTVM_FFI_BACKTRACE_ON_SEGFAULT=OFF",
            ],
            ctx,
            fix,
            env,
        )
        jobs = str(max(1, min(len(os.sched_getaffinity(0)), 4)))
        sh(name, ["ninja", "-C", str(paths.build(arch)), "-j", jobs, "tvm_rpc"], ctx, fix, env)
        cc = paths.cc_dir(arch)
        cc.mkdir(parents=True, exist_ok=True)
        link = cc / "g++"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(shutil.which(f"{triple}-g++") or f"/usr/bin/{triple}-g++")
        shutil.copyfile(_patch_stamp(paths), paths.build(arch) / "rpc-patch")
        said = _patch_stamp(paths).read_text().rsplit(" ", 1)[0]
        return f"tvm_rpc for {arch} ({processor}; RPC patches (bulk copies, frame channel): {said})", disk_mb(
            paths.build(arch)
        )

    def done(p: ArmPaths) -> bool:  # built, and from the source as it is now patched
        stamp, built = _patch_stamp(p), p.build(arch) / "rpc-patch"
        return (
            p.tvm_rpc(arch).is_file()
            and (p.cc_dir(arch) / "g++").exists()
            and stamp.is_file()
            and built.is_file()
            and built.read_text() == stamp.read_text()
        )

    return Step(f"cpp-{arch}", f"C++ RPC server for {arch}", done, run)


# -- the rpi4's arm64 user space and the Python server ----------------------------------------------
def _userspace(paths: ArmPaths, ctx: Context) -> tuple[str, float]:
    fix = "check apt's sources (the arm64 packages come from the same mirror), or skip it with --no-rpi4"
    sources = [
        p
        for p in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
        if p.is_file() and p.stat().st_size
    ]
    tmp = paths.sysroot.with_name("arm64-root.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    sh(
        "userspace",
        [
            "mmdebstrap",
            "--arch=arm64",
            "--variant=extract",  # unpacked, no package scripts: nothing ARM runs, no binfmt_misc needed
            "--include=python3,libstdc++6,libgcc-s1",
            "bookworm",
            str(tmp),
            *(str(s) for s in sources[:1]),
        ],
        ctx,
        fix,
    )
    shutil.rmtree(paths.sysroot, ignore_errors=True)
    tmp.rename(paths.sysroot)
    return "arm64 Debian bookworm python3, unpacked (mmdebstrap)", disk_mb(paths.sysroot)


def _wheels_done(paths: ArmPaths) -> bool:
    return (paths.site / "tvm" / "__init__.py").is_file() and (paths.shim / "sitecustomize.py").is_file()


def _wheels(paths: ArmPaths, ctx: Context) -> tuple[str, float]:
    import sys

    fix = "check that pip can reach the package index; the tvm wheel is tagged manylinux_2_28_aarch64"
    tmp = paths.site.with_name("tvm-site.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    sh(
        "wheels",
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--target",
            str(tmp),
            "--only-binary=:all:",
            "--platform",
            "manylinux_2_28_aarch64",
            "--platform",
            "manylinux2014_aarch64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
            *WHEELS,
        ],
        ctx,
        fix,
    )
    compiler = tmp / "tvm" / "lib" / "libtvm_compiler.so"
    if compiler.exists():
        compiler.unlink()  # 240 MB a board never uses (TVM_USE_RUNTIME_LIB=1)
    shutil.rmtree(paths.site, ignore_errors=True)
    tmp.rename(paths.site)
    write_shim(paths)
    return "apache-tvm 0.27 aarch64 wheels (runtime only)", disk_mb(paths.site)


def plan(cpp: tuple[str, ...], rpi4: bool, patch: bool = True) -> list[Step]:
    """The steps for ``--cpp`` architectures and (unless ``--no-rpi4``) the rpi4 Python server;
    ``patch``: the source patched as ``--no-rpc-patch`` did not say (a change redoes the builds)."""
    steps = [Step("host-packages", "qemu, cross compilers, mmdebstrap, ninja", lambda p: not _missing_packages(), _apt)]
    if cpp:
        steps.append(Step("source", "TVM source", _source_done_for(patch), _source))
        steps.append(Step("tools", "cmake >= 3.26", lambda p: p.cmake.exists(), _tools))
        steps.extend(cpp_step(arch) for arch in cpp)
    if rpi4:
        steps.append(
            Step("userspace", "arm64 user space", lambda p: (p.sysroot / "usr/bin/python3").exists(), _userspace)
        )
        steps.append(Step("wheels", "aarch64 TVM wheels", _wheels_done, _wheels))
    return steps
