"""``splitrun setup arm``: idempotent, and one-line errors for what it cannot do."""

from __future__ import annotations

import os

import pytest
from conftest import splitrun

from splitnet.framework.errors import SplitnetError
from splitnet.runtime.arm import steps
from splitnet.runtime.arm.paths import ArmPaths, default_source
from splitnet.runtime.arm.steps import Context


def error_lines(proc) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error:")]


def test_plan_follows_the_options():
    assert [s.name for s in steps.plan(("armhf",), rpi4=True)] == [
        "host-packages",
        "source",
        "tools",
        "cpp-armhf",
        "userspace",
        "wheels",
    ]
    assert [s.name for s in steps.plan(("armhf", "aarch64"), rpi4=False)] == [
        "host-packages",
        "source",
        "tools",
        "cpp-armhf",
        "cpp-aarch64",
    ]
    assert [s.name for s in steps.plan((), rpi4=True)] == ["host-packages", "userspace", "wheels"]


def test_the_default_source_is_the_vendored_tarball():
    source = default_source()
    assert source is not None and source.name == "tvm-src-0.27-runtime.tgz" and source.is_file()


def test_unknown_architecture_is_one_line():
    proc = splitrun("setup", "arm", "--cpp", "armel", timeout=60)
    assert proc.returncode == 2 and len(error_lines(proc)) == 1 and "armel" in error_lines(proc)[0]


def test_installing_packages_needs_root(monkeypatch, tmp_path):
    monkeypatch.setattr(steps, "_missing_packages", lambda: ["qemu-user-static"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SplitnetError, match="needs root") as err:
        steps._apt(ArmPaths(tmp_path), Context(None, tmp_path / "logs"))
    assert "apt-get install -y qemu-user-static" in err.value.fix


def test_a_missing_tvm_source_names_the_version(tmp_path):
    if steps._missing_packages():
        pytest.skip("host packages absent: the set-up would install them first")
    proc = splitrun(
        "setup", "arm", "--no-rpi4", "--cache", str(tmp_path / "c"), "--tvm-src", str(tmp_path / "nope"), timeout=60
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = error_lines(proc)
    assert "setup step source" in line and "a TVM checkout of the installed version" in line


def test_a_failed_command_names_the_step_and_its_log(tmp_path):
    with pytest.raises(SplitnetError) as err:
        steps.sh("cpp-armhf", ["sh", "-c", "echo compiler exploded; exit 3"], Context(None, tmp_path), "rerun it")
    text = str(err.value)
    assert "setup step cpp-armhf failed (exit 3: compiler exploded" in text and str(tmp_path / "cpp-armhf.log") in text


def test_a_second_run_does_nothing_and_says_so():
    paths = ArmPaths.default()
    if not (paths.cpp_ready("armhf") and paths.python_ready()):
        pytest.skip("the ARM set-up is absent (splitrun setup arm)")
    proc = splitrun("setup", "arm", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nothing to do: every step was already done" in proc.stdout
    assert proc.stdout.count("already done") >= 6


def test_no_network_is_said_as_such(tmp_path):
    offline = "echo \"Temporary failure resolving 'deb.debian.org'\"; exit 100"
    with pytest.raises(SplitnetError) as err:
        steps.sh("host-packages", ["sh", "-c", offline], Context(None, tmp_path), "check apt's sources")
    assert str(err.value).startswith("setup step host-packages: no network")
