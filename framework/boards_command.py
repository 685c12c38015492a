"""``splitrun boards``: the inventory as the tracker sees it, with a measured speed per board.

Local boards are started (as a run would start them), then every declared board is looked
up on the tracker, and each registered one is probed with a small convolution timed on the
board itself. A declared board that is not registered is shown as missing, with the command
to query the tracker, and makes the exit status non-zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from splitnet.framework.console import console, results_console
from splitnet.runtime.board_session import query_hint
from splitnet.runtime.fleet import BoardStatus, Fleet
from splitnet.runtime.inventory_file import resolve_inventory
from splitnet.runtime.probe import ProbeResult, probe, relative_speeds

EXIT_MISSING = 1


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
            "registered": self.status.registered,
            "address": self.status.address,
            "free_under_key": self.status.key_free,
            "probe_gflops": None if self.probe is None else self.probe.gflops,
            "relative_speed": self.speed,
        }


def survey(fleet: Fleet) -> list[BoardRow]:
    """Tracker status of every declared board, and a probe of each registered one."""
    statuses = fleet.board_status()  # before we take sessions, so "free" is what others see
    present = [s.board for s in statuses if s.registered]
    results: dict[str, ProbeResult] = {}
    if present:
        sessions = fleet.sessions(present)
        try:
            with console.status("probing boards"):
                for board in present:
                    results[board.name] = probe(sessions[board.name])
        finally:
            for board_session in sessions.values():
                board_session.close()
    speeds = relative_speeds(list(results.values())) if results else {}
    return [BoardRow(s, results.get(s.board.name), speeds.get(s.board.name)) for s in statuses]


def render_boards(rows: list[BoardRow], title: str, out: Console) -> None:
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
