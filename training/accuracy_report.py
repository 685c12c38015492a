"""The accuracy report four ways: a rich table, JSON, Markdown, and a PNG plot (Agg backend).

Every form names the data set, the held-out images, where the weights came from, and for
shipped weights the command and time that trained them.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..framework.verify import FIDELITY_ATOL
from .accuracy import AccuracyReport, Row

COLUMNS = (
    "N",
    "where",
    "images",
    "top-1",
    "top-5",
    "drop",
    "target",
    "agree",
    "1 lost",
    "worst 1 lost",
    "frame ms",
    "speedup",
    "max |diff|",
)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _cells(row: Row) -> list[str]:
    target = ""
    if row.target_drop is not None:
        target = f"≤{row.target_drop * 100:.0f}: " + ("met" if row.meets_target else "MISSED")
    if row.meets_lost_target is not None:
        target += f"; lost ≤{row.target_lost * 100:.0f}: " + ("met" if row.meets_lost_target else "MISSED")
    return [
        "unsplit" if row.n == 1 else str(row.n),
        row.where,
        str(row.images),
        _pct(row.top1),
        _pct(row.top5),
        "" if row.n == 1 else f"{row.drop * 100:+.2f} pts".replace("+-", "-"),
        target,
        _pct(row.agreement),
        _pct(row.degraded_top1),
        _pct(row.degraded_worst),
        "" if row.frame_ms is None else f"{row.frame_ms:.1f}",
        "" if row.speedup is None else f"{row.speedup:.2f}x",
        "" if row.fidelity is None else f"{row.fidelity:.1e}",
    ]


def _notes(report: AccuracyReport) -> list[str]:
    notes = [
        f"model {report.model}, reference weights: {report.params_source}",
        f"data set: {report.dataset}",
        "drop: unsplit top-1 minus split top-1 on the same images, in the same place (points); target: the "
        "issue's bound on the drop; agree: top-1 equal to the unsplit reference's",
        "1 lost: top-1 with one branch's features zeroed (degrade policy); in-process the mean over the branches "
        "(worst: the worst branch to lose), on the boards the last branch",
    ]
    if any(row.target_lost is not None for row in report.rows):
        notes.append(
            "lost: the bound on what one lost branch costs, the split's top-1 minus its top-1 without the worst "
            "branch (in-process) or the last branch (boards), in points"
        )
    if report.inventory:
        notes.append(
            f"boards: {report.inventory}; frame ms is the mean end-to-end time of one frame; "
            f"max |diff| is boards vs in-process MXNet (tolerance {FIDELITY_ATOL:.0e})"
        )
    for row in report.rows:
        if row.tuning:
            what = "unsplit" if row.n == 1 else f"N={row.n}"
            notes.append(f"{what} builds on the boards: {'; '.join(row.tuning)}")
    for entry in report.training:
        what = "unsplit" if entry["n"] == 1 else f"N={entry['n']}"
        epochs = "epochs" if entry["n"] == 1 else "fine-tuning epochs"
        notes.append(
            f"{what} trained by `{entry.get('command', '?')}` ({entry.get('train_seconds', '?')} s, "
            f"{entry.get('epochs', '?')} {epochs}, seed {entry.get('seed', '?')})"
        )
    return notes


def render(report: AccuracyReport, console: Console) -> None:
    table = Table(title=f"Accuracy of {report.model} on the held-out {report.dataset.split(' (')[0]}")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("N", "where", "target") else "right")
    for row in report.rows:
        table.add_row(*_cells(row))
    console.print(table)
    for note in _notes(report):
        console.print(f"  {note}", soft_wrap=True)


def to_json(report: AccuracyReport) -> dict:
    data = asdict(report)
    derived = ("meets_target", "lost_cost", "meets_lost_target")
    data["rows"] = [{**asdict(r), **{key: getattr(r, key) for key in derived}} for r in report.rows]
    data["fidelity_ok"] = report.fidelity_ok
    return data


def write_json(report: AccuracyReport, path: Path) -> None:
    path.write_text(json.dumps(to_json(report), indent=2) + "\n")


def _md_row(cells: list[str] | tuple[str, ...]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def to_markdown(report: AccuracyReport) -> str:
    lines = [f"# Accuracy of {report.model}", ""]
    lines += [_md_row(COLUMNS), "|" + "---|" * len(COLUMNS)]
    lines += [_md_row(_cells(row)) for row in report.rows]
    lines += [""] + [f"- {note}" for note in _notes(report)] + [""]
    return "\n".join(lines)


def write_plot(report: AccuracyReport, path: Path) -> None:
    """Top-1 (intact and one branch lost) and measured speedup against N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc_ax, speed_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for where, style in (("in-process", "o-"), ("boards", "s--")):
        rows = [r for r in report.rows if r.where == where]
        if not rows:
            continue
        acc_ax.plot([r.n for r in rows], [r.top1 * 100 for r in rows], style, label=f"top-1 ({where})")
        lost = [r for r in rows if r.degraded_top1 is not None]
        if lost:
            acc_ax.plot(
                [r.n for r in lost], [r.degraded_top1 * 100 for r in lost], style, alpha=0.5, label=f"1 lost ({where})"
            )
    acc_ax.set_xlabel("branches N")
    acc_ax.set_ylabel("held-out accuracy (%)")
    acc_ax.set_title(f"{report.model}: accuracy")
    acc_ax.legend(fontsize=8)
    acc_ax.grid(alpha=0.3)
    timed = [r for r in report.rows if r.speedup is not None]
    if timed:
        speed_ax.plot([r.n for r in timed], [r.speedup for r in timed], "s-", label="measured on the boards")
        speed_ax.axhline(1.0, color="grey", lw=0.8)
        speed_ax.legend(fontsize=8)
    else:
        speed_ax.text(0.5, 0.5, "no boards run (--no-boards)", ha="center", va="center")
    speed_ax.set_xlabel("branches N")
    speed_ax.set_ylabel("speedup over N=1 (frame time)")
    speed_ax.set_title(report.inventory or "speedup")
    speed_ax.grid(alpha=0.3)
    for ax in (acc_ax, speed_ax):
        ax.set_xticks(sorted({r.n for r in report.rows}))
    fig.suptitle(report.dataset.split(";")[0], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
