"""One shared rich console on stderr for notices and progress, so stdout stays for results."""

from __future__ import annotations

import sys

from rich.console import Console

console = Console(stderr=True, highlight=False)
PIPED_WIDTH = 140  # tables written to a file or pipe keep this width instead of rich's 80


def results_console() -> Console:
    """The console for results on stdout: the terminal's width, or a fixed one when piped."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)


def notice(message: str) -> None:
    """A one-line notice the user should see (e.g. "using seeded init, no trained params")."""
    console.print(f"[yellow]note:[/] {message}", soft_wrap=True)
