"""Real builds for ARM boards: the artifacts are ARM ELF files of the right class and ABI.

Nothing here can run ARM code, so the check is on the files themselves, read with readelf
(binutils). ``.tar`` exports need no cross toolchain; the ``.so`` cases run only where
Debian's cross g++ is installed.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile

import pytest

from splitnet.framework import compile as compile_module
from splitnet.framework.compile import compile_part
from splitnet.framework.errors import SplitnetError
from splitnet.partitioners import apply_plan, get_partitioner
from splitnet.runtime import get_preset

pytestmark = pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf (binutils) is not installed")


@pytest.fixture(scope="module")
def tiny_branch(tiny_graph):
    plan = get_partitioner("resnet_v1").plan(tiny_graph, model="resnet_tiny", n=2, widths=None, multiple=8)
    return apply_plan(tiny_graph, plan).branches[0]


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", *args], capture_output=True, text=True, check=True).stdout


def objects_in(archive, into) -> list:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    objects = sorted(into.glob("*.o"))
    assert objects, f"no object files in {archive}"
    return objects


def test_pynq_tar_is_32bit_arm_with_the_hard_float_abi(tiny_branch, tmp_path):
    artifact = compile_part(tiny_branch, get_preset("pynq-z1").target(), "tar", cache_dir=tmp_path / "cache")
    assert artifact.path.suffix == ".tar"
    for obj in objects_in(artifact.path, tmp_path / "x"):
        header = readelf("-h", str(obj))
        assert "ELF32" in header and "Machine:                           ARM" in header, header
        assert "Tag_ABI_VFP_args: VFP registers" in readelf("-A", str(obj))  # floats passed in VFP registers


def test_soft_float_build_lacks_the_hard_float_tag(tiny_branch, tmp_path):
    """The ABI check can fail: a soft-float ARM build does not carry the tag."""
    target = {k: v for k, v in get_preset("pynq-z1").target().items() if k != "mfloat-abi"}
    target["mtriple"] = "armv7a-linux-gnueabi"
    artifact = compile_part(tiny_branch, target, "tar", cache_dir=tmp_path / "cache")
    objects = objects_in(artifact.path, tmp_path / "x")
    assert not any("Tag_ABI_VFP_args: VFP registers" in readelf("-A", str(o)) for o in objects)


def test_rpi4_tar_is_64bit_aarch64(tiny_branch, tmp_path):
    artifact = compile_part(tiny_branch, get_preset("rpi4").target(), "tar", cache_dir=tmp_path / "cache")
    for obj in objects_in(artifact.path, tmp_path / "x"):
        header = readelf("-h", str(obj))
        assert "ELF64" in header and "AArch64" in header, header


@pytest.mark.skipif(shutil.which("arm-linux-gnueabihf-g++") is None, reason="g++-arm-linux-gnueabihf not installed")
def test_pynq_so_is_an_arm_hard_float_shared_library(tiny_branch, tmp_path):
    artifact = compile_part(tiny_branch, get_preset("pynq-z1").target(), "so", cache_dir=tmp_path / "cache")
    header = readelf("-h", str(artifact.path))
    assert "ELF32" in header and "DYN (Shared object file)" in header and "hard-float ABI" in header, header


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-g++") is None, reason="g++-aarch64-linux-gnu not installed")
def test_rpi4_so_is_an_aarch64_shared_library(tiny_branch, tmp_path):
    artifact = compile_part(tiny_branch, get_preset("rpi4").target(), "so", cache_dir=tmp_path / "cache")
    header = readelf("-h", str(artifact.path))
    assert "ELF64" in header and "AArch64" in header and "DYN (Shared object file)" in header, header


def test_so_without_the_cross_compiler_names_the_package(tiny_branch, tmp_path, monkeypatch):
    monkeypatch.setattr(compile_module.shutil, "which", lambda name: None)
    with pytest.raises(SplitnetError) as err:
        compile_part(tiny_branch, get_preset("pynq-z1").target(), "so", cache_dir=tmp_path / "cache")
    line = err.value.one_line()
    assert "arm-linux-gnueabihf-g++" in line and "apt install g++-arm-linux-gnueabihf" in line and "tar" in line
