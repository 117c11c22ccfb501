"""LastWatt's firmware bridge: vendor dialects (Tasmota, Shelly Gen2) <-> native topics,
and simulated device firmware for tests, benchmarks and demos (see docs/bridge.md,
docs/devices.md)."""
