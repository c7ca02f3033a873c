"""What is wrong with a config: one problem per key, and the error that carries them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    key: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class ConfigError(ValueError):
    """A config that cannot be used; ``problems`` lists every error found, one per key."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s){where}:\n{lines}")


def errors(problems: list[Problem]) -> list[Problem]:
    """The problems that stop a run (the rest are warnings)."""
    return [p for p in problems if p.severity == "error"]
