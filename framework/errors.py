"""User-facing errors.

A :class:`SplitnetError` is a problem with the user's input or environment (a bad flag, a
missing directory, an unreachable tracker). The CLI prints it as one line, ``error: <what>
(fix: <how>)``, exits non-zero and shows no traceback. Anything else is a bug in splitnet and
keeps its traceback. A :class:`ProblemsError` carries several problems found at once (every
mistake in an inventory file, say) and prints one such line per problem.
"""

from __future__ import annotations


def _squash(text: str) -> str:
    return " ".join(text.split())


class SplitnetError(Exception):
    """A problem the user can fix; ``fix`` says how."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def one_line(self) -> str:
        return _squash(self.message if not self.fix else f"{self.message} (fix: {self.fix})")

    def lines(self) -> list[str]:
        """What the CLI prints, one ``error:`` line each."""
        return [self.one_line()]

    def __str__(self) -> str:
        return self.one_line()


class ProblemsError(SplitnetError):
    """Several user problems reported together, so one edit can fix them all."""

    def __init__(self, problems: list[SplitnetError]) -> None:
        if not problems:
            raise ValueError("ProblemsError needs at least one problem")
        first = problems[0]
        super().__init__(first.message, first.fix)
        self.problems = list(problems)

    def lines(self) -> list[str]:
        return [p.one_line() for p in self.problems]

    def __str__(self) -> str:
        return "; ".join(self.lines())
