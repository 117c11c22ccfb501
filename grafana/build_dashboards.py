"""Writes grafana/dashboards/*.json: the four LastWatt dashboards, from one panel list each.

Run ``python grafana/build_dashboards.py`` after changing a panel; the JSON files are checked
in (Grafana provisions them) and tests/test_grafana_dashboards.py runs every query they hold.
Every selected value has an ``AS`` alias: the alias is the column a panel shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DATASOURCE = {"type": "influxdb", "uid": "lastwatt-influx"}
OUT = Path(__file__).parent / "dashboards"
WHERE = 'WHERE "site" =~ /^$site$/ AND "run" =~ /^$run$/ AND $timeFilter'


@dataclass
class Panel:
    title: str
    measurement: str
    select: str  # InfluxQL select list, every item aliased
    unit: str = "none"
    kind: str = "timeseries"
    by: str = ""  # tag to group by, e.g. "business"
    stack: bool = False
    thresholds: list[tuple[float | None, str]] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    interval: bool = True  # GROUP BY time($__interval); False: one value over the range

    def query(self) -> str:
        group = ["time($__interval)"] if self.interval else []
        if self.by:
            group.append(f'"{self.by}"')
        q = f'SELECT {self.select} FROM "{self.measurement}" {WHERE}'
        if group:
            q += " GROUP BY " + ", ".join(group)
        return q + (" fill(null)" if self.interval else "")


def _panel(p: Panel, pid: int, x: int, y: int) -> dict:
    steps = [{"color": c, "value": v} for v, c in (p.thresholds or [(None, "green")])]
    defaults: dict = {"unit": p.unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if p.min is not None:
        defaults["min"] = p.min
    if p.max is not None:
        defaults["max"] = p.max
    if p.kind == "timeseries":
        defaults["custom"] = {"stacking": {"mode": "normal" if p.stack else "none"},
                              "fillOpacity": 30 if p.stack else 0, "spanNulls": False}
    return {
        "id": pid, "type": p.kind, "title": p.title, "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{
            "refId": "A", "datasource": DATASOURCE, "rawQuery": True, "resultFormat":
            "table" if p.kind == "table" else "time_series", "query": p.query(),
            "alias": f"$col $tag_{p.by}" if p.by else "$col",
        }],
    }


def _variable(name: str, query: str) -> dict:
    return {"name": name, "label": name, "type": "query", "datasource": DATASOURCE,
            "query": query, "definition": query, "refresh": 2, "sort": 1,
            "includeAll": False, "multi": False}


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict:
    return {
        "uid": uid, "title": title, "tags": ["lastwatt"], "editable": False,
        "schemaVersion": 39, "version": 1, "refresh": "30s", "timezone": "utc",
        "time": {"from": "now-2d", "to": "now"},
        "templating": {"list": [
            _variable("site", 'SHOW TAG VALUES FROM "rounds" WITH KEY = "site"'),
            _variable("run", 'SHOW TAG VALUES FROM "rounds" WITH KEY = "run" '
                             'WHERE "site" =~ /^$site$/'),
        ]},
        "panels": [_panel(p, i + 1, 12 * (i % 2), 8 * (i // 2)) for i, p in enumerate(panels)],
    }


OK_RED = [(None, "green"), (1.0, "red")]
LOW_RED = [(None, "red"), (0.5, "orange"), (0.8, "green")]

DASHBOARDS = {
    "lastwatt-overview": ("LastWatt Overview", [
        Panel("Energy split", "rounds",
              'mean("community_wh") AS "community", mean("household_wh") AS "households", '
              'mean("reserve_wh") AS "reserve", mean("business_pool_wh") AS "business pool"',
              "watth", stack=True, min=0),
        Panel("Production and unserved load", "rounds",
              'mean("production_wh") AS "production", mean("unserved_community_wh") AS '
              '"unserved community", mean("unserved_household_wh") AS "unserved households"',
              "watth", min=0),
        Panel("Efficiency (result / oracle)", "rounds", 'mean("efficiency") AS "efficiency"',
              "percentunit", thresholds=LOW_RED, max=1),
        Panel("Result vs oracle and baselines", "rounds",
              'mean("total_result") AS "staked", mean("oracle_result") AS "oracle", '
              'mean("equal_result") AS "equal split", mean("random_result") AS "random I", '
              'mean("reweighted_selection_result") AS "reweighted selection", '
              'mean("self_proportional_result") AS "self-proportional", '
              'mean("ucb_result") AS "UCB"'),
        Panel("Selected set", "businesses", 'max("selected") AS "selected"',
              kind="state-timeline", by="business", thresholds=[(None, "transparent"),
                                                                (1.0, "green")]),
        Panel("Participation", "rounds", 'mean("participation") AS "participation"',
              "percentunit", thresholds=LOW_RED, min=0, max=1),
        Panel("Stake Gini and turnover", "rounds",
              'mean("stake_gini") AS "gini", mean("turnover") AS "turnover"',
              "percentunit", min=0, max=1),
        Panel("Efficiency over the range", "rounds",
              'sum("total_result") / sum("oracle_result") AS "efficiency"', "percentunit",
              kind="stat", thresholds=LOW_RED, interval=False),
    ]),
    "lastwatt-businesses": ("LastWatt Businesses", [
        Panel("Stake share", "businesses", 'mean("stake_share") AS "share"', "percentunit",
              by="business", stack=True, min=0, max=1),
        Panel("Planned vs metered energy", "rounds",
              'sum("planned_wh") AS "planned", sum("metered_wh") AS "metered"', "watth", min=0),
        Panel("Metered energy per business", "businesses", 'sum("metered_wh") AS "metered"',
              "watth", by="business", stack=True, min=0),
        Panel("Result per business", "businesses", 'sum("result") AS "result"',
              by="business", thresholds=[(None, "red"), (0.0, "green")]),
        Panel("Performance", "businesses", 'mean("performance") AS "performance"',
              by="business", min=-10, max=10, thresholds=[(None, "red"), (0.0, "green")]),
        Panel("Stake and revenue over the range", "businesses",
              'last("stake_tokens") AS "stake", sum("revenue_tokens") AS "revenue", '
              'sum("result") AS "result"', kind="table", by="business", interval=False),
    ]),
    "lastwatt-devices": ("LastWatt Devices", [
        Panel("Power", "devices", 'mean("power_w") AS "power"', "watt", by="device", min=0),
        Panel("Online", "devices", 'min("online") AS "online"', kind="state-timeline",
              by="device", thresholds=[(None, "red"), (1.0, "green")]),
        Panel("Quota used", "devices", 'max("quota_used") AS "quota used"', "percentunit",
              by="device", min=0, thresholds=[(None, "green"), (0.9, "orange"), (1.0, "red")]),
        Panel("Metered energy", "devices", 'sum("metered_wh") AS "metered"', "watth",
              by="device", stack=True, min=0),
        Panel("Switched on", "devices", 'max("on") AS "on"', kind="state-timeline",
              by="device", thresholds=[(None, "transparent"), (1.0, "yellow")]),
    ]),
    "lastwatt-stakers": ("LastWatt Stakers", [
        Panel("Wealth per policy", "staker_policies", 'mean("wealth_tokens") AS "wealth"',
              by="policy", stack=True, min=0),
        Panel("Wealth per staker", "staker_policies",
              'mean("wealth_tokens") / mean("stakers") AS "per staker"', by="policy", min=0),
        Panel("Bonded tokens per policy", "staker_policies", 'mean("bonded_tokens") AS "bonded"',
              by="policy", min=0),
        Panel("Rewards and slashing per policy", "staker_policies",
              'sum("reward_tokens") AS "rewards", sum("slashed_tokens") AS "slashed"',
              by="policy"),
        Panel("Abstaining", "staker_policies", 'mean("abstaining") AS "abstaining"',
              by="policy", min=0),
    ]),
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for uid, (title, panels) in DASHBOARDS.items():
        text = json.dumps(dashboard(uid, title, panels), indent=2) + "\n"
        (OUT / f"{uid.removeprefix('lastwatt-')}.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
