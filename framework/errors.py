"""User-facing errors.

A :class:`SplitnetError` is a problem with the user's input or environment (a bad flag, a
missing directory, an unreachable tracker). The CLI prints it as one line, ``error: <what>
(fix: <how>)``, exits non-zero and shows no traceback. Anything else is a bug in splitnet and
keeps its traceback.
"""

from __future__ import annotations


class SplitnetError(Exception):
    """A problem the user can fix; ``fix`` says how."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def one_line(self) -> str:
        text = self.message if not self.fix else f"{self.message} (fix: {self.fix})"
        return " ".join(text.split())

    def __str__(self) -> str:
        return self.one_line()
