"""Modbus TCP relays and meters (bridge side): register maps, config, the polling client."""
