"""The Grafana dashboards: they parse, use only the provisioned datasource, and every panel
query (macros and variables substituted as Grafana does) returns data from a real influxd."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from lastwatt.config.influx import InfluxConfig
from lastwatt.storage.influx import make_influx_recorder
from tests.storage_data import START_TS, make_meta, make_rounds

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def _datasource() -> dict:
    doc = yaml.safe_load((GRAFANA / "provisioning/datasources/lastwatt.yaml").read_text())
    (ds,) = doc["datasources"]
    return ds


def _targets(dash: dict):
    for panel in dash["panels"]:
        for target in panel["targets"]:
            yield panel, target


def test_the_four_dashboards_exist_and_parse():
    names = {p.stem for p in DASHBOARDS}
    assert names == {"overview", "businesses", "devices", "stakers"}
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        assert dash["panels"] and dash["uid"].startswith("lastwatt-")


def test_dashboards_reference_only_the_provisioned_influxql_datasource():
    ds = _datasource()
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "InfluxQL"
    # the read-only token from its file (deploy/influxdb/create-tokens.sh), not the operator's
    assert ds["secureJsonData"]["httpHeaderValue1"] == "Token $__file{/influx-token/token}"
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        refs = [p["datasource"] for p in dash["panels"]]
        refs += [t["datasource"] for _, t in _targets(dash)]
        refs += [v["datasource"] for v in dash["templating"]["list"] if v["type"] == "query"]
        refs += [a["datasource"] for a in dash["annotations"]["list"]]
        assert all(r == {"type": "influxdb", "uid": ds["uid"]} for r in refs), path.name


def test_dashboards_have_variables_units_descriptions_and_min_interval_on_every_panel():
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        assert list(variables) == ["site", "run", "round"]
        assert variables["run"]["multi"] and variables["run"]["sort"] == 0  # query order
        assert variables["round"]["type"] == "textbox"
        for panel in dash["panels"]:
            defaults = panel["fieldConfig"]["defaults"]
            assert defaults["unit"] and defaults["thresholds"]["steps"], panel["title"]
            assert len(panel["description"]) > 20, panel["title"]
            query = panel["targets"][0]["query"]
            if "$__interval" in query:
                assert panel["interval"] == "$round" and query.endswith("fill(none)"), query
    units = {p["fieldConfig"]["defaults"]["unit"] for path in DASHBOARDS
             for p in json.loads(path.read_text())["panels"]}
    assert {"watt", "watth", "percentunit"} <= units


def test_energy_summed_per_bucket_says_per_interval_in_its_title():
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            query, title = panel["targets"][0]["query"], panel["title"]
            per_bucket_sum = re.search(r'(?<!cumulative_sum\()sum\("\w+_wh"\)', query)
            if per_bucket_sum and "$__interval" in query:
                assert "per interval" in title, title


def test_every_dashboard_links_to_the_others_keeping_time_and_variables():
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        (link,) = dash["links"]
        assert link["type"] == "dashboards" and link["tags"] == ["lastwatt"]
        assert link["keepTime"] and link["includeVars"]
        assert all("lastwatt" in json.loads(p.read_text())["tags"] for p in DASHBOARDS)


def test_dashboard_provider_points_at_the_mounted_dashboard_folder():
    doc = yaml.safe_load((GRAFANA / "provisioning/dashboards/lastwatt.yaml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_committed_dashboards_are_what_the_builder_writes(tmp_path, monkeypatch):
    import importlib.util
    path = GRAFANA / "build_dashboards.py"
    spec = importlib.util.spec_from_file_location("build_dashboards", path)
    build = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "build_dashboards", build)  # dataclasses look it up
    spec.loader.exec_module(build)
    monkeypatch.setattr(build, "OUT", tmp_path)
    build.main()
    for path in DASHBOARDS:
        assert (tmp_path / path.name).read_text() == path.read_text(), path.name


def _grafana_substitute(query: str, variables: dict[str, str | list[str]], t0_ms: int,
                        t1_ms: int) -> str:
    """What Grafana's InfluxQL datasource does before sending a query: ``$__interval`` is the
    panel's minimum interval (the ``round`` variable) whenever range / max data points is
    smaller, as it is for these short runs."""
    query = query.replace("$timeFilter", f"time >= {t0_ms}ms and time <= {t1_ms}ms")
    query = query.replace("$__interval", str(variables.get("round", "1h")))
    for name, value in variables.items():  # regex context: Grafana escapes, joins multi (a|b)
        values = [value] if isinstance(value, str) else value
        text = "|".join(re.escape(v) for v in values)
        query = query.replace(f"${name}", text if len(values) == 1 else f"({text})")
    return query


def _query(port: int, db: str, q: str) -> dict:
    params = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ms"})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/query?{params}", timeout=10) as r:
        result = json.load(r)["results"][0]
    assert "error" not in result, (q, result)
    return result


ROUNDS = 48
OLD_RUN_DAYS = 10  # the second run is stamped this many days before the first


def _write(port: int, meta, rounds, spool: Path) -> None:
    cfg = InfluxConfig(api="v1", database="grafana", flush_interval_ms=50, spool_dir=spool)
    rec = make_influx_recorder(f"http://127.0.0.1:{port}", cfg)
    rec.open(meta)
    for r in rounds:
        rec.record(r)
    rec.close({}, None)
    assert rec.stats["written"] > 0


@pytest.fixture(scope="module")
def short_run(influxd, tmp_path_factory):
    """Two runs in one database: ``grafana-run`` (newest) and ``grafana-old``, 10 days before.
    Returns the port, the newest run's meta, its time range (ms) and its rounds."""
    spool = tmp_path_factory.mktemp("spool")
    meta = make_meta("grafana-run", businesses=5, devices=3)
    rounds = make_rounds(meta, ROUNDS)
    old = make_meta("grafana-old", businesses=5, devices=3)
    _write(influxd.port, old, make_rounds(old, ROUNDS, seed=1,
                                          start_ts=START_TS - OLD_RUN_DAYS * 86400), spool)
    _write(influxd.port, meta, rounds, spool)
    t0, t1 = int(rounds[0].start_ts * 1000), int(rounds[-1].end_ts * 1000)
    return influxd.port, meta, t0, t1, rounds


