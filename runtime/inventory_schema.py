"""The inventory file's schema and the checks of single values, each problem one line.

:mod:`inventory_file` walks a YAML document with these: every key of every section has a
:class:`Field` (the types it takes and an example that becomes the fix), and
:class:`Problems` collects what is wrong so that the whole list is reported at once.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from dataclasses import dataclass

from ..framework.errors import ProblemsError, SplitnetError
from .inventory import LOOPBACK, Tracker
from .presets import list_presets

NUMBER = (int, float)


@dataclass(frozen=True)
class Field:
    types: tuple[type, ...]
    example: str


TOP = {
    "description": Field((str,), "description: two PYNQ-Z1 boards"),
    "tracker": Field((dict,), "tracker: {local: true}"),
    "placement": Field((str,), "placement: balanced"),
    "trusted_network": Field((bool,), "trusted_network: true"),
    "policy": Field((str,), "policy: spare"),
    "boards": Field((list,), "boards: [{name: pynq0, target: pynq-z1, local: true}]"),
}
TRACKER = {
    "host": Field((str,), "host: 127.0.0.1"),
    "port": Field((int,), "port: 9190"),
    "local": Field((bool,), "local: true"),
}
BOARD = {
    "name": Field((str,), "name: pynq0"),
    "key": Field((str,), "key: pynq"),
    "target": Field((str, dict), f"target: pynq-z1 (presets: {', '.join(list_presets())}) or a TVM target dict"),
    "cores": Field((int,), "cores: 2"),
    "speed": Field(NUMBER, "speed: 0.5 (relative to the other boards)"),
    "memory": Field((str, int), "memory: 512MB"),
    "link": Field((dict,), "link: {bandwidth_mbit: 100, rtt_ms: 2}"),
    "export": Field((str,), "export: tar"),
    "local": Field((bool,), "local: true"),
    "cpu_quota": Field(NUMBER, "cpu_quota: 0.5 (half of one core)"),
    "host": Field((str,), "host: 127.0.0.1"),
    "netns": Field((str,), "netns: board0"),
    "emulation": Field((str,), "emulation: auto (qemu when splitrun setup arm has run, else host), qemu or host"),
    "server": Field((str,), "server: cpp (the C++ tvm_rpc, splitrun setup arm --cpp x86_64) or python"),
}
LINK = {
    "bandwidth_mbit": Field(NUMBER, "bandwidth_mbit: 100"),
    "rtt_ms": Field(NUMBER, "rtt_ms: 2"),
}
LOCAL_ONLY = ("cpu_quota", "host", "netns", "emulation", "server")
MAX_MEMORY_MB = 2**40  # a petabyte: anything above is a typo
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)


class Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[SplitnetError] = []

    def add(self, where: str, what: str, fix: str) -> None:
        self.found.append(SplitnetError(f"{self.source}: {where}: {what}", fix))

    def raise_if_any(self) -> None:
        if self.found:
            raise ProblemsError(self.found)


def _type_name(types: tuple[type, ...]) -> str:
    names = {
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "a string",
        dict: "a mapping",
        list: "a list",
    }
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _is(value, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # YAML true is a bool, never a number here
        return bool in types
    if isinstance(value, float) and not math.isfinite(value):  # .nan and .inf are never meant
        return False
    return isinstance(value, types)


def checked(data: dict, schema: dict[str, Field], where: str, problems: Problems) -> dict:
    """The keys of ``data`` that are known and well typed; a problem for every other key."""
    good = {}
    for key, value in data.items():
        field = schema.get(key)
        if field is None:
            close = difflib.get_close_matches(str(key), schema, n=1)
            fix = f"did you mean {close[0]!r}? rename it" if close else f"remove it; known keys: {', '.join(schema)}"
            problems.add(f"{where}{key}", "unknown key", fix)
        elif not _is(value, field.types):
            problems.add(
                f"{where}{key}", f"expected {_type_name(field.types)}, got {value!r}", f"write it as {field.example}"
            )
        else:
            good[key] = value
    return good


def memory_mb(text, where: str, problems: Problems) -> int | None:
    """``512MB``, ``4 GB``, ``2GiB`` or a bare number of megabytes."""
    match = _MEMORY.match(str(text))  # an int matches too: digits, no unit
    if not match:
        problems.add(where, f"cannot read {text!r} as a memory size", "write it as 512MB or 4GB")
        return None
    value, unit = float(match.group(1)), (match.group(2) or "MB").lower()
    mb = value * 1024 if unit.startswith("g") else value
    if not 0 < mb < MAX_MEMORY_MB:
        problems.add(where, f"{text!r} is not a plausible memory size", "write it as 512MB or 4GB")
        return None
    return int(mb)


def is_loopback(host: str) -> bool:
    """``host`` means "this machine" (inside a namespace: the namespace itself)."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def check_host(host: str, netns: str | None, where: str, problems: Problems) -> None:
    """A local board's server binds one concrete address, the one the tracker will record."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        problems.add(
            f"{where}host", f"{host!r} is not an IP address", "give the address its server binds, e.g. 127.0.0.1"
        )
        return
    if address.is_unspecified:
        problems.add(
            f"{where}host",
            f"{host} binds every interface, so the tracker's record of the board cannot be matched to it",
            "give the one address the board serves on, e.g. 127.0.0.1",
        )
    elif netns is not None and address.is_loopback:
        problems.add(
            f"{where}host",
            f"the board runs in network namespace {netns!r} but its host is {host}, which the host cannot reach there",
            "set it to the board's address inside the namespace (its veth address); see docs/network-links.md",
        )


def check_trust(trusted: bool, tracker: Tracker, raw_boards: list, problems: Problems) -> None:
    """TVM RPC runs whatever code it is sent: leaving loopback must be a stated decision."""
    if trusted:
        return
    fix = "if every machine on that network is trusted, add trusted_network: true to the inventory"
    if not is_loopback(tracker.host):
        problems.add(
            "tracker.host",
            f"{tracker.host} is not loopback, and a TVM RPC tracker hands out servers that run any code they are sent",
            fix,
        )
    for i, raw in enumerate(raw_boards):
        if not isinstance(raw, dict):
            continue
        host = raw.get("host", LOOPBACK)
        if raw.get("local") is True and isinstance(host, str) and not (is_loopback(host) or is_unspecified(host)):
            problems.add(
                f"boards[{i}] ({raw.get('name')}).host",
                f"{host} is not loopback, and this board's RPC server will run any code it is sent",
                fix,
            )
