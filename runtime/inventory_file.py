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

import json
import os
from importlib import resources
from pathlib import Path

import yaml

from ..framework.errors import SplitnetError
from ..framework.targets import EXPORT_FORMATS, check_target
from .arm.paths import arch_of
from .inventory import DEFAULT_TRACKER_PORT, EMULATIONS, LOOPBACK, SERVERS, Board, Inventory, Link, Tracker
from .inventory_schema import (
    BOARD,
    LINK,
    LOCAL_ONLY,
    TOP,
    TRACKER,
    Problems,
    check_host,
    check_trust,
    checked,
    is_loopback,
    memory_mb,
)
from .policies import list_policies
from .presets import get_preset, list_presets

BUILTIN_PACKAGE = "splitnet.inventories"
DEFAULT_INVENTORY = "two-pynq"

__all__ = [
    "BOARD",
    "TOP",
    "TRACKER",
    "builtin_inventories",
    "builtin_inventory",
    "load_inventory",
    "parse_inventory",
    "parse_text",
    "resolve_inventory",
]


def _tracker(data: dict | None, problems: Problems) -> Tracker:
    data = checked(data or {}, TRACKER, "tracker.", problems)
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


def _link(data: dict, where: str, problems: Problems) -> Link | None:
    data = checked(data, LINK, f"{where}link.", problems)
    missing = [k for k in LINK if k not in data]
    for key in missing:
        problems.add(f"{where}link.{key}", "missing", f"add {LINK[key].example}")
    for key, value in data.items():
        if value <= 0:
            problems.add(f"{where}link.{key}", f"must be positive, got {value}", f"e.g. {LINK[key].example}")
    if missing or any(v <= 0 for v in data.values()):
        return None
    return Link(bandwidth_mbit=float(data["bandwidth_mbit"]), rtt_ms=float(data["rtt_ms"]))


def _board(index: int, raw, problems: Problems) -> Board | None:
    if not isinstance(raw, dict):
        problems.add(
            f"boards[{index}]", f"expected a mapping, got {raw!r}", "write it as - name: pynq0 target: pynq-z1"
        )
        return None
    label = f"boards[{index}] ({raw['name']})" if isinstance(raw.get("name"), str) else f"boards[{index}]"
    where = f"{label}."
    count = len(problems.found)
    data = checked(raw, BOARD, where, problems)
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
        check_host(data.get("host", LOOPBACK), data.get("netns"), where, problems)
    emulation = data.get("emulation", "auto")
    if emulation not in EMULATIONS:
        problems.add(f"{where}emulation", f"unknown emulation {emulation!r}", f"use one of {', '.join(EMULATIONS)}")
    arm = preset.target(cores) if preset else target if isinstance(target, dict) else {}
    if emulation == "qemu" and arch_of(arm) is None:
        problems.add(f"{where}emulation", "qemu runs ARM boards only, and this target is not ARM", "remove it")
    server = data.get("server")
    if server is not None and server not in SERVERS:
        problems.add(f"{where}server", f"unknown server {server!r}", f"use one of {', '.join(SERVERS)}")
    memory = memory_mb(data["memory"], f"{where}memory", problems) if "memory" in data else None
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
        emulation=emulation,
        server=server,
    )


def parse_inventory(data, source: str) -> Inventory:
    """Validate parsed YAML; raises :class:`ProblemsError` listing every problem."""
    from .placement import list_strategies  # placement imports this package's dataclasses

    problems = Problems(source)
    if not isinstance(data, dict):
        problems.add(
            "top level", f"expected a mapping with a boards list, got {type(data).__name__}", TOP["boards"].example
        )
        problems.raise_if_any()
    top = checked(data, TOP, "", problems)
    tracker = _tracker(top.get("tracker"), problems)
    if "placement" in top and top["placement"] not in list_strategies():
        problems.add(
            "placement", f"unknown strategy {top['placement']!r}", f"use one of: {', '.join(list_strategies())}"
        )
    if "policy" in top and top["policy"] not in list_policies():
        problems.add(
            "policy", f"unknown recovery policy {top['policy']!r}", f"use one of: {', '.join(list_policies())}"
        )
    raw_boards = top.get("boards")
    if "boards" not in data:
        problems.add("boards", "missing", f"add {TOP['boards'].example}")
    elif raw_boards == []:
        problems.add("boards", "is empty", "declare at least one board")
    boards = [_board(i, raw, problems) for i, raw in enumerate(raw_boards or [])]
    for i, raw in enumerate(raw_boards or []):
        netns = raw.get("netns") if isinstance(raw, dict) else None
        if isinstance(netns, str) and is_loopback(tracker.host):
            problems.add(
                f"boards[{i}] ({raw.get('name')}).netns",
                f"the board runs in network namespace {netns!r}, which cannot reach a tracker on {tracker.host}",
                "set tracker.host to an address the namespace reaches (the bridge address); see docs/network-links.md",
            )
    check_trust(top.get("trusted_network", False), tracker, raw_boards or [], problems)
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
