"""Load an inventory YAML file into an :class:`Inventory`, reporting every problem at once.

A user with a wrong file wants the whole list of mistakes, not one per run: each problem
names the file, the key (``boards[1] (pynq1).cores``) and the fix, and they are raised
together as a :class:`ProblemsError`. The format::

    description: two PYNQ-Z1 boards
    tracker: {local: true}            # or host: 10.0.0.5, port: 9190
    placement: round-robin            # optional: round-robin | balanced | profile
    boards:
      - name: pynq0
        target: pynq-z1               # a preset name, or a TVM target dict
        local: true                   # splitrun starts an RPC server emulating it
        cores: 1

``TVM_TRACKER_HOST`` / ``TVM_TRACKER_PORT`` fill in a tracker host or port the file leaves
out (the file wins where it sets them).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from splitnet.framework.errors import ProblemsError, SplitnetError
from splitnet.framework.targets import EXPORT_FORMATS, check_target
from splitnet.runtime.executor import POLICIES
from splitnet.runtime.inventory import DEFAULT_TRACKER_PORT, LOOPBACK, Board, Inventory, Link, Tracker
from splitnet.runtime.presets import get_preset, list_presets

BUILTIN_PACKAGE = "splitnet.inventories"
DEFAULT_INVENTORY = "two-pynq"
NUMBER = (int, float)


@dataclass(frozen=True)
class _Field:
    types: tuple[type, ...]
    example: str


TOP = {
    "description": _Field((str,), "description: two PYNQ-Z1 boards"),
    "tracker": _Field((dict,), "tracker: {local: true}"),
    "placement": _Field((str,), "placement: balanced"),
    "trusted_network": _Field((bool,), "trusted_network: true"),
    "policy": _Field((str,), "policy: spare"),
    "boards": _Field((list,), "boards: [{name: pynq0, target: pynq-z1, local: true}]"),
}
TRACKER = {
    "host": _Field((str,), "host: 127.0.0.1"),
    "port": _Field((int,), "port: 9190"),
    "local": _Field((bool,), "local: true"),
}
BOARD = {
    "name": _Field((str,), "name: pynq0"),
    "key": _Field((str,), "key: pynq"),
    "target": _Field((str, dict), f"target: pynq-z1 (presets: {', '.join(list_presets())}) or a TVM target dict"),
    "cores": _Field((int,), "cores: 2"),
    "speed": _Field(NUMBER, "speed: 0.5 (relative to the other boards)"),
    "memory": _Field((str, int), "memory: 512MB"),
    "link": _Field((dict,), "link: {bandwidth_mbit: 100, rtt_ms: 2}"),
    "export": _Field((str,), "export: tar"),
    "local": _Field((bool,), "local: true"),
    "cpu_quota": _Field(NUMBER, "cpu_quota: 0.5 (half of one core)"),
    "host": _Field((str,), "host: 127.0.0.1"),
    "netns": _Field((str,), "netns: board0"),
}
LINK = {
    "bandwidth_mbit": _Field(NUMBER, "bandwidth_mbit: 100"),
    "rtt_ms": _Field(NUMBER, "rtt_ms: 2"),
}
LOCAL_ONLY = ("cpu_quota", "host", "netns")
MAX_MEMORY_MB = 2**40  # a petabyte: anything above is a typo
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)


class _Problems:
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


def _checked(data: dict, schema: dict[str, _Field], where: str, problems: _Problems) -> dict:
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


def _memory_mb(text, where: str, problems: _Problems) -> int | None:
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


def _is_loopback(host: str) -> bool:
    """``host`` means "this machine" (inside a namespace: the namespace itself)."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _check_host(host: str, netns: str | None, where: str, problems: _Problems) -> None:
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


def _check_trust(trusted: bool, tracker: Tracker, raw_boards: list, problems: _Problems) -> None:
    """TVM RPC runs whatever code it is sent: leaving loopback must be a stated decision."""
    if trusted:
        return
    fix = "if every machine on that network is trusted, add trusted_network: true to the inventory"
    if not _is_loopback(tracker.host):
        problems.add(
            "tracker.host",
            f"{tracker.host} is not loopback, and a TVM RPC tracker hands out servers that run any code they are sent",
            fix,
        )
    for i, raw in enumerate(raw_boards):
        if not isinstance(raw, dict):
            continue
        host = raw.get("host", LOOPBACK)
        if raw.get("local") is True and isinstance(host, str) and not (_is_loopback(host) or _is_unspecified(host)):
            problems.add(
                f"boards[{i}] ({raw.get('name')}).host",
                f"{host} is not loopback, and this board's RPC server will run any code it is sent",
                fix,
            )


