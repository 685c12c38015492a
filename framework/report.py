"""The run report: typed results, a rich terminal rendering and a JSON form.

Column meanings are documented once, in ``COLUMNS``, and reused by the README.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from .predictions import render_predictions
from .verify import FAIL, PASS, Check

COLUMNS = {
    "board": "the board the branch runs on (several branches on one board run one after another)",
    "share": "fraction of every layer's channels the branch owns",
    "features": "length of the feature vector the branch sends to the merge head",
    "params": "weights uploaded to the board (millions)",
    "GFLOPs": "branch compute per frame (conv and dense multiply-adds x 2)",
    "compute ms": "median time the branch ran on the board in the timed calls, by the board's clock "
    "(no RPC, no transfer; servers that do not count it: timed on the board after the frames)",
    "call ms p50": "median wall time of the branch call seen from the host (compute + RPC + transfer)",
    "transfer ms": "call ms p50 minus compute ms: RPC, serialisation and network time per call",
    "link ms": "what the inventory's declared link predicts for the input and features (rtt + bytes / bandwidth)",
    "speed": "relative board speed the placement used (declared, cores, or measured by the probe)",
}


@dataclass(frozen=True)
class LatencyStats:
    frames: int
    mean_ms: float
    std_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> LatencyStats:
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        if ms.size == 0:
            return cls(0, *(float("nan"),) * 5)
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        return cls(int(ms.size), float(ms.mean()), float(ms.std()), float(p50), float(p95), float(p99))


@dataclass(frozen=True)
class BranchReport:
    index: int
    share: float
    feature_size: int
    params: int
    flops: int
    board: str
    target: str
    address: str
    compute_ms: float
    call: LatencyStats
    link_ms: float | None = None
    compute_from: str = "calls"  # "calls": counted by the board in the timed calls; "after": timed after them

    @property
    def transfer_ms(self) -> float:
        return self.call.p50_ms - self.compute_ms


@dataclass(frozen=True)
class RunReport:
    model: str
    params_source: str
    n: int
    multiple: int
    inventory: str
    inventory_source: str
    emulated: bool
    target: str
    placement: str
    board_speeds: dict[str, float]
    probe_gflops: dict[str, float]
    spares: tuple[str, ...]
    images: str
    branches: tuple[BranchReport, ...]
    head_ms: float
    end_to_end: LatencyStats
    throughput_fps: float
    checks: tuple[Check, ...]
    fidelity_max_abs_diff: float
    agreement_rate: float
    reference_flops: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    cache_hits: int = 0
    compiled_parts: int = 0
    policy: str = "spare"
    timeout_s: float = 0.0
    chaos: tuple[str, ...] = ()
    faults: tuple[dict, ...] = ()  # FaultEvent fields: frame, board, kind, detail, detected_ms, part, action, ...
    frames: int = 0  # every frame sent (verify pass, warm-up, timed)
    frames_degraded: int = 0
    emulation: dict[str, str] = field(default_factory=dict)  # board -> qemu / host (stand-in) / native
    worst_frame_ms: float = 0.0
    dead_boards: tuple[str, ...] = ()
    parity_decodes: int = 0  # coded policy: head outputs decoded from the parity block
    frame_ms: tuple[float, ...] = ()  # every frame sent, in order
    depth: int = 1  # frames in flight in the steady-state phase
    steady_fps: float = 0.0  # frames/s with `depth` frames in flight (pipelined)
    steady_host_cpu_ms: float = 0.0  # the host's CPU per frame then (what it takes from boards sharing its cores)
    tuning: tuple[str, ...] = ()  # per compiled part: which tuning database was applied, or why none
    rejoins: tuple[dict, ...] = ()  # failed boards that came back: board, frame, down_ms, how
    repairs: tuple[dict, ...] = ()  # background repairs (a copy made again, the head re-encoded): frame, what, done, ms
    tracker: tuple[dict, ...] = ()  # the local tracker died and was restarted: event, port, down_ms, detail
    audit: dict = field(default_factory=dict)  # --audit K: every, frames audited, mismatches, max_abs_diff
    notes: tuple[str, ...] = ()  # one line each: what kept failed boards from coming back (the tracker gone)
    host_heads: int = 0  # coded policy: frames whose head ran on the host (more blocks lost than parity recovers)
    predictions: tuple[dict, ...] = ()  # --images: per image, ImagePrediction fields (framework/predictions.py)
    wire: dict = field(default_factory=dict)  # format, frame_bytes, sent_bytes_per_frame, copy_ms_per_frame
    servers: dict[str, str] = field(default_factory=dict)  # local board -> its RPC server (python, cpp-x86_64, ...)

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    @property
    def slowest_branch(self) -> BranchReport:
        return max(self.branches, key=lambda b: b.compute_ms)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        for entry, branch in zip(data["branches"], self.branches, strict=True):
            entry["transfer_ms"] = branch.transfer_ms
        data["slowest_branch_compute_ms"] = self.slowest_branch.compute_ms
        data["columns"] = COLUMNS
        return data

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")


def _status(status: str) -> str:
    color = {PASS: "green", FAIL: "bold red"}.get(status, "cyan")
    return f"[{color}]{status}[/]"


COMPUTE_FROM = {
    "calls": "by the boards' clocks in the timed calls",
    "after": "timed on the boards after the frames (their servers do not count it in a call)",
}


def _compute_from(branches) -> str:
    """Where the compute column was measured, in words (branches may differ: one per server)."""
    wheres = dict.fromkeys(COMPUTE_FROM[b.compute_from] for b in branches if b.compute_from in COMPUTE_FROM)
    return "compute " + "; ".join(wheres) if wheres else "no branch compute measured"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def render(report: RunReport, console: Console) -> None:
    console.print(
        f"[bold]{report.model}[/] split into [bold]{report.n}[/] branches on {report.inventory}"
        f" ({report.inventory_source}), placement [bold]{report.placement}[/]"
        f"\nweights: {report.params_source}; frames: {report.images}"
    )
    if report.emulated:
        console.print(
            "[yellow]emulated boards: their branches run on local TVM RPC servers built for this host's CPU "
            "(ARM code cannot run here)[/]"
        )
    qemu = [name for name, mode in report.emulation.items() if mode == "qemu"]
    if qemu:
        console.print(
            f"[yellow]boards under qemu: {', '.join(qemu)} run real ARM code on real ARM RPC servers in qemu "
            "user-mode emulation; their times are the emulator's, not the boards'[/]"
        )
    boards = Table(title="Boards", title_justify="left")
    for column in ("board", "target", "address", "speed", "branches"):
        boards.add_column(column, justify="right" if column == "speed" else "left")
    by_board: dict[str, list[BranchReport]] = {}
    for b in report.branches:
        by_board.setdefault(b.board, []).append(b)
    for name, placed in by_board.items():
        speed = report.board_speeds.get(name)
        boards.add_row(
            name,
            placed[0].target,
            placed[0].address,
            "" if speed is None else f"{speed:.2f}",
            ", ".join(str(b.index) for b in placed),
        )
    for name in report.spares:
        if name in by_board or name in report.dead_boards:
            continue
        speed = report.board_speeds.get(name)
        boards.add_row(name, "", "", "" if speed is None else f"{speed:.2f}", "spare")
    for name in report.dead_boards:
        boards.add_row(name, "", "", "", "[bold red]failed[/]")
    console.print(boards)

    branches = Table(title="Branches", title_justify="left")
    columns = ("branch", "share", "features", "params (M)", "GFLOPs", "board", "compute ms", "call ms p50")
    columns += ("transfer ms", "link ms")
    for column in columns:
        branches.add_column(column, justify="left" if column == "board" else "right")
    for b in report.branches:
        branches.add_row(
            str(b.index),
            f"{b.share:.3f}",
            str(b.feature_size),
            f"{b.params / 1e6:.2f}",
            f"{b.flops / 1e9:.3f}",
            b.board,
            f"{b.compute_ms:.2f}",
            f"{b.call.p50_ms:.2f}",
            f"{b.transfer_ms:.2f}",
            _ms(b.link_ms),
        )
    branches.add_row("head", "", "", "", "", "host", f"{report.head_ms:.2f}", "", "", "")
    console.print(branches)
    slowest = report.slowest_branch
    console.print(
        f"slowest branch: {slowest.compute_ms:.2f} ms compute (branch {slowest.index} on {slowest.board}); "
        + _compute_from(report.branches),
        soft_wrap=True,
    )

    console.print(
        f"recovery policy [bold]{report.policy}[/], call timeout {report.timeout_s:.2f} s; "
        f"{report.frames} frames sent, {report.frames_degraded} degraded, worst {report.worst_frame_ms:.1f} ms"
        + (f"; {report.parity_decodes} head outputs decoded from parity" if report.policy == "coded" else "")
    )
    if report.chaos:
        console.print(f"[yellow]chaos: {'; '.join(report.chaos)}[/]", soft_wrap=True)
    if report.faults:
        faults = Table(title="Faults", title_justify="left")
        for column in ("frame", "board", "part", "kind", "detected ms", "recovered ms", "action", "detail"):
            faults.add_column(column, justify="right" if column.endswith("ms") or column == "frame" else "left")
        for f in report.faults:
            faults.add_row(
                str(f["frame"]),
                f["board"],
                f["part"],
                f["kind"],
                f"{f['detected_ms']:.1f}",
                _ms(f["recovered_ms"]),
                f["action"],
                f["detail"][:60],
            )
        console.print(faults)
    _render_recovery(report, console)

    e2e = report.end_to_end
    latency = Table(title=f"End to end ({e2e.frames} frames after warm-up, one in flight)", title_justify="left")
    columns = ["mean ms", "std ms", "p50 ms", "p95 ms", "p99 ms", "throughput (frames/s)"]
    values = [e2e.mean_ms, e2e.std_ms, e2e.p50_ms, e2e.p95_ms, e2e.p99_ms, report.throughput_fps]
    if report.depth > 1:
        columns.append(f"throughput, {report.depth} in flight")
        values.append(report.steady_fps)
    for column in columns:
        latency.add_column(column, justify="right")
    latency.add_row(*(f"{v:.2f}" for v in values))
    console.print(latency)
    if report.tuning:
        console.print("tuning: " + "; ".join(report.tuning), soft_wrap=True)
    if report.wire:
        w = report.wire
        paths = w.get("paths", {})
        beside = sum(p in ("channel", "call") for p in paths.values())
        calls = sum(p == "call" for p in paths.values())
        how = (
            ""
            if not paths
            else "; frames go through RPC"
            if beside == 0
            else f"; {'all' if beside == len(paths) else beside} of {len(paths)} boards take frames from the "
            "frame channel"
            + (
                ""
                if not calls
                else ", in one round trip a call"
                if calls == beside
                else f" ({calls} in one round trip a call)"
            )
        )
        console.print(
            f"wire: {w['format']} frames, {w['frame_bytes']} bytes each; {w['sent_bytes_per_frame']:.0f} bytes "
            f"sent to boards and {w['copy_ms_per_frame']:.2f} ms per frame of boards taking them in{how}",
            soft_wrap=True,
        )

    checks = Table(title="Checks", title_justify="left")
    for column in ("check", "result", "status", "detail"):
        checks.add_column(column)
    for check in report.checks:
        checks.add_row(check.name, check.value, _status(check.status), check.detail)
    console.print(checks)
    if report.predictions:
        render_predictions(report.predictions, console)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in report.stage_seconds.items())
    console.print(f"stages: {stages}; compiled {report.compiled_parts} parts, {report.cache_hits} from cache")


def _render_recovery(report: RunReport, console: Console) -> None:
    """What was restored after the failures: repairs, boards back, the tracker, the audit."""
    for r in report.repairs:
        mark = "" if r["ok"] else "[bold red]failed[/]: "
        console.print(f"repair ({r['what']}, asked at frame {r['frame']}, {r['ms']:.0f} ms): {mark}{r['done']}")
    for r in report.rejoins:
        when = f"at frame {r['frame']}, {r['down_ms']:.0f} ms after it failed"
        console.print(f"[green]back[/]: {r['board']} {when} ({r['how']})")
    for t in report.tracker:
        console.print(f"tracker on port {t['port']}: {t['event']} after {t['down_ms']:.0f} ms {t['detail']}".rstrip())
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    if report.host_heads:
        console.print(f"{report.host_heads} frames ran the head on the host (more blocks lost than parity recovers)")
    if report.audit:
        a = report.audit
        console.print(
            f"audit every {a['every']} frames: {a['frames']} audited, {a['mismatches']} wrong answers caught, "
            f"max |diff| of the answers kept {a['max_abs_diff']:.1e}"
        )
