"""User-facing input errors: one line naming the field, the bad value and the fix.

Every bad input (config, CLI argument, CSV series, weather file) ends in an
:class:`InputError`; the CLI prints ``str(err)`` and exits with code 2.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input from a user. ``str()`` is the one-line message shown by the CLI."""

    def __init__(self, where: str, problem: str, fix: str = "") -> None:
        self.where = where
        self.problem = problem
        self.fix = fix
        msg = f"{where}: {problem}"
        if fix:
            msg += f" ({fix})"
        super().__init__(msg)


class ConfigError(InputError):
    """A config value is invalid; ``where`` is the dotted path (``businesses.active_set``)."""


class SeriesError(InputError):
    """A data file (CSV series, weather year) is invalid; ``where`` is ``file:line:column``."""
