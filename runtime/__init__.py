"""Boards, inventories, placement and distributed execution over TVM RPC."""

from .board_session import BoardSession, RemoteModule
from .executor import DistributedSplit, FrameResult
from .fleet import Fleet
from .inventory import DEFAULT_KEY, Board, Inventory, Link, Tracker
from .inventory_file import builtin_inventory, load_inventory, parse_inventory, resolve_inventory
from .local_cluster import LocalCluster, free_port
from .placement import Placement, check_placement, list_strategies, place, validated
from .presets import Preset, get_preset, list_presets
from .tracker_requests import acquire, request_session

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
