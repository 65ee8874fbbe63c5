"""Every error the toolkit raises on purpose, and the exit code the CLI gives it.

    StranglerError            base; exit 2 unless a subclass says otherwise
    ├── ConfigError           bad usage or configuration: a value, a file, a flag (exit 2)
    ├── CheckFailed           a check ran and its answer is "no" (exit 1)
    └── StackError            the local stack could not start or stay up (exit 1)

Messages say where, what, and what to do: ``ConfigError("--port 70000: must be 0-65535")``.
Anything else escaping the CLI is a bug and is shown with its traceback.
"""

from __future__ import annotations


class StranglerError(Exception):
    exit_code = 2


class ConfigError(StranglerError):
    exit_code = 2


class CheckFailed(StranglerError):
    exit_code = 1


class StackError(StranglerError):
    exit_code = 1


__all__ = ["CheckFailed", "ConfigError", "StackError", "StranglerError"]
