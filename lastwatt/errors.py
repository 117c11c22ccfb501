"""Errors the user sees as one line: what is at fault, the problem and the fix.

Two kinds, told apart by their exit code (docs/cli.md):

- :class:`InputError` (exit 2): bad input from the user — config, CLI argument, CSV series,
  weather file, run folder. Fixing the input fixes the run.
- :class:`ServiceError` (exit 3): a runtime or service failure — the broker cannot be reached
  or refuses us, the InfluxDB spool overflowed. The input may be fine; a server is not.

The CLIs print ``str(err)`` and exit with ``err.exit_code``; never a traceback.
"""

from __future__ import annotations


class OneLineError(Exception):
    """Base of the errors shown as one line. ``str()`` is the message the CLI prints."""

    exit_code = 1

    def __init__(self, where: str, problem: str, fix: str = "") -> None:
        self.where = where
        self.problem = problem
        self.fix = fix
        msg = f"{where}: {problem}"
        if fix:
            msg += f" ({fix})"
        super().__init__(msg)


class InputError(OneLineError):
    """Bad input from a user (exit code 2)."""

    exit_code = 2


class ConfigError(InputError):
    """A config value is invalid; ``where`` is the dotted path (``businesses.active_set``)."""


class SeriesError(InputError):
    """A data file (CSV series, weather year) is invalid; ``where`` is ``file:line:column``."""


class ServiceError(OneLineError):
    """A runtime failure of a service the run depends on (exit code 3), not bad input."""

    exit_code = 3
