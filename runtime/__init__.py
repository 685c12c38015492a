"""Boards, inventories, placement and distributed execution over TVM RPC."""

from splitnet.runtime.board_session import BoardSession, RemoteModule, acquire, request_session
from splitnet.runtime.executor import DistributedSplit, FrameResult
from splitnet.runtime.fleet import Fleet
from splitnet.runtime.inventory import DEFAULT_KEY, Board, Inventory, Link, Tracker
from splitnet.runtime.inventory_file import builtin_inventory, load_inventory, parse_inventory, resolve_inventory
from splitnet.runtime.local_cluster import LocalCluster, free_port
from splitnet.runtime.placement import Placement, check_placement, list_strategies, place, validated
from splitnet.runtime.presets import Preset, get_preset, list_presets

__all__ = [
    "DEFAULT_KEY",
    "Board",
    "BoardSession",
    "DistributedSplit",
    "Fleet",
    "FrameResult",
    "Inventory",
    "Link",
    "LocalCluster",
    "Placement",
    "Preset",
    "RemoteModule",
    "Tracker",
    "acquire",
    "builtin_inventory",
    "check_placement",
    "free_port",
    "get_preset",
    "list_presets",
    "list_strategies",
    "load_inventory",
    "parse_inventory",
    "place",
    "request_session",
    "resolve_inventory",
    "validated",
]
