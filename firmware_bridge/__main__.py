"""``lastwatt-bridge --config FILE`` (also ``python -m firmware_bridge``): run the bridge."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from firmware_bridge.bridge import Bridge
from firmware_bridge.service import serve_until_signalled
from lastwatt.config.bridge import load_bridge_config
from lastwatt.errors import OneLineError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
STATS_EVERY_S = 60.0


@app.command()
def serve(
    config: Annotated[Path, typer.Option(help="bridge TOML (see examples/bridge.toml)")],
    mqtt: Annotated[str | None, typer.Option(help="broker mqtt://host:port; else mqtt.url")]
    = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Translate LastWatt's native topics to and from Tasmota / Shelly Gen2 devices."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    cfg = load_bridge_config(config)
    bridge = Bridge(cfg, mqtt).start()
    log = logging.getLogger("firmware_bridge")
    log.info("bridge up: %d vendor devices on site %s", len(bridge.devices), cfg.site)
    serve_until_signalled(
        lambda: f"counts {dict(bridge.counts)} rejected {dict(bridge.rejected)}", bridge.stop,
        log, STATS_EVERY_S)


def main() -> None:
    try:
        app()
    except OneLineError as err:  # bad input: 2; a service failing at run time: 3
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
