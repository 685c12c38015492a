"""One shared rich console on stderr for notices and progress, so stdout stays for results."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=True, highlight=False)


def notice(message: str) -> None:
    """A one-line notice the user should see (e.g. "using seeded init, no trained params")."""
    console.print(f"[yellow]note:[/] {message}", soft_wrap=True)
