"""Writes grafana/dashboards/*.json: the four LastWatt dashboards, from one panel list each.

Run ``python grafana/build_dashboards.py`` after changing a panel; the JSON files are checked
in (Grafana provisions them) and tests/deploy/test_grafana_dashboards.py runs every query they hold.
Every selected value has an ``AS`` alias: the alias is the column a panel shows.

Conventions (docs/monitoring.md): every query groups by ``run`` so several selected runs are
compared side by side; the minimum interval is the variable ``round`` (the round length in
stamped time, set by the URL ``lastwatt run`` prints), so a bucket never holds less than a
round; ``fill(none)`` because an empty bucket means "no round there", not zero; a sum over a
bucket says "per interval" in its title (it grows with the bucket), other energy panels show
the mean energy per round or a cumulative sum, which do not change with zoom.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DATASOURCE = {"type": "influxdb", "uid": "lastwatt-influx"}
OUT = Path(__file__).parent / "dashboards"
SELECTED = '"site" =~ /^$site$/ AND "run" =~ /^$run$/'
WHERE = f"WHERE {SELECTED} AND $timeFilter"
DEFAULT_ROUND = "1h"


@dataclass
class Panel:
    title: str
    measurement: str
    select: str  # InfluxQL select list, every item aliased
    unit: str = "none"
    about: str = ""  # the panel description: what is shown and how it is aggregated
    kind: str = "timeseries"
    by: str = ""  # tag to group by, e.g. "business"
    stack: bool = False
    thresholds: list[tuple[float | None, str]] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    interval: bool = True  # GROUP BY time($__interval); False: one value over the range

    def query(self) -> str:
        group = ["time($__interval)"] if self.interval else []
        group += [f'"{self.by}"'] if self.by else []
        group.append('"run"')
        q = f'SELECT {self.select} FROM "{self.measurement}" {WHERE} GROUP BY ' + ", ".join(group)
        return q + (" fill(none)" if self.interval else "")

    def alias(self) -> str:
        return f"$col $tag_{self.by} · $tag_run" if self.by else "$col · $tag_run"


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
    panel = {
        "id": pid, "type": p.kind, "title": p.title, "description": p.about,
        "datasource": DATASOURCE, "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{
            "refId": "A", "datasource": DATASOURCE, "rawQuery": True, "resultFormat":
            "table" if p.kind == "table" else "time_series", "query": p.query(),
            "alias": p.alias(),
        }],
    }
    if p.interval:
        panel["interval"] = "$round"  # minimum interval: one round
    return panel


def _variables() -> list[dict]:
    site = 'SHOW TAG VALUES FROM "rounds" WITH KEY = "site" WHERE $timeFilter'
    # a raw select, not SHOW TAG VALUES: it is bounded by the range and ordered by time, so the
    # first option (Grafana's default) is the run with the newest point in the range
    run = ('SELECT "run", "round" FROM "rounds" WHERE "site" =~ /^$site$/ AND $timeFilter '
           "ORDER BY time DESC")
    common = {"type": "query", "datasource": DATASOURCE, "refresh": 2, "includeAll": False}
    return [
        common | {"name": "site", "label": "site", "query": site, "definition": site,
                  "sort": 1, "multi": False},
        common | {"name": "run", "label": "run (newest first)", "query": run, "definition": run,
                  "sort": 0, "multi": True},
        {"name": "round", "label": "round length", "type": "textbox", "query": DEFAULT_ROUND,
         "current": {"text": DEFAULT_ROUND, "value": DEFAULT_ROUND},
         "description": "minimum interval of every panel: the run's round length in stamped "
                        "time (lastwatt run's URL sets it)"},
    ]


def annotation() -> dict:
    """Marks round 0 of every selected run (text: the run id)."""
    query = (f'SELECT "run", "round" FROM "rounds" WHERE {SELECTED} AND "round" = 0 '
             "AND $timeFilter")
    return {"name": "Run start", "datasource": DATASOURCE, "enable": True,
            "iconColor": "#5794F2", "query": query, "textColumn": "run", "tagsColumn": "run"}


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict:
    return {
        "uid": uid, "title": title, "tags": ["lastwatt"], "editable": False,
        "schemaVersion": 39, "version": 1, "refresh": "30s", "timezone": "utc",
        "time": {"from": "now-2d", "to": "now"},
        "links": [{"title": "LastWatt", "type": "dashboards", "tags": ["lastwatt"],
                   "asDropdown": False, "includeVars": True, "keepTime": True,
                   "targetBlank": False, "icon": "external link"}],
        "annotations": {"list": [annotation()]},
        "templating": {"list": _variables()},
        "panels": [_panel(p, i + 1, 12 * (i % 2), 8 * (i // 2)) for i, p in enumerate(panels)],
    }


OK_RED = [(None, "green"), (1.0, "red")]
LOW_RED = [(None, "red"), (0.5, "orange"), (0.8, "green")]
PER_ROUND = ("Mean over each interval of the energy of one round: the scale does not change "
             "when you zoom.")
PER_INTERVAL = ("Sum over each interval (at least one round): it grows with the interval, "
                "so compare bars of the same zoom only.")

DASHBOARDS = {
    "lastwatt-overview": ("LastWatt Overview", [
        Panel("Energy split (Wh per round)", "rounds",
              'mean("community_wh") AS "community", mean("household_wh") AS "households", '
              'mean("reserve_wh") AS "reserve", mean("business_pool_wh") AS "business pool"',
              "watth", "How each round's production is split: community, households, reserve "
              "and the business pool the stakers route. " + PER_ROUND, stack=True, min=0),
        Panel("Production and unserved load (Wh per round)", "rounds",
              'mean("production_wh") AS "production", mean("unserved_community_wh") AS '
              '"unserved community", mean("unserved_household_wh") AS "unserved households"',
              "watth", "Solar production and the community / household load it could not "
              "serve. " + PER_ROUND, min=0),
        Panel("Efficiency per interval (Σ result / Σ oracle)", "rounds",
              'sum("total_result") / sum("oracle_result") AS "efficiency"', "percentunit",
              "Total result of the staked allocation divided by the oracle's, both summed over "
              "the interval: a ratio of sums, like the stat 'Efficiency over the range' (not a "
              "mean of per-round ratios, which overweights rounds with little at stake).",
              thresholds=LOW_RED, max=1),
        Panel("Result vs oracle and baselines (mean per round)", "rounds",
              'mean("total_result") AS "staked", mean("oracle_result") AS "oracle", '
              'mean("equal_result") AS "equal split", mean("random_result") AS "random I", '
              'mean("reweighted_selection_result") AS "reweighted selection", '
              'mean("self_proportional_result") AS "self-proportional", '
              'mean("ucb_result") AS "UCB"',
              about="Total result R of one round for the staked allocation, the oracle and "
              "the baselines (docs/model.md), averaged over the interval."),
        Panel("Selected set", "businesses", 'max("selected") AS "selected"',
              about="Businesses in the active set: green when selected in any round of the "
              "interval.", kind="state-timeline", by="business",
              thresholds=[(None, "transparent"), (1.0, "green")]),
        Panel("Participation", "rounds", 'mean("participation") AS "participation"',
              "percentunit", "Share of stakers with bonded stake (abstaining and unbonding stakers "
              "are out), mean over the interval.", thresholds=LOW_RED, min=0, max=1),
        Panel("Stake Gini and turnover", "rounds",
              'mean("stake_gini") AS "gini", mean("turnover") AS "turnover"',
              "percentunit", "Gini of the stake across businesses, and turnover of the selected "
              "set (Jaccard to the previous round), mean over the interval.", min=0, max=1),
        Panel("Efficiency over the range", "rounds",
              'sum("total_result") / sum("oracle_result") AS "efficiency"', "percentunit",
              "Σ result / Σ oracle over the whole time range, one value per selected run.",
              kind="stat", thresholds=LOW_RED, interval=False),
    ]),
    "lastwatt-businesses": ("LastWatt Businesses", [
        Panel("Stake share", "businesses", 'mean("stake_share") AS "share"', "percentunit",
              "Each business's share of all bonded stake, mean over the interval.",
              by="business", stack=True, min=0, max=1),
        Panel("Planned vs metered energy (cumulative)", "rounds",
              'cumulative_sum(sum("planned_wh")) AS "planned", '
              'cumulative_sum(sum("metered_wh")) AS "metered"', "watth",
              "Business energy planned by the setpoints and metered by the devices, summed "
              "from the start of the range: the gap is energy granted but not drawn.", min=0),
        Panel("Metered energy per business, per interval", "businesses",
              'sum("metered_wh") AS "metered"', "watth",
              "Energy the business's devices metered. " + PER_INTERVAL,
              by="business", stack=True, min=0),
        Panel("Result per business, per interval", "businesses", 'sum("result") AS "result"',
              about="The business's contribution to the total result R. " + PER_INTERVAL,
              by="business", thresholds=[(None, "red"), (0.0, "green")]),
        Panel("Performance", "businesses", 'mean("performance") AS "performance"',
              about="Performance of a selected business (none while unselected), mean over "
                    "the interval.",
              by="business", min=-10, max=10, thresholds=[(None, "red"), (0.0, "green")]),
        Panel("Stake and revenue over the range", "businesses",
              'last("stake_tokens") AS "stake", sum("revenue_tokens") AS "revenue", '
              'sum("result") AS "result"', about="Per business and run: stake at the end of "
              "the range, revenue and result summed over the range.", kind="table",
              by="business", interval=False),
    ]),
    "lastwatt-devices": ("LastWatt Devices", [
        Panel("Power", "devices", 'mean("power_w") AS "power"', "watt",
              "Last metered power of each device in a round, mean over the interval.",
              by="device", min=0),
        Panel("Online", "devices", 'min("online") AS "online"', about="Red when the device "
              "was offline in any round of the interval.", kind="state-timeline",
              by="device", thresholds=[(None, "red"), (1.0, "green")]),
        Panel("Quota used", "devices", 'max("quota_used") AS "quota used"', "percentunit",
              "Metered / granted energy of the round (none without a quota), the highest "
              "round of the interval.", by="device", min=0,
              thresholds=[(None, "green"), (0.9, "orange"), (1.0, "red")]),
        Panel("Metered energy per device, per interval", "devices",
              'sum("metered_wh") AS "metered"', "watth",
              "Energy each device metered. " + PER_INTERVAL, by="device", stack=True, min=0),
        Panel("Switched on", "devices", 'max("on") AS "on"', about="Yellow when the relay "
              "was on in any round of the interval.", kind="state-timeline",
              by="device", thresholds=[(None, "transparent"), (1.0, "yellow")]),
    ]),
    "lastwatt-stakers": ("LastWatt Stakers", [
        Panel("Wealth per policy", "staker_policies", 'mean("wealth_tokens") AS "wealth"',
              about="Tokens held by all stakers of a policy, mean over the interval.",
              by="policy", stack=True, min=0),
        Panel("Wealth per staker", "staker_policies",
              'mean("wealth_tokens") / mean("stakers") AS "per staker"',
              about="Mean wealth of one staker of the policy.", by="policy", min=0),
        Panel("Bonded tokens per policy", "staker_policies", 'mean("bonded_tokens") AS "bonded"',
              about="Tokens the policy's stakers have bonded, mean over the interval.",
              by="policy", min=0),
        Panel("Rewards and slashing per policy, per interval", "staker_policies",
              'sum("reward_tokens") AS "rewards", sum("slashed_tokens") AS "slashed"',
              about="Tokens earned and lost by the policy's stakers. " + PER_INTERVAL,
              by="policy"),
        Panel("Abstaining", "staker_policies", 'mean("abstaining") AS "abstaining"',
              about="Stakers of the policy who abstained in the round (they keep "
                    "their last choice), mean over the interval.", by="policy", min=0),
    ]),
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for uid, (title, panels) in DASHBOARDS.items():
        text = json.dumps(dashboard(uid, title, panels), indent=2, ensure_ascii=False) + "\n"
        (OUT / f"{uid.removeprefix('lastwatt-')}.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
