"""Business entry and exit, and Sybil splitting: hand-computed steps, what the market and every
baseline do with a closed business, the Sybil's accounting, and bad config (exit 2, one line)."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lastwatt.config import Config
from lastwatt.errors import ConfigError
from lastwatt.model.market import BASELINES, Market
from lastwatt.model.world import NEVER, open_rounds, present_at, sybil_tokens
from lastwatt.rng import streams
from lastwatt.simulation import run_simulation
from lastwatt.storage.files import TABLES

QUALITIES = [9.0, 6.0, 2.0, -3.0, -8.0, 4.0]


def small(**over) -> Config:
    base = {"population.households": 100, "businesses.count": 6, "businesses.active_set": 2,
            "businesses.qualities": QUALITIES, "population.abstain_probability": 0.0,
            "rounds": 20}
    return Config().with_overrides(**{**base, **over})


def test_open_rounds_and_the_open_mask_by_hand():
    enters, exits = open_rounds(4, [(1, 3, None), (2, 0, 5), (3, 2, 4)])
    assert enters.tolist() == [0, 3, 0, 2] and exits.tolist() == [NEVER, NEVER, 5, 4]
    assert present_at(0, enters, exits).tolist() == [True, False, True, False]
    assert present_at(3, enters, exits).tolist() == [True, True, True, True]
    assert present_at(4, enters, exits).tolist() == [True, True, True, False]  # b3: [2, 4)
    assert present_at(5, enters, exits).tolist() == [True, True, False, False]


def test_sybil_tokens_are_the_share_of_the_supply_they_join_split_equally():
    tokens = sybil_tokens(np.ones(300), 0.25, 4)  # T / (300 + T) = 1/4 -> T = 100
    np.testing.assert_allclose(tokens, [25.0, 25.0, 25.0, 25.0])


def run_rounds(market: Market, pools: list[float]) -> list:
    out = []
    for t, pool in enumerate(pools):
        plan = market.plan(t, pool, 3600.0)
        out.append((plan, market.settle(plan, plan.planned_wh)))
    return out


def test_a_closed_business_gets_no_stake_no_slot_and_no_energy_then_enters():
    cfg = small(**{"world.presence": [{"business": 0, "enters": 3}],
                   "businesses.performance_sd": 0.0})
    rounds = run_rounds(Market(cfg, streams(1)), [100.0] * 6)
    for plan, out in rounds[:3]:
        assert plan.stake_tokens[0] == 0 and 0 not in plan.selected_idx
        assert plan.planned_wh[0] == 0 and not plan.available[0]
        assert np.isnan(out.scalars["entrant_capture"])  # no entrant open yet
        # caps do not bind at 100 Wh: equal split over the five open, p = q (sd 0)
        assert out.scalars["equal_result"] == pytest.approx(100.0 / 5 * (6 + 2 - 3 - 8 + 4))
    plan, out = rounds[3]
    assert plan.available[0]
    assert out.scalars["equal_result"] == pytest.approx(100.0 / 6 * sum(QUALITIES))
    # the best business is soon found: q = 9 and a fresh prior of 9 (no shared error)
    assert any(0 in p.selected_idx for p, _ in rounds[3:])
    assert rounds[-1][1].scalars["entrant_capture"] == 0.5  # b00 holds one of the two slots


def test_no_baseline_or_oracle_feeds_a_closed_business():
    # the only good business is closed: whoever fed it would show a positive result
    cfg = small(**{"businesses.qualities": [9.0, -0.5, -0.5, -0.5, -0.5, -0.5],
                   "businesses.performance_sd": 0.0,
                   "world.presence": [{"business": 0, "enters": 1, "exits": 2}]})
    rounds = run_rounds(Market(cfg, streams(5)), [3000.0] * 8)
    for t, (plan, out) in enumerate(rounds):
        if t == 1:  # b00 is open in round 1 only: the oracles find it
            assert out.scalars["oracle_result"] == pytest.approx(9.0 * min(3000.0,
                                                                             plan.cap_wh[0]))
            continue
        assert plan.planned_wh[0] == 0
        assert out.scalars["oracle_result"] == 0 and out.scalars["quality_oracle_result"] == 0
        for name in BASELINES:
            assert out.scalars[name] <= 0, (t, name)


def test_an_entrant_starts_from_a_neutral_prior_of_its_current_quality():
    # b00 drops to -5 in round 1, before it enters in round 3: its prior is -5, no news
    cfg = small(**{"world.presence": [{"business": 0, "enters": 3}],
                   "world.jumps": [{"round": 1, "business": 0, "quality": -5.0}]})
    market = Market(cfg, streams(2))
    run_rounds(market, [100.0] * 3)
    everyone = slice(0, 100)
    assert (market._consideration.values(everyone)[0] < -1e5).all()  # closed: far below all
    market.plan(3, 100.0, 3600.0)
    beliefs, consider = market._beliefs, market._consideration
    assert beliefs.quality[0] == -5.0 and beliefs.decay[0] == 1.0 and beliefs.news[0] == 0.0
    # every staker's value: the prior plus its own persistent rating noise
    np.testing.assert_allclose(consider.values(everyone)[0], -5.0 + consider.noise[0], rtol=1e-6)


def test_an_uninformed_entrant_starts_from_the_middle_of_the_quality_range():
    cfg = small(**{"world.presence": [{"business": 0, "enters": 2}],
                   "world.entry_prior": "uninformed", "world.rating_shared_sd": 3.0,
                   "businesses.quality_low": -4.0, "businesses.quality_high": 10.0})
    market = Market(cfg, streams(2))
    run_rounds(market, [100.0] * 2)
    market.plan(2, 100.0, 3600.0)
    assert market._beliefs.quality[0] == 3.0  # (-4 + 10) / 2, whatever q_0 = 9 and e_0 are


def test_stakers_of_a_business_that_exits_move_loyal_ones_too():
    cfg = small(**{"world.presence": [{"business": 0, "exits": 3}],
                   "population.policies": {"loyal": 0.5, "softmax": 0.5},
                   "mechanism.unbonding_rounds": 2})
    market = Market(cfg, streams(3))
    rounds = run_rounds(market, [5000.0] * 6)
    assert rounds[0][0].stake_tokens[0] > 0  # the best business had stakers
    table = market.stakers_table()
    for plan, _ in rounds[3:]:
        assert plan.stake_tokens[0] == 0 and 0 not in plan.selected_idx
    assert (table["business"] != 0).all()
    loyal = table[table["policy"] == "loyal"]
    assert (loyal["business"] >= 0).all()  # they chose again
    j = market.policy_names.index("loyal")  # ... and bonded at once, no unbonding delay
    assert rounds[3][1].policy["bonded_tokens"][j] == pytest.approx(
        rounds[2][1].policy["wealth_tokens"][j])


def test_sybil_accounts_are_slashed_per_account_like_any_staker():
    # 2 % of the supply on the worst business, over 5 accounts: too little to be selected
    cfg = small(**{"adversaries.sybil.supply_share": 0.02, "adversaries.sybil.accounts": 5,
                   "adversaries.sybil.business": 4, "mechanism.slash_fraction": 0.1,
                   "mechanism.slash_unselected": True})
    market = Market(cfg, streams(4))
    (plan, out), = run_rounds(market, [5000.0])
    each = 100 * 0.02 / 0.98 / 5
    assert 4 not in plan.selected_idx and plan.stake_tokens[4] >= 5 * each - 1e-12
    table = market.stakers_table()
    sybil = table[table["policy"] == "sybil"]
    assert len(sybil) == 5 and (sybil["business"] == 4).all()
    np.testing.assert_allclose(sybil["stake_tokens"], each * 0.9)
    np.testing.assert_allclose(sybil["slashed_tokens"], each * 0.1)
    j = market.policy_names.index("sybil")
    assert out.policy["stakers"][j] == 5
    assert out.policy["bonded_tokens"][j] == pytest.approx(5 * each)
    assert out.scalars["sybil_capture"] == 0.0 and np.isnan(out.scalars["adversary_capture"])


def test_a_large_sybil_takes_a_slot_and_capture_is_reported():
    cfg = small(**{"adversaries.sybil.supply_share": 0.5, "adversaries.sybil.accounts": 40,
                   "adversaries.sybil.business": 4})
    (plan, out), = run_rounds(Market(cfg, streams(4)), [5000.0])
    assert plan.stake_tokens[4] >= 100.0 - 1e-9  # 100 tokens against the households' 100
    assert 4 in plan.selected_idx and out.scalars["sybil_capture"] == 0.5


def test_splitting_multiplies_a_sybils_voice_under_quadratic_weighting_only():
    # 11.1 tokens on the bad b04: as one account sqrt(11.1) = 3.3 votes, as 100 accounts
    # 100 sqrt(0.111) = 33.3, more than any business but b00 gets from its households
    selected = {}
    for weighting in ("linear", "quadratic"):
        for accounts in (1, 100):
            cfg = small(**{"adversaries.sybil.supply_share": 0.1,
                           "adversaries.sybil.accounts": accounts,
                           "adversaries.sybil.business": 4,
                           "mechanism.stake_weighting": weighting})
            (plan, _), = run_rounds(Market(cfg, streams(4)), [5000.0])
            assert plan.stake_tokens[4] == pytest.approx(100 * 0.1 / 0.9)
            selected[weighting, accounts] = 4 in plan.selected_idx
    assert selected == {("linear", 1): False, ("linear", 100): False,
                        ("quadratic", 1): False, ("quadratic", 100): True}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), share=st.floats(0, 0.9), accounts=st.integers(1, 30),
       enters=st.integers(0, 8), stay=st.integers(1, 8), target=st.integers(0, 5),
       policies=st.sampled_from([({"softmax": 0.6, "herding": 0.3, "loyal": 0.1}, 2),
                                 ({"ewa": 0.3, "q_learning": 0.3, "random": 0.4}, 1)]))
def test_sybil_stake_within_its_tokens_no_energy_to_closed_businesses_caps_and_supply_hold(
        seed, share, accounts, enters, stay, target, policies):
    cfg = small(**{"adversaries.sybil.supply_share": share, "adversaries.sybil.accounts": accounts,
                   "adversaries.sybil.business": target, "population.policies": policies[0],
                   "population.max_businesses_per_staker": policies[1],
                   "world.presence": [{"business": target, "enters": enters,
                                       "exits": enters + stay},
                                      {"business": (target + 1) % 6, "exits": 3}],
                   "mechanism.inflation_rate": 0.001})
    market = Market(cfg, streams(seed))
    supply = market.stakers_table()["stake_tokens"].sum()
    for t, pool in enumerate([0.0, 20_000.0, 90_000.0, 5_000.0, 0.0, 60_000.0] * 2):
        held = market.stakers_table()["stake_tokens"].to_numpy()[100:].sum()
        plan = market.plan(t, pool, 3600.0)
        closed = ~plan.available
        assert not plan.selected[closed].any() and (plan.planned_wh[closed] == 0).all()
        if pool > 0:  # a settled round: nobody is bonded to a closed business
            assert (plan.stake_tokens[closed] == 0).all()
            # the Sybil bonds exactly what it holds to its business while it is open
            sybil = plan.stake_tokens[target] if plan.available[target] else 0.0
            assert sybil <= plan.stake_tokens.sum() + 1e-9
            assert (held - 1e-9 <= sybil) if plan.available[target] else True
        assert plan.planned_wh.sum() + plan.unplaced_wh == pytest.approx(pool)
        assert (plan.planned_wh <= plan.cap_wh + 1e-9).all()
        out = market.settle(plan, plan.planned_wh)
        s = out.scalars
        supply += s["rewards_tokens"] + s["minted_tokens"] - s["slashed_tokens"]
        assert s["token_supply"] == pytest.approx(supply, rel=1e-12)
        j = market.policy_names.index("sybil") if share > 0 else None
        if j is not None:
            assert out.policy["bonded_tokens"][j] <= held + 1e-9  # stake never exceeds tokens


def test_same_seed_gives_identical_outputs_with_entry_exit_and_a_sybil(tmp_path):
    cfg = Config().with_overrides(**{
        "rounds": 120, "world.presence": [{"business": 3, "enters": 80},
                                          {"business": 5, "exits": 100}],
        "adversaries.sybil.supply_share": 0.1, "adversaries.sybil.accounts": 8,
        "adversaries.sybil.business": 7})
    a = run_simulation(cfg, tmp_path / "a").run_dir
    b = run_simulation(cfg, tmp_path / "b").run_dir
    for name in TABLES:
        assert (a / f"{name}.parquet").read_bytes() == (b / f"{name}.parquet").read_bytes(), name
    ja, jb = (json.loads((d / "run.json").read_text())["summary"] for d in (a, b))
    ja.pop("wall_time_s"), jb.pop("wall_time_s")
    assert ja == jb and ja["sybil_capture"] is not None and ja["entrant_capture"] is not None


def test_a_pickled_market_resumes_entry_exit_and_the_sybil_where_it_stopped():
    cfg = small(**{"world.presence": [{"business": 0, "enters": 4}, {"business": 2, "exits": 5}],
                   "adversaries.sybil.supply_share": 0.2, "adversaries.sybil.accounts": 7})
    market = Market(cfg, streams(6))
    run_rounds(market, [9000.0] * 3)
    copy = pickle.loads(pickle.dumps(market))  # what a checkpoint holds

    def rounds_3_to_7(m: Market) -> str:
        out = []
        for t in range(3, 8):
            plan = m.plan(t, 9000.0, 3600.0)
            out.append(m.settle(plan, plan.planned_wh).scalars)
        return json.dumps(out)

    assert rounds_3_to_7(market) == rounds_3_to_7(copy)


BAD = [
    ({"world.presence": [{"business": 6, "enters": 2}]}, "world.presence[0].business=6: unknown"),
    ({"world.presence": [{"business": 1, "enters": 20}]}, "enters=20 is beyond the run"),
    ({"world.presence": [{"business": 1, "enters": 5, "exits": 5}]}, "is not after enters=5"),
    ({"world.presence": [{"business": 1, "exits": 21}]}, "exits=21 is beyond the run"),
    ({"world.presence": [{"business": 1, "enters": 1}, {"business": 1, "exits": 4}]},
     "listed twice"),
    ({"world.presence": [{"business": 1, "enters": -1}]}, "enters"),
    ({"adversaries.sybil.supply_share": 1.0}, "supply_share"),
    ({"adversaries.sybil.supply_share": -0.1}, "supply_share"),
    ({"adversaries.sybil.supply_share": 0.1, "adversaries.sybil.accounts": 0}, "accounts"),
    ({"adversaries.sybil.supply_share": 0.1, "adversaries.sybil.business": 6},
     "adversaries.sybil.business=6: unknown business"),
]


@pytest.mark.parametrize("override, says", BAD, ids=[b[1] for b in BAD])
def test_bad_presence_and_sybil_settings_are_one_line_errors(override, says):
    with pytest.raises(ConfigError) as err:
        small(**override)
    assert says in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("text, says", [
    ("rounds = 10\n[[world.presence]]\nbusiness = 2\nenters = 10\n", "beyond the run"),
    ("rounds = 10\n[[world.presence]]\nbusiness = 2\nenters = 6\nexits = 3\n",
     "is not after enters=6"),
    ("[[world.presence]]\nbusiness = 99\n", "unknown business"),
    ("[adversaries.sybil]\nsupply_share = 1.5\n", "adversaries.sybil.supply_share"),
    ("[adversaries.sybil]\nsupply_share = 0.2\naccounts = 0\n", "adversaries.sybil.accounts"),
])
def test_bad_presence_and_sybil_config_through_the_cli_exits_2_with_one_line(tmp_path, text,
                                                                              says):
    (tmp_path / "c.toml").write_text(text)
    proc = subprocess.run([sys.executable, "-m", "lastwatt.cli", "check", "c.toml"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], proc.stderr