def _tracker(data: dict | None, problems: _Problems) -> Tracker:
    data = _checked(data or {}, TRACKER, "tracker.", problems)
    env_host, env_port = os.environ.get("TVM_TRACKER_HOST"), os.environ.get("TVM_TRACKER_PORT")
    port = data.get("port")
    if port is None and env_port:
        if env_port.isascii() and env_port.isdigit():
            port = int(env_port)
        else:
            problems.add("TVM_TRACKER_PORT", f"{env_port!r} is not a port number", "export TVM_TRACKER_PORT=9190")
    host = data.get("host") or env_host
    local = data.get("local", host is None)
    if port is not None and not 0 < port < 65536:
        problems.add("tracker.port", f"{port} is not a TCP port", "use a port between 1 and 65535, e.g. 9190")
    if not local and host is None:
        problems.add(
            "tracker", "no tracker host", "set tracker.host (or TVM_TRACKER_HOST), or tracker.local: true to start one"
        )
    if not local and port is None:
        port = DEFAULT_TRACKER_PORT
    return Tracker(host=host or LOOPBACK, port=port, local=bool(local))


def _link(data: dict, where: str, problems: _Problems) -> Link | None:
    data = _checked(data, LINK, f"{where}link.", problems)
    missing = [k for k in LINK if k not in data]
    for key in missing:
        problems.add(f"{where}link.{key}", "missing", f"add {LINK[key].example}")
    for key, value in data.items():
        if value <= 0:
            problems.add(f"{where}link.{key}", f"must be positive, got {value}", f"e.g. {LINK[key].example}")
    if missing or any(v <= 0 for v in data.values()):
        return None
    return Link(bandwidth_mbit=float(data["bandwidth_mbit"]), rtt_ms=float(data["rtt_ms"]))


def _board(index: int, raw, problems: _Problems) -> Board | None:
    if not isinstance(raw, dict):
        problems.add(
            f"boards[{index}]", f"expected a mapping, got {raw!r}", "write it as - name: pynq0 target: pynq-z1"
        )
        return None
    label = f"boards[{index}] ({raw['name']})" if isinstance(raw.get("name"), str) else f"boards[{index}]"
    where = f"{label}."
    count = len(problems.found)
    data = _checked(raw, BOARD, where, problems)
    preset = None
    target = data.get("target")
    if "name" not in raw:
        problems.add(f"{where}name", "missing", "add name: <a unique board name>")
    if "target" not in raw:
        problems.add(f"{where}target", "missing", f"add target: one of {', '.join(list_presets())}, or a target dict")
    elif isinstance(target, str):
        try:
            preset = get_preset(target)
        except SplitnetError as exc:
            problems.add(f"{where}target", f"unknown preset {target!r}", exc.fix)
    elif isinstance(target, dict):
        try:
            json.dumps(target)  # TVM recurses into a self-referencing (YAML anchor) dict and crashes
            why = check_target(target)
        except (ValueError, TypeError) as exc:
            why = f"not a plain mapping of values ({exc})"
        if why:
            problems.add(f"{where}target", f"TVM rejects this target: {why}", "fix the target dict or use a preset")
        if "key" not in data and "key" not in raw:
            problems.add(f"{where}key", "missing (a target dict has no default key)", "add key: <tracker key>")
    cores = data.get("cores", preset.cores if preset else 1)
    if cores < 1:
        problems.add(f"{where}cores", f"must be at least 1, got {cores}", "e.g. cores: 1")
    for key in ("speed", "cpu_quota"):
        if key in data and data[key] <= 0:
            problems.add(f"{where}{key}", f"must be positive, got {data[key]}", f"e.g. {BOARD[key].example}")
    if data.get("cpu_quota", 0) > 1:
        problems.add(
            f"{where}cpu_quota", f"is a fraction of one core, got {data['cpu_quota']}", "use 0 < cpu_quota <= 1"
        )
    export = data.get("export", preset.export_format if preset else "so")
    if export not in EXPORT_FORMATS:
        problems.add(f"{where}export", f"unknown export format {export!r}", "use export: so or export: tar")
    local = data.get("local", False)
    if not local:
        for key in LOCAL_ONLY:
            if key in data:
                problems.add(f"{where}{key}", "only applies to local boards", "add local: true or remove it")
    if local:
        _check_host(data.get("host", LOOPBACK), data.get("netns"), where, problems)
    memory = _memory_mb(data["memory"], f"{where}memory", problems) if "memory" in data else None
    link = _link(data["link"], where, problems) if "link" in data else None
    if len(problems.found) > count:
        return None
    return Board(
        name=data["name"],
        key=data.get("key", preset.key if preset else ""),
        target=preset.target(cores) if preset else dict(target),
        cores=cores,
        speed=data.get("speed"),
        memory_mb=memory if memory is not None else (preset.memory_mb if preset else None),
        link=link,
        export_format=export,
        local=local,
        cpu_quota=data.get("cpu_quota"),
        host=data.get("host", LOOPBACK),
        netns=data.get("netns"),
        preset=preset.name if preset else None,
    )


