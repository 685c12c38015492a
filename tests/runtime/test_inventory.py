"""Inventory YAML: shipped examples, presets, environment, and every kind of bad file."""

from __future__ import annotations

import os
import textwrap

import pytest
from conftest import rpc_processes, splitrun

from splitnet.framework.errors import ProblemsError, SplitnetError
from splitnet.framework.targets import check_target, runs_here
from splitnet.runtime import builtin_inventory, get_preset, list_presets, load_inventory
from splitnet.runtime.inventory_file import builtin_inventories, parse_text, resolve_inventory

GOOD_BOARD = "  - {name: b0, target: x86, local: true}\n"


def parse(text: str):
    return parse_text(textwrap.dedent(text), "inv.yaml")


@pytest.mark.parametrize("name", builtin_inventories())
def test_every_shipped_inventory_loads(name):
    inventory = builtin_inventory(name)
    assert inventory.boards and inventory.description
    assert len(set(inventory.names)) == len(inventory.boards)
    for board in inventory.boards:
        assert check_target(board.target) is None
        assert check_target(board.build_target) is None


def test_shipped_examples_are_the_ones_the_docs_name():
    assert {"two-pynq", "heterogeneous", "local"} <= set(builtin_inventories())


def test_default_is_two_emulated_pynq_boards():
    inventory = resolve_inventory(None)
    assert inventory.source == "built-in two-pynq.yaml" and inventory.tracker.local
    assert inventory.names == ("pynq0", "pynq1") and inventory.keys == ("pynq",)
    for board in inventory.boards:
        assert board.local and board.emulated and board.preset == "pynq-z1"
        assert board.target["mfloat-abi"] == "hard" and not runs_here(board.target)
        assert runs_here(board.build_target) and board.build_format == "so"  # what runs on this host
        assert board.build_target["num-cores"] == 1


def test_presets():
    assert set(list_presets()) >= {"pynq-z1", "rpi4", "x86", "cuda"}
    pynq = get_preset("pynq-z1")
    assert pynq.key == "pynq" and pynq.export_format == "tar"
    assert pynq.target()["mtriple"] == "armv7a-linux-gnueabihf" and pynq.target()["mcpu"] == "cortex-a9"
    assert get_preset("rpi4").target()["mtriple"] == "aarch64-linux-gnu"
    assert runs_here(get_preset("x86").target())
    assert get_preset("cuda").target()["kind"] == "cuda"
    for name in list_presets():
        assert check_target(get_preset(name).target()) is None, name


def test_board_fields_and_defaults():
    inventory = parse(
        """
        tracker: {host: 127.0.0.1, port: 9999, local: false}
        placement: balanced
        trusted_network: false
        boards:
          - name: p0
            target: pynq-z1
            link: {bandwidth_mbit: 100, rtt_ms: 2}
          - name: g0
            target: {kind: llvm, mtriple: aarch64-linux-gnu}
            key: arm
            cores: 4
            speed: 2.5
            memory: 2GB
            export: so
        """
    )
    assert (inventory.tracker.host, inventory.tracker.port, inventory.tracker.local) == ("127.0.0.1", 9999, False)
    assert inventory.placement == "balanced"
    p0, g0 = inventory.boards
    assert (p0.key, p0.cores, p0.memory_mb, p0.export_format, p0.local) == ("pynq", 2, 512, "tar", False)
    assert p0.link.transfer_ms(12_500_000) == pytest.approx(2 + 1000)  # 100 Mbit moves 12.5 MB in 1 s
    assert (g0.key, g0.cores, g0.speed, g0.memory_mb, g0.export_format) == ("arm", 4, 2.5, 2048, "so")
    assert not g0.emulated and g0.build_target == g0.target  # not local: built for the real board


def test_leaving_loopback_is_allowed_once_the_network_is_declared_trusted():
    inventory = parse(
        "trusted_network: true\ntracker: {host: 10.1.2.3, port: 9190}\nboards:\n  - {name: b, target: x86}\n"
    )
    assert inventory.trusted_network and inventory.tracker.host == "10.1.2.3"


def test_tracker_environment_fills_what_the_file_leaves_out(monkeypatch):
    monkeypatch.setenv("TVM_TRACKER_HOST", "127.0.0.1")
    monkeypatch.setenv("TVM_TRACKER_PORT", "9411")
    inventory = parse("boards:\n" + GOOD_BOARD)
    assert (inventory.tracker.host, inventory.tracker.port, inventory.tracker.local) == ("127.0.0.1", 9411, False)
    inventory = parse("tracker: {port: 9000}\nboards:\n" + GOOD_BOARD)
    assert inventory.tracker.port == 9000  # the file wins


def _clean_env(monkeypatch):
    monkeypatch.delenv("TVM_TRACKER_HOST", raising=False)
    monkeypatch.delenv("TVM_TRACKER_PORT", raising=False)


