"""Every error the toolkit raises on purpose, and the exit code the CLI gives it.

    StranglerError            base; exit 2 unless a subclass says otherwise
    ├── ConfigError           bad usage or configuration: a value, a file, a flag (exit 2)
    │   └── RoutingFileError  routing.yaml is invalid; carries every Problem (file:line:col)
    ├── CheckFailed           a check ran and its answer is "no" (exit 1)
    ├── StackError            the local stack could not start or stay up (exit 1)
    └── AwsError              an AWS call failed: operation, code, message (exit 1)
        └── ApplyFailed       an apply stopped part-way; says whether it was undone

Messages say where, what, and what to do: ``ConfigError("--port 70000: must be 0-65535")``.
Anything else escaping the CLI is a bug and is shown with its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: where, which key, and what is allowed instead."""

    file: str
    line: int  # 1-based
    column: int  # 1-based
    key: str  # dotted path, e.g. routes[2].targets.orders
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.key}: {self.message}"


class StranglerError(Exception):
    exit_code = 2


class ConfigError(StranglerError):
    exit_code = 2


class RoutingFileError(ConfigError):
    """routing.yaml failed validation. ``problems`` lists every problem, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [str(p) for p in problems]
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid routing file ({count}):\n  " + "\n  ".join(lines))


class CheckFailed(StranglerError):
    exit_code = 1


class StackError(StranglerError):
    exit_code = 1


class AwsError(StranglerError):
    exit_code = 1


class ApplyFailed(AwsError):
    """``undone``: every change made before the failure was reverted (AWS is as it was)."""

    def __init__(self, message: str, *, undone: bool) -> None:
        self.undone = undone
        super().__init__(message)


__all__ = [
    "ApplyFailed",
    "AwsError",
    "CheckFailed",
    "ConfigError",
    "Problem",
    "RoutingFileError",
    "StackError",
    "StranglerError",
]