def _options(result: dict) -> list[str]:
    """Grafana's variable options from a query result: the second column, unique, in order."""
    out: list[str] = []
    for s in result.get("series", []):
        for row in s["values"]:
            if row[1] not in out:
                out.append(row[1])
    return out


@pytest.mark.integration
def test_run_variable_lists_runs_in_the_range_newest_first(short_run):
    port, meta, t0, t1, _ = short_run
    dash = json.loads((GRAFANA / "dashboards/overview.json").read_text())
    variables = {v["name"]: v["query"] for v in dash["templating"]["list"]}
    both = t0 - OLD_RUN_DAYS * 86_400_000
    sites = _options(_query(port, "grafana", _grafana_substitute(
        variables["site"], {}, both, t1)))
    assert sites == [meta.site]
    runs = _options(_query(port, "grafana", _grafana_substitute(
        variables["run"], {"site": meta.site}, both, t1)))
    assert runs == ["grafana-run", "grafana-old"]  # the first option is Grafana's default
    only_new = _options(_query(port, "grafana", _grafana_substitute(
        variables["run"], {"site": meta.site}, t0, t1)))
    assert only_new == ["grafana-run"]


@pytest.mark.integration
def test_run_annotation_marks_round_zero_of_each_selected_run(short_run):
    port, meta, t0, t1, _ = short_run
    dash = json.loads((GRAFANA / "dashboards/overview.json").read_text())
    (ann,) = dash["annotations"]["list"]
    both = t0 - OLD_RUN_DAYS * 86_400_000
    q = _grafana_substitute(ann["query"], {"site": meta.site,
                                           "run": ["grafana-run", "grafana-old"]}, both, t1)
    (series,) = _query(port, "grafana", q)["series"]
    col = series["columns"].index(ann["textColumn"])
    marks = {row[col]: row[0] for row in series["values"]}
    assert marks == {"grafana-run": t0, "grafana-old": t0 - OLD_RUN_DAYS * 86_400_000}


@pytest.mark.integration
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_query_returns_series_with_the_aliased_columns(short_run, path):
    port, meta, t0, t1, _ = short_run
    dash = json.loads(path.read_text())
    for panel, target in _targets(dash):
        q = _grafana_substitute(target["query"], {"site": meta.site, "run": meta.run_id}, t0, t1)
        series = _query(port, "grafana", q).get("series")
        assert series, f"{path.stem}/{panel['title']}: no data for {q}"
        aliases = re.findall(r' AS "([^"]+)"', target["query"])
        for s in series:
            assert s["columns"] == ["time", *aliases], panel["title"]
            assert s["tags"]["run"] == meta.run_id
            assert any(v is not None for row in s["values"] for v in row[1:]), panel["title"]
        if "GROUP BY" in q and '"business"' in q.split("GROUP BY")[1]:
            assert {s["tags"]["business"] for s in series} == set(meta.business_names)


