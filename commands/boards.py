"""``splitrun boards``: the inventory as the tracker sees it, with a measured speed per board.

Local boards are started (as a run would start them), then every declared board is looked
up on the tracker, and each registered one is probed with a small convolution timed on the
board itself. A declared board that is not registered is shown as missing, with the command
to query the tracker, and makes the exit status non-zero.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .common import EXIT_CHECK_FAILED, add_inventory_arguments, add_json_argument, check_output_path

if TYPE_CHECKING:
    from rich.console import Console

    from ..runtime.fleet import BoardStatus, Fleet
    from ..runtime.probe import ProbeResult

NAME = "boards"
SUMMARY = "show the inventory's boards: registered and free on the tracker, and a measured probe speed"
EXIT_MISSING = EXIT_CHECK_FAILED


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_inventory_arguments(parser)
    add_json_argument(parser, "the table")


def execute(args: argparse.Namespace) -> int:
    check_output_path(args.json)
    return boards(args.inventory, args.wait, args.json)


@dataclass(frozen=True)
class BoardRow:
    status: BoardStatus
    probe: ProbeResult | None
    speed: float | None

    def as_dict(self) -> dict:
        board = self.status.board
        return {
            "board": board.name,
            "key": board.key,
            "target": board.describe(),
            "local": board.local,
            "emulated": board.emulated,
            "emulation": board.emulation_mode,
            "registered": self.status.registered,
            "address": self.status.address,
            "free_under_key": self.status.key_free,
            "probe_gflops": None if self.probe is None else self.probe.gflops,
            "relative_speed": self.speed,
        }


def survey(fleet: Fleet) -> list[BoardRow]:
    """Tracker status of every declared board, and a probe of each registered one."""
    from ..framework.console import console
    from ..runtime.probe import relative_speeds
    from ..strategies.deploy import close_sessions, probe_boards

    statuses = fleet.board_status()  # before we take sessions, so "free" is what others see
    present = [s.board for s in statuses if s.registered]
    results: dict[str, ProbeResult] = {}
    if present:
        sessions = fleet.sessions(present)
        try:
            with console.status("probing boards"):
                results = {r.board: r for r in probe_boards(sessions)}
        finally:
            close_sessions(sessions)
    speeds = relative_speeds(list(results.values())) if results else {}
    return [BoardRow(s, results.get(s.board.name), speeds.get(s.board.name)) for s in statuses]


def render_boards(rows: list[BoardRow], title: str, out: Console) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("board", "key", "target", "registered", "free", "address", "probe GFLOP/s", "speed"):
        table.add_column(column, justify="right" if column in ("free", "probe GFLOP/s", "speed") else "left")
    for row in rows:
        s = row.status
        table.add_row(
            s.board.name,
            s.board.key,
            s.board.describe(),
            "[green]yes[/]" if s.registered else "[bold red]missing[/]",
            str(s.key_free),
            s.address,
            "" if row.probe is None else f"{row.probe.gflops:.2f}",
            "" if row.speed is None else f"{row.speed:.2f}",
        )
    out.print(table)


def boards(inventory_spec: str | None, wait_s: float, json_path: Path | None) -> int:
    from ..framework.console import console, results_console
    from ..runtime.fleet import Fleet
    from ..runtime.inventory_file import resolve_inventory
    from ..runtime.tracker_requests import query_hint

    inventory = resolve_inventory(inventory_spec)
    fleet = Fleet(inventory, wait_s=wait_s)
    with console.status("starting local boards and waiting for the others"):
        fleet.start(require_all=False)
    with fleet:
        rows = survey(fleet)
    out = results_console()
    render_boards(rows, f"{inventory.description or inventory.source} (tracker {fleet.tracker_address})", out)
    out.print("free: servers under the board's key that the tracker could hand out before the probe")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
        console.print(f"table written to {json_path}")
    missing = [r.status.board.name for r in rows if not r.status.registered]
    if missing:
        console.print(
            f"[bold red]error:[/] {len(missing)} declared board(s) not registered: {', '.join(missing)} "
            f"(fix: start their RPC servers; {query_hint(fleet.host, fleet.port)})",
            soft_wrap=True,
            highlight=False,
        )
        return EXIT_MISSING
    return 0
