"""Secrets (MQTT password, InfluxDB token) come from a file or an environment variable, never
from the command line (``ps`` shows it to every user) nor from the TOML file itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from lastwatt.errors import ConfigError


def read_secret(file: Path | None, env: str, field: str) -> str | None:
    """The first line of ``file`` if given (it wins), else ``$env``; ``None`` when empty or unset.

    ``field`` names the config key of ``file`` in the one-line error for an unreadable file.
    """
    if file is None:
        return os.environ.get(env) or None
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise ConfigError(field, f"cannot read {file}: {reason}",
                          "point it at a readable file holding the secret") from None
    return lines[0].strip() if lines and lines[0].strip() else None
