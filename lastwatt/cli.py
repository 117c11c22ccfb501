"""The ``lastwatt`` command line: run, check, report, sweep (and devices, from firmware_bridge).

Every user error (config, argument, data file) is one line on stderr and exit code 2; a
service failing at run time (broker, InfluxDB spool) is one line and exit code 3.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

# typer >= 0.20 vendors click: its usage errors are these classes, not the click package's
from typer._click import exceptions as click_errors

from lastwatt.config import Config, load_config
from lastwatt.errors import InputError, OneLineError

app = typer.Typer(
    help="LastWatt: community-staked routing of a solar container's business energy.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
    rich_markup_mode=None,  # plain click usage errors: one greppable line, no box
)
console = Console()
err_console = Console(stderr=True)

ConfigArg = Annotated[
    Path | None, typer.Argument(help="TOML config; omitted: the seed's default scenario")
]


def _positive(name: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise InputError(f"--{name}", f"must be > 0, got {value}")


def _load(config: Path | None, **overrides: Any) -> Config:
    cfg = load_config(config)
    given = {k: v for k, v in overrides.items() if v is not None}
    return cfg.with_overrides(**given) if given else cfg


@app.command()
def run(
    config: ConfigArg = None,
    rounds: Annotated[int | None, typer.Option(help="override `rounds`")] = None,
    seed: Annotated[int | None, typer.Option(help="override `seed`")] = None,
    out: Annotated[Path | None, typer.Option(help="parent folder of the run folder")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="parquet or csv")] = None,
    mqtt: Annotated[str | None, typer.Option(help="broker URL mqtt://host:port: real devices")]
    = None,
    realtime: Annotated[bool, typer.Option(help="run on the wall clock")] = False,
    speed: Annotated[float | None, typer.Option(help="real-time compression factor")] = None,
    influx: Annotated[str | None, typer.Option(help="InfluxDB URL (see [influx] in config)")]
    = None,
    grafana: Annotated[str | None, typer.Option(
        help="Grafana base URL for the run link (default: $LASTWATT_GRAFANA_URL, else "
        "[influx] grafana_url, http://localhost:3000)")] = None,
    report: Annotated[bool, typer.Option(help="write the PNG report into the run folder")]
    = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run folder")] = False,
    resume: Annotated[Path | None, typer.Option(
        help="continue this interrupted run folder from its last checkpoint")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(
        help="override `output.checkpoint_rounds`")] = None,
    meter_readings: Annotated[bool, typer.Option(
        help="headless: per-minute mock devices (a reading every metering interval) "
        "instead of devices integrated per round")] = False,
) -> None:
    """Run a scenario (default: the seed's village for one simulated year, mock devices)."""
    _positive("rounds", rounds)
    _positive("speed", speed)
    _positive("checkpoint-every", checkpoint_every)
    if fmt is not None and fmt not in ("parquet", "csv"):
        raise InputError("--format", f"must be parquet or csv, got {fmt!r}")
    if resume is not None:
        cfg, out = _resumed_config(resume, config, rounds, seed, fmt, checkpoint_every,
                                   meter_readings or None, out)
    else:
        cfg = _load(config, rounds=rounds, seed=seed, **{
            "output.format": fmt, "time.speed": speed, "time.realtime": realtime or None,
            "output.checkpoint_rounds": checkpoint_every,
            "output.meter_readings": meter_readings or None,
        })
    from lastwatt.signals import terminate_as_interrupt
    from lastwatt.simulation import run_id_of, run_simulation
    from lastwatt.sizing import check_run_size

    check_run_size(cfg)
    out_dir = out or cfg.output.dir
    recorders, transport = [], None
    if influx:
        from lastwatt.storage.grafana_link import grafana_base
        from lastwatt.storage.influx import make_influx_recorder

        grafana = grafana_base(grafana, cfg.influx.grafana_url)
        recorders.append(make_influx_recorder(influx, cfg.influx))
    if mqtt:
        from lastwatt.site import site
        from lastwatt.transport.mqtt import make_mqtt_transport

        transport = make_mqtt_transport(mqtt, cfg.mqtt, cfg.site, site(cfg).devices.ids)
    try:
        with terminate_as_interrupt(), _progress(cfg.rounds, quiet) as tick:
            output = run_simulation(cfg, out_dir, recorders, transport, progress=tick,
                                    settle_grace_s=0.5 if mqtt else 0.0, overwrite=overwrite,
                                    resume=resume is not None)
    except KeyboardInterrupt:
        from lastwatt.signals import ignore_further

        ignore_further()  # the folder is finished: a late second Ctrl-C only exits
        run_dir = Path(out_dir) / run_id_of(cfg)
        err_console.print(f"interrupted: {run_dir} holds the rounds done; continue with "
                          f"`lastwatt run --resume {run_dir}`", markup=False, highlight=False,
                          soft_wrap=True)
        raise typer.Exit(130) from None
    _print_summary(output.summary)
    for sink in recorders:
        console.print(f"influx: {sink.stats}")  # written / spooled / flushed / dropped
        _print_influx_links(sink, grafana, cfg.site, output.summary)
    console.print(f"run folder: [bold]{output.run_dir}[/bold]")
    if report and output.run_dir is not None:
        from lastwatt.report import make_report

        for path in make_report(output.run_dir):
            console.print(f"figure: {path}")


def _print_influx_links(sink: Any, grafana: str | None, site: str,
                        summary: dict[str, Any]) -> None:
    """The Grafana URL of the run, and how many points the server confirms it stored."""
    from lastwatt.storage.grafana_link import run_url

    c = sink.confirmation
    if c is not None and c.stored is None:
        console.print(f"influx: stored points not confirmed: {c.how}", markup=False)
    elif c is not None and c.missing:
        err_console.print(f"warning: influx: sent {c.sent} points, the server holds "
                          f"{c.stored} ({c.missing} missing: rejected, or outside its "
                          "retention?)", markup=False, highlight=False, soft_wrap=True)
    elif c is not None:
        console.print(f"influx: {c.stored} points confirmed stored ({c.how})", markup=False)
    rounds = summary.get("rounds_completed") or 0
    if grafana and sink.time_range_ms is not None and rounds:
        t0, t1 = sink.time_range_ms
        url = run_url(grafana, site, summary["run_id"], (t0, t1), (t1 - t0) // rounds)
        console.print(f"grafana: {url}", markup=False, highlight=False, soft_wrap=True)


def _resumed_config(run_dir: Path, config: Path | None, *given: Any) -> tuple[Config, Path]:
    """The config recorded in an interrupted run folder; it must not be changed on resume."""
    import json

    from lastwatt.config import validate_config

    if config is not None or any(v is not None for v in given[:-1]):
        raise InputError("--resume", "takes the config from the run folder",
                         "drop the config file and --rounds/--seed/--format/--checkpoint-every/"
                         "--meter-readings")
    path = run_dir / "run.json"
    try:
        recorded = json.loads(path.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"--resume {run_dir}", "no readable run.json with a config",
                         "give a run folder written by `lastwatt run`") from None
    if given[-1] is not None:
        raise InputError("--out", "not used with --resume", "the run folder is given already")
    return validate_config(recorded, source=str(path)), run_dir.parent


class _progress:
    """A rich progress bar fed by the engine's per-round callback."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet = total, quiet

    def __enter__(self):
        if self.quiet or not sys.stderr.isatty():
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn("rounds"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=err_console, transient=True)
        self.bar.start()
        task = self.bar.add_task("rounds", total=self.total)
        return lambda _result: self.bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "bar"):
            self.bar.stop()


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title=f"{summary.get('rounds_completed')} rounds, run {summary.get('run_id')}")
    table.add_column("allocation")
    table.add_column("total result R", justify="right")
    table.add_column("efficiency (R / oracle)", justify="right")
    for name, value in summary.get("result", {}).items():
        eff = summary["efficiency"].get(name)
        table.add_row(name, f"{value:,.0f}", "-" if eff is None else f"{eff:.1%}")
    console.print(table)
    e = summary.get("energy_kwh", {})
    if e:
        console.print(
            f"production {e['production']:,.0f} kWh; business pool {e['business_pool']:,.0f} kWh;"
            f" metered {e['metered']:,.0f} kWh; unserved community "
            f"{e['unserved_community']:,.0f} kWh, households {e['unserved_household']:,.0f} kWh;"
            f" wall time {summary.get('wall_time_s')} s"
        )


@app.command()
def check(config: Annotated[Path, typer.Argument(help="TOML config to validate")]) -> None:
    """Validate a config and print what it describes."""
    from lastwatt.sizing import check_run_size
    from lastwatt.weather import describe_weather

    cfg = load_config(config)
    check_run_size(cfg)
    table = Table(title=f"{config}: valid", show_header=False)
    b, p = cfg.businesses, cfg.population
    rows = {
        "scenario / site / seed": f"{cfg.scenario} / {cfg.site} / {cfg.seed}",
        "rounds": f"{cfg.rounds} x {cfg.time.round_s:g} s (metering every "
        f"{cfg.time.metering_interval_s:g} s)",
        "stakers": f"{p.households} households x {p.tokens_per_household:g} token",
        "policy mix": ", ".join(f"{k} {v:.0%}" for k, v in p.policies.items()),
        "businesses": f"N = {b.count}, active set I = {b.active_set}",
        "mechanism": f"{cfg.mechanism.reward_mode} rewards, reward_share "
        f"{cfg.mechanism.reward_share:g}, slash_fraction {cfg.mechanism.slash_fraction:g}, "
        f"slash_unselected {cfg.mechanism.slash_unselected:g}, "
        f"{cfg.mechanism.stake_weighting} weighting",
        "devices": f"{len(cfg.devices.map) or b.count * cfg.devices.per_business} "
        f"({'mapped' if cfg.devices.map else 'mock, auto'})",
    }
    rows.update({f"weather: {k}": str(v) for k, v in describe_weather(cfg).items()})
    for k, v in rows.items():
        table.add_row(k, v)
    console.print(table)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="a run folder written by `lastwatt run`")],
    out: Annotated[Path | None, typer.Option(help="folder for the PNGs (default: run folder)")]
    = None,
) -> None:
    """Draw the run's figures (PNG)."""
    from lastwatt.report import make_report

    for path in make_report(run_dir, out):
        console.print(f"figure: {path}")


@app.command()
def sweep(
    config: ConfigArg = None,
    param: Annotated[list[str] | None, typer.Option(help="NAME=v1,v2,... (repeatable)")] = None,
    seeds: Annotated[int, typer.Option(help="Monte Carlo seeds per grid point")] = 10,
    workers: Annotated[int | None, typer.Option(help="local worker processes")] = None,
    dask: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://h:8786")]
    = None,
    rounds: Annotated[int | None, typer.Option(help="override `rounds`")] = None,
    out: Annotated[Path, typer.Option(help="result table (.parquet or .csv)")] = Path(
        "runs/sweep.csv"),
) -> None:
    """Grid x Monte Carlo seeds, in parallel processes or on a Dask cluster."""
    from lastwatt.sweep import parse_params, points_table, run_sweep, write_table

    _positive("seeds", seeds)
    _positive("workers", workers)
    _positive("rounds", rounds)
    cfg = _load(config, rounds=rounds)
    grid = parse_params(param or [], cfg)
    runs, points = run_sweep(cfg, grid, seeds=seeds, workers=workers, dask_address=dask)
    for path in write_table(runs, points, out):
        console.print(f"table: {path}")
    console.print(points_table(points, list(grid)))


@app.command()
def experiment(
    suite: Annotated[Path, typer.Argument(help="suite TOML: scenarios x mechanisms x seeds")],
    out: Annotated[Path, typer.Option(help="report folder")] = Path("runs/experiment"),
    workers: Annotated[int | None, typer.Option(help="local worker processes")] = None,
    dask: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://h:8786")]
    = None,
) -> None:
    """Scenario suite: every scenario under every mechanism over seeds -> a report folder."""
    from lastwatt.experiment import run_suite

    _positive("workers", workers)
    runs, report_path = run_suite(suite, out, workers=workers, dask_address=dask)
    console.print(f"{len(runs)} runs; report: {report_path}")


def _add_installed_commands() -> None:
    """Commands that other installed packages add (entry points ``lastwatt.commands``):
    ``devices`` comes from firmware_bridge, which depends on lastwatt, never the reverse."""
    for entry in entry_points(group="lastwatt.commands"):
        app.command(name=entry.name)(entry.load())


_add_installed_commands()  # after the core commands: they come first in --help


def _one_line(message: str) -> None:
    err_console.print(f"error: {' '.join(message.split())}", markup=False, highlight=False,
                      soft_wrap=True)


def main() -> None:
    """The ``lastwatt`` entry point: user errors become one line on stderr and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        # not standalone: click's usage errors come here and become one line, not a block
        code = app(standalone_mode=False)
    except OneLineError as err:  # bad input: 2; a service failing at run time: 3
        _one_line(str(err))
        sys.exit(err.exit_code)
    except click_errors.NoArgsIsHelpError as err:
        console.print(err.ctx.get_help() if err.ctx else "")
        sys.exit(0)
    except click_errors.UsageError as err:
        where = f"{err.ctx.command_path}: " if err.ctx else ""
        _one_line(where + err.format_message())
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
