"""Local boards behind shaped links: network namespaces, veth pairs and netem (docs/network-links.md).

The test builds the recipe in docs/network-links.md under names derived from its own pid: a
bridge in the root namespace holding the tracker's address, and per board a namespace joined to
the bridge by a veth pair shaped on both ends. Shaping is netem (100 Mbit/s, 1 ms each way)
where the kernel has sch_netem; kernels without it (this project's sandbox among them) get a
token bucket (tbf) at 10 Mbit/s instead, which has no delay but makes every byte cost time, so
the branch calls still visibly cross the links. Nothing gets a default route and the bridge has
no uplink, so the traffic stays on these links and loopback. Everything is removed in the
fixture's finalizer, also when the test fails. Where the sandbox forbids any of it (not root,
no ``ip``/``tc``, ``ip netns add`` refused, neither qdisc available) the test is skipped with
the reason.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import rpc_processes, splitrun_popen

from splitnet.framework.errors import ProblemsError
from splitnet.runtime import inventory_file

pytestmark = pytest.mark.boards

BOARDS = 2
# float32 frames: 4x the bytes of the default uint8 wire, so that a shaped link's cost stands
# clear of loopback's jitter (12 KB over 10 mbit is 4.9 ms; a 3 KB uint8 frame is 1.2 ms)
TINY = ["--model", "resnet_tiny", "--runs", "20", "--warmup", "2", "--wire", "float32"]
INPUT_BYTES = 3 * 32 * 32 * 4  # resnet_tiny's float32 input tensor, sent to every branch on every call
LOOPBACK_INVENTORY = Path(__file__).resolve().parents[2] / "inventories" / "local.yaml"
RUN_TIMEOUT_S = 300


@dataclass(frozen=True)
class Shaping:
    kind: str
    qdisc: tuple[str, ...]
    bandwidth_mbit: float
    rtt_ms: float  # added by the qdiscs on both ends of a veth

    def floor_ms(self) -> float:
        """The least time a branch call must spend on the link: the delay, or the input's bytes."""
        return max(self.rtt_ms, 0.5 * INPUT_BYTES * 8 / (self.bandwidth_mbit * 1e6) * 1000.0)


NETEM = Shaping("netem", ("netem", "delay", "1ms", "rate", "100mbit"), 100.0, 2.0)
TBF = Shaping("tbf", ("tbf", "rate", "10mbit", "burst", "4kb", "latency", "100ms"), 10.0, 0.01)


@dataclass(frozen=True)
class Links:
    """What the fixture built: a bridge and one shaped namespace per board."""

    prefix: str  # sn<pid>: every interface and namespace name is this plus br, b<i>, v<i> or p<i>
    bridge: str
    bridge_ip: str
    namespaces: tuple[str, ...]
    board_ips: tuple[str, ...]
    shaping: Shaping


def _sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def _or_skip(why: str, *args: str) -> None:
    """Run a setup command; if the sandbox refuses it, skip with the command and its error."""
    result = _sh(*args)
    if result.returncode != 0:
        error = " ".join((result.stderr or result.stdout).split())
        pytest.skip(f"{why}: `{' '.join(args)}` failed ({error})")


def _free_subnet(seed: int) -> ipaddress.IPv4Network:
    """A 10.x.y.0/24 that no route or address on this host overlaps, chosen from ``seed``."""
    taken = []
    for line in _sh("ip", "-4", "route", "show", "table", "all").stdout.splitlines():
        for word in line.split()[:2]:  # "10.0.0.0/8 dev ..." or "local 127.0.0.0/8 dev ..."
            try:
                taken.append(ipaddress.ip_network(word, strict=False))
                break
            except ValueError:
                continue
    for i in range(256 * 50):
        k = seed + i
        net = ipaddress.ip_network(f"10.{200 + k % 50}.{(k // 50) % 256}.0/24")
        if not any(net.overlaps(t) for t in taken):
            return net
    pytest.skip("no free 10.200-249.x.0/24 subnet on this host")


