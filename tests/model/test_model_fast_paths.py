"""The model's fast paths equal their plain reference formulas, and idle rounds keep the bonds."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lastwatt.config import Config
from lastwatt.model import agents, allocation, fastpath
from lastwatt.model.allocation import water_fill
from lastwatt.model.beliefs import PublicBeliefs
from lastwatt.model.market import Market
from lastwatt.model.metrics import BlockSums, gini
from lastwatt.model.oracle import oracle_allocation
from lastwatt.model.selection import select_active_set
from lastwatt.model.settlement import settle_businesses
from lastwatt.rng import streams

# token holdings: subnormal amounts make the reference's mean underflow to 0 (not a holding)
holdings = arrays(
    float,
    st.integers(1, 300),
    elements=st.one_of(st.just(0.0), st.just(1.0), st.floats(0, 1e6, allow_subnormal=False)),
)


def reference_gini(x: np.ndarray) -> float:
    """Mean absolute difference over twice the mean: the definition, O(n^2)."""
    if x.sum() <= 0:
        return 0.0
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size**2 * x.mean()))


@given(holdings)
def test_gini_equals_its_definition_on_any_holdings(x):
    work = np.empty_like(x)
    assert gini(x) == pytest.approx(reference_gini(x), rel=1e-9, abs=1e-12)
    assert gini(x, work, float(x.sum())) == pytest.approx(gini(x), rel=1e-12, abs=1e-15)


@given(arrays(float, st.integers(1, 60), elements=st.floats(-5, 5)), st.booleans())
def test_block_sums_equal_slice_sums_also_with_an_empty_block(values, as_bool):
    values = values > 0 if as_bool else values
    n = len(values)
    cut = n // 3
    blocks = [slice(0, cut), slice(cut, cut), slice(cut, n)]  # the middle one is empty
    expected = [float(values[b].sum()) for b in blocks]
    np.testing.assert_allclose(BlockSums(blocks)(values), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(BlockSums([slice(0, n)])(values), [sum(expected)], rtol=1e-12)


def reference_draw(cumulative: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    target = uniform * cumulative[-1]
    row = np.zeros(cumulative.shape[1], dtype=np.int64)
    for j in range(cumulative.shape[0] - 1):
        row += cumulative[j] <= target
    return row


@pytest.mark.parametrize("candidates", [2, 8, 127, 128, 300])
def test_inverse_cdf_draw_matches_the_row_by_row_count(candidates):
    rng = np.random.default_rng(candidates)
    weights = rng.random((candidates, 5_000), dtype=np.float32)
    weights[rng.random(weights.shape) < 0.2] = 0.0  # candidates already drawn
    cumulative = agents.cumulative_rows(weights.copy())
    np.testing.assert_array_equal(cumulative, np.cumsum(weights, axis=0))
    uniform = rng.random(5_000, dtype=np.float32)
    rows = agents.draw_rows(cumulative, uniform)
    np.testing.assert_array_equal(rows, reference_draw(cumulative, uniform))


def test_unshifted_logit_weights_give_the_shifted_probabilities():
    rng = np.random.default_rng(4)
    values = rng.uniform(-30, 30, (8, 1_000)).astype(np.float32)
    for temperature in (1.0, 0.7, 3.0):
        fast = agents.logit_weights(values, temperature, np.empty_like(values), 30.0)
        safe = agents.logit_weights(values, temperature, np.empty_like(values))
        np.testing.assert_allclose(fast / fast.sum(0), safe / safe.sum(0), rtol=1e-5, atol=1e-7)


def test_logit_weights_keep_the_shift_when_values_would_overflow():
    values = np.array([[0.0, -500.0], [50.0, -450.0]], dtype=np.float32)
    weights = agents.logit_weights(values, 0.1, np.empty_like(values), 500.0)
    assert np.isfinite(weights).all() and (weights.max(axis=0) == 1.0).all()


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    size=st.sampled_from([0, 2, 5]),
    observed=st.lists(st.integers(1, 30), min_size=1, max_size=8),
)
def test_cached_and_lazily_computed_values_follow_the_belief_formula(seed, size, observed):
    rng = np.random.default_rng(seed)
    beliefs = PublicBeliefs(rng.uniform(-10, 10, 30), learning_rate=0.3)
    cached = [slice(0, 120), slice(300, 400)]
    consider = agents.Consideration(500, 30, size, 3.0, rng, beliefs, cached)
    for count in observed:  # few businesses: scattered refresh; many: a full pass
        seen = rng.choice(30, count, replace=False)
        beliefs.observe(seen, rng.uniform(-10, 10, count))
        consider.refresh(beliefs, seen)
    business = consider.business
    expected = beliefs.base()[business] + beliefs.decay[business] * consider.noise
    for block in (slice(0, 120), slice(310, 390), slice(120, 300), slice(400, 500)):
        got = consider.values(block)
        np.testing.assert_allclose(got, expected[:, block], rtol=1e-5, atol=1e-5)
    assert np.abs(expected).max() <= consider.value_bound


def trace(market: Market, pools) -> list:
    out = []
    for t, pool in enumerate(pools):
        plan = market.plan(t, pool, 3600.0)
        outcome = market.settle(plan, plan.planned_wh)
        out.append((plan.selected_idx, plan.stake_tokens.tolist(), outcome.scalars))
    return out


DAYS = ([0.0] * 7 + [15_000.0, 30_000.0, 30_000.0, 15_000.0] + [0.0] * 13) * 3


@pytest.mark.parametrize("consider", [0, 6])
def test_kept_softmax_weights_decide_exactly_like_weights_recomputed_each_round(
    consider, monkeypatch
):
    cfg = Config().with_overrides(
        **{"population.households": 400, "population.consideration_set": consider}
    )
    kept = trace(Market(cfg, streams(3)), DAYS)
    monkeypatch.setattr(fastpath, "KEEP_WEIGHTS_CELLS", 0)
    recomputed = trace(Market(cfg, streams(3)), DAYS)
    assert repr(kept) == repr(recomputed)


def full_trace(cfg: Config) -> tuple[list, dict]:
    market = Market(cfg, streams(5))
    rounds = trace(market, [0.0, 15_000.0, 30_000.0, 0.0, 0.0, 30_000.0, 15_000.0, 30_000.0])
    table = market.stakers_table()
    table["policy"] = table["policy"].cat.codes
    return rounds, {name: table[name].to_numpy().tobytes() for name in table.columns}


@pytest.mark.parametrize(
    ("overrides", "threads"),
    [
        ({}, 2),  # softmax k = 1: chunks on two threads, scattered belief refresh
        ({}, 3),  # more threads than the development machine has cores: the same bits
        ({"population.consideration_set": 0, "businesses.count": 40}, 2),  # all considered
        ({"mechanism.unbonding_rounds": 2, "population.abstain_probability": 0.3}, 2),
        ({"population.max_businesses_per_staker": 2}, 2),
    ],
)
def test_threads_give_exactly_the_single_threaded_results(overrides, threads, monkeypatch):
    households = 2 * fastpath.CHUNK_STAKERS + 1_000  # softmax share above one chunk
    cfg = Config().with_overrides(
        **{
            "population.households": households,
            "population.consideration_set": 6,
            "businesses.count": 300,
            "businesses.active_set": 30,
            **overrides,
        }
    )
    assert not fastpath.threaded(households)  # the default: one thread at this size
    single = full_trace(cfg)
    handed_over = []
    submit = fastpath.submit
    monkeypatch.setattr(fastpath, "submit", lambda fn, *a: handed_over.append(fn) or submit(fn, *a))
    monkeypatch.setattr(fastpath, "THREADED_MIN_STAKERS", households - 1)
    monkeypatch.setattr(fastpath, "THREADS", threads)  # independent of this machine's CPUs
    monkeypatch.setattr(fastpath, "_pool", None)  # a pool of that size
    threaded = full_trace(cfg)
    assert len(handed_over) >= 10  # the settled rounds did hand work to the other threads
    assert repr(threaded[0]) == repr(single[0])
    assert threaded[1] == single[1]


@given(
    pool=st.floats(1.0, 1e5),
    stake=arrays(float, 10, elements=st.floats(0, 100)),
    cap=arrays(float, 10, elements=st.floats(1, 2e4)),
    seed=st.integers(0, 100),
)
def test_water_filling_only_the_selected_equals_filling_all_with_zero_weights(
    pool, stake, cap, seed
):
    idx = np.sort(select_active_set(stake, 4, np.random.default_rng(seed)))
    selected = np.zeros(10, dtype=bool)
    selected[idx] = True
    full, full_left = water_fill(pool, np.where(selected, stake, 0.0), cap)
    part, part_left = water_fill(pool, stake[idx], cap[idx])
    np.testing.assert_array_equal(full[idx], part)
    assert not full[~selected].any() and full_left == part_left


@given(
    pool=st.floats(0, 1e5),
    weight=arrays(float, 12, elements=st.one_of(st.just(0.0), st.floats(1e-3, 100))),
    cap=arrays(float, 12, elements=st.floats(0, 2e4)),
)
def test_water_filling_a_few_businesses_in_python_equals_the_numpy_loop(pool, weight, cap):
    few, few_left = water_fill(pool, weight, cap)
    saved = allocation.FEW
    allocation.FEW = -1  # force the numpy loop
    try:
        many, many_left = water_fill(pool, weight, cap)
    finally:
        allocation.FEW = saved
    np.testing.assert_allclose(few, many, rtol=1e-12, atol=1e-9)
    assert few_left == pytest.approx(many_left, rel=1e-12, abs=1e-9)


def test_selection_with_everything_available_equals_selection_without_availability():
    stake = np.array([3.0, 1.0, 3.0, 0.0, 2.0, 3.0])
    for seed in range(20):
        a = select_active_set(stake, 3, np.random.default_rng(seed))
        b = select_active_set(stake, 3, np.random.default_rng(seed), np.ones(6, dtype=bool))
        assert a.tolist() == b.tolist()


@given(
    pool=st.floats(0, 1e5),
    cap=arrays(float, 8, elements=st.floats(0, 1e4)),
    performance=arrays(float, 8, elements=st.floats(-10, 10)),
    active=st.sampled_from([None, 3]),
)
def test_oracle_is_the_greedy_knapsack(pool, cap, performance, active):
    expected = np.zeros(8)
    order = [i for i in np.argsort(-performance, kind="stable") if performance[i] > 0]
    left = pool
    for i in order[:active]:
        expected[i] = min(cap[i], max(left, 0.0))
        left -= cap[i]
    np.testing.assert_allclose(oracle_allocation(pool, cap, performance, None, active), expected)


def reference_settlement(result, stake, selected, available, minted, share, fraction, unselected):
    revenue = np.maximum(result, 0.0) * 0.01
    rewarded = selected & (result > 0) & (stake > 0)
    reward = np.where(rewarded, share * revenue, 0.0)
    rewarded_stake = stake[rewarded].sum()
    mint = np.where(rewarded, minted * stake / rewarded_stake, 0.0) if rewarded_stake else 0 * stake
    credit = np.divide(reward + mint, stake, out=np.zeros(len(stake)), where=rewarded)
    punished = selected & (result <= 0)
    if unselected:
        punished |= ~selected & available
    return revenue, reward, mint, credit, np.where(punished, fraction, 0.0)


@given(
    result=arrays(float, 6, elements=st.floats(-1e4, 1e4)),
    stake=arrays(float, 6, elements=st.one_of(st.just(0.0), st.floats(1e-3, 50))),
    selected=arrays(bool, 6),
    available=arrays(bool, 6),
    minted=st.sampled_from([0.0, 3.0]),
    unselected=st.booleans(),
)
def test_settlement_equals_the_reference_formulas(
    result, stake, selected, available, minted, unselected
):
    got = settle_businesses(
        result, stake, selected, available, settled=True, revenue_per_result=0.01,
        reward_share=0.3, slash_fraction=0.1, slash_unselected=unselected,
        slash_unavailable=False, minted_tokens=minted,
    )  # fmt: skip
    expected = reference_settlement(
        result, stake, selected, available, minted, 0.3, 0.1, unselected
    )
    fields = ("revenue_tokens", "reward_tokens", "minted_tokens", "credit_per_token")
    for name, want in zip((*fields, "slash_per_token"), expected, strict=True):
        np.testing.assert_allclose(getattr(got, name), want, rtol=1e-12, err_msg=name)


def idle_config(**overrides) -> Config:
    base = {"population.households": 200, "population.abstain_probability": 0.2}
    return Config().with_overrides(**{**base, **overrides})


def test_an_idle_round_keeps_the_last_rounds_bonds_and_abstainers():
    market = Market(idle_config(), streams(5))
    day = market.plan(0, 20_000.0, 3600.0)
    market.settle(day, day.planned_wh)
    before = market.stakers_table()
    nights = []
    for t in (1, 2):
        night = market.plan(t, 0.0, 3600.0)
        nights.append((night, market.settle(night, night.planned_wh)))
    after = market.stakers_table()
    np.testing.assert_array_equal(after["business"], before["business"])
    abstained = after["rounds_abstained"] - before["rounds_abstained"]
    assert set(abstained) == {0, 2}  # the day's abstainers, counted again each idle round
    for night, out in nights:
        assert night.participation == day.participation
        assert out.policy["abstaining"].sum() == (abstained == 2).sum()
        np.testing.assert_allclose(night.stake_tokens.sum(), out.scalars["bonded_tokens"])
        assert out.scalars["rewards_tokens"] == out.scalars["slashed_tokens"] == 0
    assert nights[0][0].selected_idx == nights[1][0].selected_idx
    assert nights[1][1].scalars["turnover"] == 0.0


def test_an_idle_round_values_the_kept_bonds_at_the_settled_holdings():
    market = Market(idle_config(), streams(6))
    day = market.plan(0, 20_000.0, 3600.0)
    market.settle(day, day.planned_wh)
    night = market.plan(1, 0.0, 3600.0)
    out = market.settle(night, night.planned_wh)
    table = market.stakers_table()
    bonded = table["rounds_abstained"] == 0
    assert night.stake_tokens.sum() == pytest.approx(table["stake_tokens"][bonded].sum())
    assert night.stake_tokens.sum() != pytest.approx(day.stake_tokens.sum())  # settled
    assert out.scalars["token_supply"] == pytest.approx(table["stake_tokens"].sum())


def test_unbonding_counts_only_rounds_with_a_business_pool():
    cfg = idle_config(
        **{
            "population.policies": {"herding": 1.0},  # own beliefs first, then the leader
            "population.abstain_probability": 0.0,
            "mechanism.unbonding_rounds": 2,
        }
    )
    market = Market(cfg, streams(7))
    participation = []
    for t, pool in enumerate([20_000.0, 20_000.0, 0.0, 0.0, 0.0, 20_000.0, 20_000.0]):
        plan = market.plan(t, pool, 3600.0)
        market.settle(plan, plan.planned_wh)
        participation.append(plan.participation)
    # round 1's switchers sit out round 1 and, idle rounds not counting, round 5 too
    assert participation[0] == 1.0 and participation[1] < 0.9
    assert participation[2:6] == [participation[1]] * 4
    assert participation[6] == 1.0


def test_common_random_numbers_do_not_depend_on_the_stakers_policies():
    pools = DAYS[:30]
    draws = []
    for policies in ({"softmax": 1.0}, {"random": 0.5, "loyal": 0.5}):
        market = Market(idle_config(**{"population.policies": policies}), streams(8))
        rounds = []
        for t, pool in enumerate(pools):
            plan = market.plan(t, pool, 3600.0)
            out = market.settle(plan, plan.planned_wh)
            rounds.append((out.performance.tolist(), out.scalars["equal_result"]))
        draws.append(rounds)
    assert draws[0] == draws[1]


def test_the_thread_count_comes_from_the_cpus_this_process_may_use(monkeypatch):
    monkeypatch.setattr(os, "process_cpu_count", lambda: 5, raising=False)
    assert fastpath.cpu_count() == 5
    monkeypatch.delattr(os, "process_cpu_count")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 7}, raising=False)
    assert fastpath.cpu_count() == 3  # the affinity mask, not the machine's count
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert fastpath.cpu_count() == 1
