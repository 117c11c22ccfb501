"""Personal rating noise regenerated on demand equals the noise held in memory, the counter-based
normals are standard normal, and long runs never produce subnormals (np.seterr raises)."""

import numpy as np
import pytest
from scipy import stats

from lastwatt.config import Config
from lastwatt.model import agents, counter_noise, decisions
from lastwatt.model.beliefs import DECAY_FLOOR, PublicBeliefs
from lastwatt.model.market import Market
from lastwatt.model.rating_noise import noise_weight
from lastwatt.rng import streams


def test_counter_normals_are_standard_normal_and_bounded():
    z = counter_noise.standard_normal(
        np.uint64(7), np.arange(2_000)[None, :], np.arange(500)[:, None]
    )
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3  # 1M draws: a bias of 0.002 fails
    assert np.abs(z).max() <= counter_noise.BOUND
    # neighbouring stakers, businesses and keys are uncorrelated
    assert abs(np.corrcoef(z[:, :-1].ravel(), z[:, 1:].ravel())[0, 1]) < 0.005
    assert abs(np.corrcoef(z[:-1].ravel(), z[1:].ravel())[0, 1]) < 0.005
    other = counter_noise.standard_normal(
        np.uint64(8), np.arange(2_000)[None, :], np.arange(500)[:, None]
    )
    assert abs(np.corrcoef(z.ravel(), other.ravel())[0, 1]) < 0.005


def test_a_cell_is_the_same_whatever_batch_it_is_drawn_in():
    keys = np.array([3, 4, 5], dtype=np.uint64)[:, None, None]  # a replica axis
    batch = counter_noise.standard_normal(
        keys, np.arange(50)[None, None, :], np.arange(9)[None, :, None]
    )
    one = counter_noise.standard_normal(np.uint64(4), np.array([17]), np.array([6]))
    assert batch[1, 6, 17] == one[0]
    assert batch.shape == (3, 9, 50) and len({batch[k, 6, 17] for k in range(3)}) == 3


def consideration(size: int, stored: bool, cached: list[slice]) -> tuple:
    rng = np.random.default_rng(11)
    beliefs = PublicBeliefs(rng.uniform(-10, 10, 30), learning_rate=0.6)
    return beliefs, agents.Consideration(
        400, 30, size, 3.0, rng, beliefs, cached, stored_noise=stored
    )


@pytest.mark.parametrize("size", [0, 5])
@pytest.mark.parametrize("keep_cells", [0, 1 << 24])
def test_regenerated_noise_gives_bit_identical_values_to_held_noise(size, keep_cells, monkeypatch):
    monkeypatch.setattr(
        agents, "STORED_NOISE_CELLS", keep_cells
    )  # 0: nothing kept, all regenerated
    cached = [slice(0, 150), slice(250, 400)]
    (beliefs, held), (twin, regen) = (
        consideration(size, True, cached),
        consideration(size, False, cached),
    )
    assert regen.noise is None and held.noise is not None
    rng = np.random.default_rng(2)
    for step in range(200):  # long enough that the first businesses' noise weight reaches 0
        seen = rng.choice(30, 3 if step % 10 else 25, replace=False)
        performance = rng.uniform(-10, 10, seen.size)
        for b, c in ((beliefs, held), (twin, regen)):
            b.observe(seen, performance)
            c.refresh(b, seen)
        for block in cached:  # the cache of the other stakers is never written
            assert held.value[:, block].tobytes() == regen.value[:, block].tobytes()
    for block in (slice(150, 250), slice(0, 100)):  # computed when asked / cached
        assert held.values(block).tobytes() == regen.values(block).tobytes()
    assert (noise_weight(beliefs.decay, beliefs.base(), 3.0 * counter_noise.BOUND) == 0).any()


def test_a_noise_weight_of_zero_leaves_every_value_where_the_noise_would():
    rng = np.random.default_rng(4)
    base = rng.uniform(-10, 10, 4_000)
    decay = 10.0 ** rng.uniform(-12, 0, base.size)
    noise = np.float32(4.0) * rng.uniform(
        -counter_noise.BOUND, counter_noise.BOUND, (50, base.size)
    ).astype(np.float32)
    weight = noise_weight(decay, base, 4.0 * counter_noise.BOUND)
    exact = decay.astype(np.float32) * noise + base.astype(np.float32)
    flushed = weight * noise + base.astype(np.float32)
    assert 0 < (weight == 0).sum() < base.size  # both kinds occur
    assert exact.tobytes() == flushed.tobytes()


