"""``emulation: auto|qemu|host``: what a local ARM board runs on, and the inventory checks."""

from __future__ import annotations

import pytest
from conftest import inventory_board as board
from conftest import splitrun

from splitnet.framework.errors import ProblemsError
from splitnet.runtime.arm.paths import ArmPaths, arch_of


def test_arch_of_targets():
    assert arch_of(board("target: pynq-z1, local: true").target) == "armhf"
    assert arch_of(board("target: rpi4, local: true").target) == "aarch64"
    assert arch_of(board("target: x86, local: true").target) is None


def test_without_the_set_up_auto_is_the_host_stand_in(monkeypatch, tmp_path):
    monkeypatch.setenv("SPLITNET_ARM_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("SPLITNET_EMULATION")
    b = board("target: pynq-z1, local: true")
    assert b.emulation == "auto" and not b.under_qemu and b.emulated
    assert b.emulation_mode == "host" and b.build_format == "so"


def test_host_keeps_the_stand_in_even_when_set_up(monkeypatch):
    monkeypatch.delenv("SPLITNET_EMULATION")
    b = board("target: pynq-z1, local: true, emulation: host")
    assert not b.under_qemu and b.emulated and "emulated on this host" in b.describe()


def test_under_qemu_a_board_builds_for_its_own_target(monkeypatch):
    if not ArmPaths.default().cpp_ready("armhf"):
        pytest.skip("the armhf set-up is absent (splitrun setup arm)")
    monkeypatch.delenv("SPLITNET_EMULATION")
    b = board("target: pynq-z1, local: true")
    assert b.qemu_server == "cpp-armhf" and not b.emulated
    assert b.build_target == b.target and b.build_format == "tar"
    assert b.describe() == "pynq-z1 (armhf under qemu)"
    monkeypatch.setenv("SPLITNET_EMULATION", "host")  # what the other tests run under
    assert b.emulated


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("target: pynq-z1, local: true, emulation: vm", "unknown emulation 'vm'"),
        ("target: x86, local: true, emulation: qemu", "qemu runs ARM boards only"),
        ("target: pynq-z1, emulation: qemu", "only applies to local boards"),
    ],
)
def test_bad_emulation_is_one_line(line, words):
    with pytest.raises(ProblemsError) as err:
        board(line)
    assert any(words in problem for problem in err.value.lines()), err.value.lines()


def test_qemu_without_the_set_up_says_run_setup(tmp_path):
    empty = tmp_path / "empty"
    proc = splitrun("boards", "--inventory", "two-pynq-qemu", env={"SPLITNET_ARM_CACHE": str(empty)}, timeout=120)
    assert proc.returncode == 2
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "splitrun setup arm" in errors[0], proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