def parse_inventory(data, source: str) -> Inventory:
    """Validate parsed YAML; raises :class:`ProblemsError` listing every problem."""
    from splitnet.runtime.placement import list_strategies  # placement imports this package's dataclasses

    problems = _Problems(source)
    if not isinstance(data, dict):
        problems.add(
            "top level", f"expected a mapping with a boards list, got {type(data).__name__}", TOP["boards"].example
        )
        problems.raise_if_any()
    top = _checked(data, TOP, "", problems)
    tracker = _tracker(top.get("tracker"), problems)
    if "placement" in top and top["placement"] not in list_strategies():
        problems.add(
            "placement", f"unknown strategy {top['placement']!r}", f"use one of: {', '.join(list_strategies())}"
        )
    if "policy" in top and top["policy"] not in POLICIES:
        problems.add("policy", f"unknown recovery policy {top['policy']!r}", f"use one of: {', '.join(POLICIES)}")
    raw_boards = top.get("boards")
    if "boards" not in data:
        problems.add("boards", "missing", f"add {TOP['boards'].example}")
    elif raw_boards == []:
        problems.add("boards", "is empty", "declare at least one board")
    boards = [_board(i, raw, problems) for i, raw in enumerate(raw_boards or [])]
    for i, raw in enumerate(raw_boards or []):
        netns = raw.get("netns") if isinstance(raw, dict) else None
        if isinstance(netns, str) and _is_loopback(tracker.host):
            problems.add(
                f"boards[{i}] ({raw.get('name')}).netns",
                f"the board runs in network namespace {netns!r}, which cannot reach a tracker on {tracker.host}",
                "set tracker.host to an address the namespace reaches (the bridge address); see docs/network-links.md",
            )
    _check_trust(top.get("trusted_network", False), tracker, raw_boards or [], problems)
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_boards or []):  # duplicates among valid and invalid entries alike
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str):
            continue
        if name in seen:
            problems.add(f"boards[{i}].name", f"duplicate name {name!r} (also boards[{seen[name]}])", "rename one")
        seen.setdefault(name, i)
    problems.raise_if_any()
    return Inventory(
        tracker=tracker,
        boards=tuple(b for b in boards if b is not None),
        description=top.get("description", ""),
        source=source,
        placement=top.get("placement"),
        trusted_network=top.get("trusted_network", False),
        policy=top.get("policy"),
    )


def load_inventory(path: Path) -> Inventory:
    """Read and validate an inventory file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SplitnetError(f"inventory file {path} not found", "check the path given to --inventory") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise SplitnetError(
            f"cannot read inventory file {path} ({exc.__class__.__name__})", "pass a YAML file"
        ) from None
    return parse_text(text, str(path))


def parse_text(text: str, source: str) -> Inventory:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise SplitnetError(f"{source}: not valid YAML{at}: {problem}", "check the indentation and quoting") from None
    return parse_inventory(data, source)


def builtin_inventories() -> list[str]:
    """Names of the example inventories shipped with splitnet."""
    files = resources.files(BUILTIN_PACKAGE).iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml"))


def builtin_inventory(name: str = DEFAULT_INVENTORY) -> Inventory:
    """One of the shipped inventories by name (``two-pynq`` is the default configuration)."""
    resource = resources.files(BUILTIN_PACKAGE) / f"{name}.yaml"
    if not resource.is_file():
        raise SplitnetError(f"no built-in inventory {name!r}", f"use one of: {', '.join(builtin_inventories())}")
    return parse_text(resource.read_text(), f"built-in {name}.yaml")


def resolve_inventory(spec: str | Path | None) -> Inventory:
    """``--inventory`` as given: a path, a built-in name, or None for the default."""
    if spec is None:
        return builtin_inventory()
    path = Path(spec)
    if not path.exists() and path.suffix == "" and str(spec) in builtin_inventories():
        return builtin_inventory(str(spec))
    return load_inventory(path)