def test_beliefs_decay_reaches_zero_without_subnormals():
    beliefs = PublicBeliefs(np.array([3.0, -2.0]), learning_rate=0.3)
    with np.errstate(all="raise"):
        for _ in range(3_000):  # 0.7 ** 3000 is far below the smallest float64
            beliefs.observe(np.array([0]), np.array([1.0]))
        base = beliefs.base()
    assert beliefs.decay[0] == 0 and 0 < 0.7**300 < DECAY_FLOOR * 1e100
    assert base[0] == pytest.approx(1.0) and base[1] == -2.0


def run_raising(cfg: Config, rounds: int) -> float:
    market = Market(cfg, streams(cfg.seed))
    pool_wh = 0.8 * cfg.businesses.active_set * float(market.max_power_w.mean())
    with np.errstate(all="raise"):
        for r in range(rounds):
            plan = market.plan(r, pool_wh, 3600.0)
            out = market.settle(plan, plan.planned_wh)
    return float(out.scalars["efficiency"])


def test_default_village_runs_2000_busy_rounds_under_seterr_raise():
    assert 0 < run_raising(Config(), 2_000) <= 1


def test_50k_stakers_1k_businesses_run_2000_busy_rounds_under_seterr_raise():
    # bench_model's consideration set; rounds with I = 100 observed each (about 40 s under load)
    cfg = Config().with_overrides(
        **{
            "population.households": 50_000,
            "population.consideration_set": 8,
            "businesses.count": 1_000,
            "businesses.active_set": 100,
        }
    )
    assert 0 < run_raising(cfg, 2_000) <= 1


def test_regenerated_and_held_noise_give_identical_market_runs(monkeypatch):
    cfg = Config().with_overrides(**{"population.consideration_set": 6, "businesses.count": 40})

    def trace() -> list:
        market = Market(cfg, streams(3))
        out = []
        for r in range(300):
            plan = market.plan(r, 30_000.0 if r % 3 else 0.0, 3600.0)
            out.append(
                (
                    plan.selected_idx,
                    plan.stake_tokens.tobytes(),
                    market.settle(plan, plan.planned_wh).scalars,
                )
            )
        return out

    held = trace()
    monkeypatch.setattr(agents, "STORED_NOISE_CELLS", 0)
    assert repr(trace()) == repr(held)


def test_kept_logit_weights_of_changed_rows_decide_like_weights_recomputed_each_round(
    monkeypatch,
):
    cfg = Config().with_overrides(
        **{
            "population.households": 20_000,  # softmax above KEEP_WEIGHTS_CELLS
            "businesses.count": 40,
            "businesses.active_set": 8,
        }
    )

    def trace() -> list:
        market = Market(cfg, streams(9))
        out = []
        for r in range(40):
            plan = market.plan(r, 30_000.0 if r % 4 else 0.0, 3600.0)
            market.settle(plan, plan.planned_wh)
            out.append(plan.stake_tokens.tobytes())
        return out

    kept = trace()
    assert Market(cfg, streams(9))._decisions._exp_weights is not None
    monkeypatch.setattr(decisions.Decisions, "_kept_exp_weights", lambda *a: None)
    assert trace() == kept


@pytest.mark.parametrize(("candidates", "stakers"), [(129, 5_000), (1_000, 3_000), (1_000, 5_000)])
def test_running_sums_into_a_buffer_and_the_binary_search_draw_equal_counting(candidates, stakers):
    rng = np.random.default_rng(candidates + stakers)
    weights = rng.random((candidates, stakers), dtype=np.float32)
    weights[rng.random(weights.shape) < 0.5] = 0.0  # runs of equal running sums
    weights[:, :10] = 0.0
    weights[-1, :10] = 1.0  # only the last candidate has weight
    out = np.empty_like(weights)
    cumulative = agents.cumulative_rows(weights, out=out)
    assert cumulative is out and out.tobytes() == agents.cumulative_rows(weights.copy()).tobytes()
    uniform = rng.random(stakers, dtype=np.float32)
    uniform[:20] = [0.0, 1.0] * 10  # the ends of the range
    count = (cumulative[:-1] <= uniform * cumulative[-1]).sum(axis=0)
    np.testing.assert_array_equal(agents.draw_rows(cumulative, uniform), count)