def _names_left(prefix: str) -> list[str]:
    namespaces = [line.split()[0] for line in _sh("ip", "netns", "list").stdout.splitlines() if line.strip()]
    links = [line.split(":")[1].strip().split("@")[0] for line in _sh("ip", "-o", "link", "show").stdout.splitlines()]
    ours = re.compile(rf"{prefix}(br|[bvp]\d+)")  # not sn12's names matching sn123's
    return [name for name in namespaces + links if ours.fullmatch(name)]


def _remove(prefix: str, bridge: str, namespaces: list[str], veths: list[str]) -> None:
    """Delete what setup made; each device takes its qdiscs with it and each veth its peer."""
    for veth in veths:
        _sh("ip", "link", "del", veth)
    _sh("ip", "link", "del", bridge)
    for ns in namespaces:
        _sh("ip", "netns", "del", ns)


@pytest.fixture
def shaped_links():
    if not sys.platform.startswith("linux"):
        pytest.skip("network namespaces are Linux only")
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces, veth pairs and netem qdiscs")
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found (install iproute2)")
    prefix = f"sn{os.getpid()}"  # <= 9 characters: every name below fits IFNAMSIZ (15)
    bridge = f"{prefix}br"
    subnet = _free_subnet(os.getpid())
    hosts = list(subnet.hosts())
    bridge_ip = str(hosts[0])
    namespaces: list[str] = []
    veths: list[str] = []
    try:
        _or_skip("cannot create a bridge", "ip", "link", "add", bridge, "type", "bridge")
        _or_skip("cannot address the bridge", "ip", "addr", "add", f"{bridge_ip}/24", "dev", bridge)
        _or_skip("cannot bring the bridge up", "ip", "link", "set", bridge, "up")
        board_ips = []
        shaping = None
        for i in range(BOARDS):
            ns, veth, peer, ip = f"{prefix}b{i}", f"{prefix}v{i}", f"{prefix}p{i}", str(hosts[i + 1])
            _or_skip("ip netns add is not allowed here", "ip", "netns", "add", ns)
            namespaces.append(ns)
            _or_skip("cannot create a veth pair", "ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
            veths.append(veth)
            _or_skip("cannot move a veth into a namespace", "ip", "link", "set", peer, "netns", ns)
            _or_skip("cannot attach a veth to the bridge", "ip", "link", "set", veth, "master", bridge)
            _or_skip("cannot bring a veth up", "ip", "link", "set", veth, "up")
            ip_ns = ("ip", "netns", "exec", ns)
            _or_skip("cannot configure the namespace", *ip_ns, "ip", "addr", "add", f"{ip}/24", "dev", peer)
            _or_skip("cannot configure the namespace", *ip_ns, "ip", "link", "set", peer, "up")
            _or_skip("cannot configure the namespace", *ip_ns, "ip", "link", "set", "lo", "up")
            if shaping is None:  # the first veth tells which qdisc this kernel has
                shaping = NETEM if _sh("tc", "qdisc", "add", "dev", veth, "root", *NETEM.qdisc).returncode == 0 else TBF
                if shaping is TBF:
                    _or_skip(
                        "neither sch_netem nor sch_tbf is available",
                        "tc",
                        "qdisc",
                        "add",
                        "dev",
                        veth,
                        "root",
                        *TBF.qdisc,
                    )
            else:
                _or_skip(f"cannot add {shaping.kind}", "tc", "qdisc", "add", "dev", veth, "root", *shaping.qdisc)
            _or_skip(f"cannot add {shaping.kind}", *ip_ns, "tc", "qdisc", "add", "dev", peer, "root", *shaping.qdisc)
            board_ips.append(ip)
        yield Links(prefix, bridge, bridge_ip, tuple(namespaces), tuple(board_ips), shaping)
    finally:
        _remove(prefix, bridge, namespaces, veths)
    assert not _names_left(prefix), f"left behind: {_names_left(prefix)}"


def _inventory(links: Links) -> str:
    """The inventory docs/network-links.md shows, with this test's names and addresses."""
    boards = [
        {
            "name": f"board{i}",
            "target": "x86",
            "local": True,
            "host": ip,
            "netns": ns,
            "link": {"bandwidth_mbit": links.shaping.bandwidth_mbit, "rtt_ms": links.shaping.rtt_ms},
        }
        for i, (ns, ip) in enumerate(zip(links.namespaces, links.board_ips, strict=True))
    ]
    tracker = {"local": True, "host": links.bridge_ip}
    description = f"local boards behind {links.shaping.kind} links"
    inventory = {"description": description, "trusted_network": True, "tracker": tracker, "boards": boards}
    return yaml.safe_dump(inventory)


def _splitrun(inventory: Path, report: Path) -> dict:
    proc = splitrun_popen(*TINY, "--inventory", str(inventory), "--json", str(report))
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.terminate()  # splitrun stops its boards on SIGTERM
        proc.communicate(timeout=30)
        raise
    assert proc.returncode == 0, err
    assert "PASS" in out and "Traceback" not in err
    assert not rpc_processes(owner=proc.pid), "splitrun left RPC processes behind"
    return json.loads(report.read_text())


def test_branches_cross_shaped_namespace_links(shaped_links, tmp_path, no_leaked_boards):
    inventory = tmp_path / "netns.yaml"
    inventory.write_text(_inventory(shaped_links))
    loopback = _splitrun(LOOPBACK_INVENTORY, tmp_path / "loopback.json")
    shaped = _splitrun(inventory, tmp_path / "netns.json")

    for data in (loopback, shaped):
        fidelity = [c for c in data["checks"] if c["name"].startswith("distributed vs in-process")]
        assert data["ok"] and [c["status"] for c in fidelity] == ["PASS"], data["checks"]
    assert len(shaped["branches"]) == len(loopback["branches"]) == BOARDS
    hosts = sorted(b["address"].rsplit(":", 1)[0] for b in shaped["branches"])
    assert hosts == sorted(shaped_links.board_ips), "branches did not run on the namespaced boards"
    assert shaped["wire"]["format"] == "float32" and shaped["wire"]["frame_bytes"] == INPUT_BYTES, shaped["wire"]
    figures = []
    shaping = shaped_links.shaping
    floor = shaping.floor_ms()
    for branch, plain in zip(shaped["branches"], loopback["branches"], strict=True):
        netns_ms, loopback_ms = branch["transfer_ms"], plain["transfer_ms"]
        where = f"branch {branch['index']}"
        assert netns_ms >= floor, f"{where}: {netns_ms:.2f} ms transfer, below the {floor:.2f} ms {shaping.kind} adds"
        assert netns_ms > loopback_ms, f"{where}: {netns_ms:.2f} ms transfer, not above loopback {loopback_ms:.2f} ms"
        assert branch["link_ms"] is not None and branch["link_ms"] >= floor, branch
        figures.append((netns_ms, loopback_ms))
    predicted = ", ".join(f"{b['link_ms']:.2f}" for b in shaped["branches"])
    measured = ", ".join(f"branch {i}: {n:.2f} vs {lo:.2f}" for i, (n, lo) in enumerate(figures))
    print(f"{shaping.kind}: transfer ms (call p50 - compute), netns vs loopback: {measured}; link ms: {predicted}")


def test_namespaced_board_on_loopback_fails_at_once(no_leaked_boards):
    """Inside a namespace 127.0.0.1 is the namespace itself: say so before starting anything."""
    text = """
tracker: {local: true}
boards:
  - {name: board0, target: x86, local: true, netns: nowhere0}
"""
    with pytest.raises(ProblemsError) as caught:
        inventory_file.parse_text(text, "netns-on-loopback.yaml")
    lines = caught.value.lines()
    assert len(lines) == 2 and all(line.startswith("netns-on-loopback.yaml: ") for line in lines)
    assert all("(board0)" in line and "docs/network-links.md" in line for line in lines)
    assert "its host is 127.0.0.1" in lines[0] and "tracker on 127.0.0.1" in lines[1]
