"""Simulated device firmware (native, Tasmota, Shelly) around ``lastwatt.devices.DeviceModel``."""
