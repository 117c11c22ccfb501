"""The engine's own behaviour: its counters, and the site it shares with the fleet and the CLI."""

import numpy as np

from lastwatt import simulation
from lastwatt.config import Config
from lastwatt.messages import MeterReading
from lastwatt.model.market import Market
from lastwatt.rng import streams
from lastwatt.site import site


def test_a_reading_from_an_unknown_device_is_counted_by_the_engine_not_the_transport(
    monkeypatch,
):
    made = []

    def with_a_ghost(*args, **kwargs):
        transport = make(*args, **kwargs)
        start = transport.start

        def start_and_haunt(on_reading, on_status):
            start(on_reading, on_status)
            on_reading(MeterReading("ghost", 0.0, 1.0, 0.0, False))

        transport.start = start_and_haunt
        made.append(transport)
        return transport

    make = simulation.mock_transport
    monkeypatch.setattr(simulation, "mock_transport", with_a_ghost)
    cfg = Config().with_overrides(rounds=3, **{"output.meter_readings": True})
    out = simulation.run_simulation(cfg)
    assert out.summary["rejected"] == {"unknown_device": 1}
    assert made[0].rejected == {}  # the engine does not write into the transport


def test_the_site_draws_the_same_businesses_as_the_market_of_the_run():
    cfg = Config().with_overrides(**{"businesses.count": 7, "devices.per_business": 2})
    market = Market(cfg, streams(cfg.seed))
    shared = site(cfg)
    np.testing.assert_array_equal(shared.max_power_w, market.max_power_w)
    np.testing.assert_array_equal(shared.quality, market.quality)
    assert shared.business_names == market.business_names == [f"b{i:02d}" for i in range(7)]
    # hand values: each business's max power split equally over its two devices
    assert shared.devices.ids[:3] == ["b000-d0", "b000-d1", "b001-d0"]
    np.testing.assert_allclose(shared.devices.max_power_w[:2], [shared.max_power_w[0] / 2] * 2)


def test_given_qualities_do_not_move_the_max_power_draws():
    cfg = Config().with_overrides(**{"businesses.count": 3, "businesses.active_set": 2})
    given = cfg.with_overrides(**{"businesses.qualities": [1.0, -2.0, 3.0]})
    np.testing.assert_array_equal(site(given).max_power_w, site(cfg).max_power_w)
    assert site(given).quality.tolist() == [1.0, -2.0, 3.0]