# (file text, expected fragment of the single error line)
BAD_FILES = {
    "malformed yaml": ("boards:\n  - name: b0\n   target: x86\n", "not valid YAML at line 3"),
    "top level list": ("- name: b0\n", "top level: expected a mapping"),
    "unknown top key": ("descripton: x\nboards:\n" + GOOD_BOARD, "descripton: unknown key (fix: did you mean 'desc"),
    "unrelated top key": ("colour: red\nboards:\n" + GOOD_BOARD, "colour: unknown key (fix: remove it; known keys"),
    "unknown board key": (
        "boards:\n  - {name: b0, target: x86, core: 2}\n",
        "boards[0] (b0).core: unknown key (fix: did you mean 'cores'?",
    ),
    "cores not a number": (
        "boards:\n  - {name: b0, target: x86, cores: two}\n",
        "boards[0] (b0).cores: expected an integer, got 'two'",
    ),
    "cores is a bool": ("boards:\n  - {name: b0, target: x86, cores: yes}\n", "cores: expected an integer, got True"),
    "missing name": ("boards:\n  - {target: x86}\n", "boards[0].name: missing"),
    "missing target": ("boards:\n  - {name: b0}\n", "boards[0] (b0).target: missing"),
    "unknown preset": (
        "boards:\n  - {name: b0, target: pynq-z2}\n",
        "boards[0] (b0).target: unknown preset 'pynq-z2' (fix: use one of: cuda, pynq-z1, rpi4, x86)",
    ),
    "bad target dict": (
        "boards:\n  - {name: b0, key: k, target: {kind: llvm, frobs: 3}}\n",
        "boards[0] (b0).target: TVM rejects this target",
    ),
    "target dict without key": ("boards:\n  - {name: b0, target: {kind: llvm}}\n", "boards[0] (b0).key: missing"),
    "duplicate name": ("boards:\n" + GOOD_BOARD + GOOD_BOARD, "boards[1].name: duplicate name 'b0'"),
    "export format": ("boards:\n  - {name: b0, target: x86, export: zip}\n", "unknown export format 'zip'"),
    "quota above one": (
        "boards:\n  - {name: b0, target: x86, local: true, cpu_quota: 2}\n",
        "cpu_quota: is a fraction of one core",
    ),
    "quota on remote board": (
        "tracker: {local: true}\nboards:\n  - {name: b0, target: x86, cpu_quota: 0.5}\n",
        "boards[0] (b0).cpu_quota: only applies to local boards",
    ),
    "negative speed": ("boards:\n  - {name: b0, target: x86, speed: -1}\n", "speed: must be positive"),
    "bad memory": ("boards:\n  - {name: b0, target: x86, memory: lots}\n", "cannot read 'lots' as a memory size"),
    "link missing rtt": (
        "boards:\n  - {name: b0, target: x86, link: {bandwidth_mbit: 100}}\n",
        "boards[0] (b0).link.rtt_ms: missing",
    ),
    "tracker port": ("tracker: {local: true, port: 70000}\nboards:\n" + GOOD_BOARD, "tracker.port: 70000 is not"),
    "tracker without host": ("tracker: {local: false}\nboards:\n" + GOOD_BOARD, "tracker: no tracker host"),
    "no boards": ("tracker: {local: true}\nboards: []\n", "boards: is empty"),
    "missing boards": ("tracker: {local: true}\n", "boards: missing"),
    "unknown placement": ("placement: fastest\nboards:\n" + GOOD_BOARD, "placement: unknown strategy 'fastest'"),
    "host binds everything": (
        "boards:\n  - {name: b0, target: x86, local: true, host: 0.0.0.0}\n",
        "boards[0] (b0).host: 0.0.0.0 binds every interface",
    ),
    "tracker off loopback": (
        "tracker: {host: 10.1.2.3, port: 9190}\nboards:\n  - {name: b0, target: x86}\n",
        "tracker.host: 10.1.2.3 is not loopback, and a TVM RPC tracker hands out servers that run any code",
    ),
    "board off loopback": (
        "tracker: {local: true}\nboards:\n  - {name: b0, target: x86, local: true, host: 10.1.2.4}\n",
        "boards[0] (b0).host: 10.1.2.4 is not loopback",
    ),
    "board not a mapping": ("boards:\n  - pynq0\n", "boards[0]: expected a mapping, got 'pynq0'"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_inventory_gives_one_line_naming_file_key_and_fix(case, monkeypatch):
    _clean_env(monkeypatch)
    text, expected = BAD_FILES[case]
    with pytest.raises(SplitnetError) as err:
        parse_text(text, "inv.yaml")
    lines = err.value.lines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("inv.yaml: ") and expected in lines[0] and "(fix: " in lines[0], lines[0]


def test_bad_tracker_port_from_environment(monkeypatch):
    monkeypatch.setenv("TVM_TRACKER_HOST", "127.0.0.1")
    monkeypatch.setenv("TVM_TRACKER_PORT", "ninety")
    with pytest.raises(SplitnetError, match="TVM_TRACKER_PORT: 'ninety' is not a port number"):
        parse("boards:\n" + GOOD_BOARD)


def test_every_problem_in_a_file_is_reported_at_once(monkeypatch):
    _clean_env(monkeypatch)
    text = """
        tracker: {local: true, prot: 9190}
        boards:
          - {name: a, target: x86, cores: 0}
          - {name: b, target: pynq-z3}
          - {name: a, target: x86}
        """
    with pytest.raises(ProblemsError) as err:
        parse(text)
    lines = err.value.lines()
    assert len(lines) == 4, lines
    for fragment in ("tracker.prot: unknown key", "(a).cores: must be at least 1", "unknown preset 'pynq-z3'", "dup"):
        assert sum(fragment in line for line in lines) == 1, (fragment, lines)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(SplitnetError, match="not found"):
        load_inventory(tmp_path / "nope.yaml")
    with pytest.raises(SplitnetError, match="cannot read inventory file"):
        load_inventory(tmp_path)


@pytest.mark.boards
def test_cli_prints_each_problem_on_its_own_line_and_starts_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("boards:\n  - {name: a, target: x86, cores: many}\n  - {name: a, target: nope}\n")
    proc = splitrun("--model", "resnet_tiny", "--inventory", str(bad), timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, proc.stderr
    assert all(str(bad) in line and "fix:" in line for line in errors)
    assert not rpc_processes(owner=os.getpid())
