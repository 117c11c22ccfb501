"""The Grafana dashboards: they parse, use only the provisioned datasource, and every panel
query (macros and variables substituted as Grafana does) returns data from a real influxd."""

from __future__ import annotations

import json
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from lastwatt.config.influx import InfluxConfig
from lastwatt.storage.influx import make_influx_recorder
from tests.storage_data import make_meta, make_rounds

ROOT = Path(__file__).resolve().parents[1]
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
        refs += [v["datasource"] for v in dash["templating"]["list"]]
        assert all(r == {"type": "influxdb", "uid": ds["uid"]} for r in refs), path.name


def test_dashboards_have_site_and_run_variables_and_units_on_every_panel():
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        assert [v["name"] for v in dash["templating"]["list"]] == ["site", "run"]
        for panel in dash["panels"]:
            defaults = panel["fieldConfig"]["defaults"]
            assert defaults["unit"] and defaults["thresholds"]["steps"], panel["title"]
    units = {p["fieldConfig"]["defaults"]["unit"] for path in DASHBOARDS
             for p in json.loads(path.read_text())["panels"]}
    assert {"watt", "watth", "percentunit"} <= units


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


def _grafana_substitute(query: str, variables: dict[str, str], t0_ms: int, t1_ms: int) -> str:
    """What Grafana's InfluxQL datasource does before sending a query."""
    query = query.replace("$timeFilter", f"time >= {t0_ms}ms and time <= {t1_ms}ms")
    query = query.replace("$__interval", "1h")
    for name, value in variables.items():  # regex context: Grafana escapes the value
        query = query.replace(f"${name}", re.escape(value))
    return query


def _query(port: int, db: str, q: str) -> dict:
    params = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ms"})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/query?{params}", timeout=10) as r:
        result = json.load(r)["results"][0]
    assert "error" not in result, (q, result)
    return result


@pytest.fixture(scope="module")
def short_run(influxd, tmp_path_factory):
    meta = make_meta("grafana-run", businesses=5, devices=3)
    rounds = make_rounds(meta, 48)
    cfg = InfluxConfig(api="v1", database="grafana", flush_interval_ms=50,
                       spool_dir=tmp_path_factory.mktemp("spool"))
    rec = make_influx_recorder(f"http://127.0.0.1:{influxd.port}", cfg)
    rec.open(meta)
    for r in rounds:
        rec.record(r)
    rec.close({}, None)
    assert rec.stats["written"] > 0
    t0, t1 = int(rounds[0].start_ts * 1000), int(rounds[-1].end_ts * 1000)
    return influxd.port, meta, t0, t1


@pytest.mark.integration
def test_template_variable_queries_list_the_site_and_run(short_run):
    port, meta, _, _ = short_run
    dash = json.loads((GRAFANA / "dashboards/overview.json").read_text())
    found = {}
    for var in dash["templating"]["list"]:
        q = var["query"].replace("$site", re.escape(meta.site))
        series = _query(port, "grafana", q)["series"]
        found[var["name"]] = {v[1] for s in series for v in s["values"]}
    assert meta.site in found["site"] and meta.run_id in found["run"]


@pytest.mark.integration
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_query_returns_series_with_the_aliased_columns(short_run, path):
    port, meta, t0, t1 = short_run
    dash = json.loads(path.read_text())
    for panel, target in _targets(dash):
        q = _grafana_substitute(target["query"], {"site": meta.site, "run": meta.run_id}, t0, t1)
        series = _query(port, "grafana", q).get("series")
        assert series, f"{path.stem}/{panel['title']}: no data for {q}"
        aliases = re.findall(r' AS "([^"]+)"', target["query"])
        for s in series:
            assert s["columns"] == ["time", *aliases], panel["title"]
            assert any(v is not None for row in s["values"] for v in row[1:]), panel["title"]
        if "GROUP BY" in q and '"business"' in q.split("GROUP BY")[1]:
            assert {s["tags"]["business"] for s in series} == set(meta.business_names)