@pytest.mark.integration
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_selecting_two_runs_shows_each_as_its_own_series(short_run, path):
    port, meta, t0, t1, _ = short_run
    both = t0 - OLD_RUN_DAYS * 86_400_000
    selected = {"site": meta.site, "run": ["grafana-run", "grafana-old"]}
    for panel, target in _targets(json.loads(path.read_text())):
        q = _grafana_substitute(target["query"], selected, both, t1)
        series = _query(port, "grafana", q)["series"]
        assert {s["tags"]["run"] for s in series} == set(selected["run"]), panel["title"]


@pytest.mark.integration
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_at_the_round_length_every_round_has_its_own_bucket_and_none_is_empty(short_run, path):
    """Hourly data, minimum interval 1h: a line has one point per round, no null gaps."""
    port, meta, t0, t1, _ = short_run
    variables = {"site": meta.site, "run": meta.run_id, "round": "1h"}
    for panel, target in _targets(json.loads(path.read_text())):
        if "$__interval" not in target["query"]:
            continue
        q = _grafana_substitute(target["query"], variables, t0, t1 - 1)
        series = _query(port, "grafana", q)["series"]
        for s in series:
            times = [row[0] for row in s["values"]]
            assert len(times) <= ROUNDS and len(set(times)) == len(times), panel["title"]
        # == ROUNDS, less the rounds where the test data leaves a field out; 2h buckets: 24
        assert max(len(s["values"]) for s in series) > ROUNDS * 3 // 4, panel["title"]


@pytest.mark.integration
def test_efficiency_series_is_the_ratio_of_sums_over_each_bucket(short_run):
    port, meta, t0, t1, rounds = short_run
    dash = json.loads((GRAFANA / "dashboards/overview.json").read_text())
    (target,) = next(p["targets"] for p in dash["panels"]
                     if p["title"].startswith("Efficiency per"))
    variables = {"site": meta.site, "run": meta.run_id, "round": "2h"}
    (series,) = _query(port, "grafana", _grafana_substitute(
        target["query"], variables, t0, t1 - 1))["series"]
    got = [row[1] for row in series["values"]]
    want = [sum(r.scalars["total_result"] for r in pair) / sum(r.scalars["oracle_result"]
                                                               for r in pair)
            for pair in zip(rounds[::2], rounds[1::2], strict=True)]
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.integration
def test_the_url_lastwatt_run_prints_shows_data_in_every_panel(influxd, tmp_path):
    """`lastwatt run --influx` (v1) prints a Grafana URL; its from/to, site, run and round,
    substituted as Grafana would, give every panel of every dashboard data (a summer morning
    start and the compose village's container: otherwise the village's own loads take all
    the energy, no device gets a quota, and "Quota used" is rightly empty).
    """
    cfg = tmp_path / "run.toml"
    spool = tmp_path / "spool"
    cfg.write_text('rounds = 30\n[time]\nstart = 2026-06-01T06:00:00Z\n'
                   "[container]\npeak_power_w = 4e5\n"  # as deploy/compose: a business pool
                   f'[influx]\napi = "v1"\ndatabase = "url"\nspool_dir = "{spool}"\n')
    env = {k: v for k, v in os.environ.items() if k != "LASTWATT_GRAFANA_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "lastwatt.cli", "run", str(cfg), "--out", str(tmp_path / "runs"),
         "--influx", f"http://127.0.0.1:{influxd.port}", "--quiet"],
        capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    (url,) = re.findall(r"^grafana: (\S+)$", done.stdout, re.M)
    parts = urllib.parse.urlsplit(url)
    assert url.startswith("http://localhost:3000/d/lastwatt-overview/")  # the default base
    params = dict(urllib.parse.parse_qsl(parts.query))
    run_id = next((tmp_path / "runs").iterdir()).name
    assert params["var-run"] == run_id and params["var-round"] == "3600s"
    t0, t1 = int(params["from"]), int(params["to"])
    assert t1 - t0 == 30 * 3_600_000  # 30 hourly rounds, from round 0's start to the last end
    variables = {name.removeprefix("var-"): v for name, v in params.items()
                 if name.startswith("var-")}
    for path in DASHBOARDS:
        for panel, target in _targets(json.loads(path.read_text())):
            q = _grafana_substitute(target["query"], variables, t0, t1)
            series = _query(influxd.port, "url", q).get("series")
            assert series, f"{path.stem}/{panel['title']}: no data for {q}"
            assert any(v is not None for s in series for row in s["values"] for v in row[1:])
